"""Cross-domain checks over a Mesh (pure): what `handoff check` runs before a domain merges.

Rules (stable codes, documented in docs/registry.md):

  HO301 error    a sensor's upstream domain is not published
  HO302 error    the upstream domain publishes no such model (or the name is ambiguous between versions)
  HO303 error    the upstream model is not public (another domain may only read public models)
  HO304 error    a cycle of tasks across DAGs: the DAGs would wait on each other forever
  HO305 error    a run of a model is due before a run it waits on (transitively; registry/feasibility.py)
  HO306 warning  the two schedules make the logical-date alignment ambiguous (handoff.alignment)
  HO307 warning  a cross-project ref's upstream model now resolves to another node than the consumer's
                 manifest resolved it to (an unpinned ref whose latest version changed: docs/mesh.md)
  HO308 warning  a run of a model is due at or before its own start (e.g. a time the clock skips)

A warning a reading domain acknowledges (``handoff_upstream.accept`` on its source, carried by
the sensor) is still reported, marked accepted with the reason; ``check --strict`` ignores it.

``check_mesh(mesh, focus)`` returns every finding that involves a domain in ``focus`` — the
domains under review — including problems their change causes to other domains' sensors.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..alignment import alignment_report
from ..plan.graph import reachable
from ..terminal import visible
from ..ticks import schedule_of
from .feasibility import Feasibility
from .mesh import Mesh, Pipeline, Task

ERROR = "error"
WARNING = "warning"
RULES: dict[str, tuple[str, str]] = {
    "HO300": (ERROR, "domain or dbt project bound elsewhere (registry.binding)"),
    "HO301": (ERROR, "upstream domain unknown"),
    "HO302": (ERROR, "upstream model unknown in that domain"),
    "HO303": (ERROR, "upstream model not public"),
    "HO304": (ERROR, "cycle of tasks across DAGs (deadlock)"),
    "HO305": (ERROR, "a run is due before a run it waits on (impossible SLA)"),
    "HO306": (WARNING, "schedules make the logical-date alignment ambiguous"),
    "HO307": (WARNING, "a cross-project ref now resolves to another version than the consumer was compiled against"),
    "HO308": (WARNING, "a run is due at or before its own start"),
}
# The warnings a reading domain may acknowledge on its source (handoff_upstream.accept).
ACCEPTABLE = ("HO306",)

Node = tuple[str, str]  # (dag_id, task_id)


@dataclass(frozen=True)
class Finding:
    """One problem, printed on one line: code, severity, where, what, what to do."""

    code: str
    where: str  # the task it is about: domain.dag_id.task_id
    message: str
    hint: str
    domains: frozenset[str]  # every domain involved (used to keep findings about the domains under review)
    detail: Mapping[str, Any] | None = None  # the numbers behind the line (`check --format json`)
    accepted: str | None = None  # the reason, when the reading domain acknowledged this warning

    @property
    def severity(self) -> str:
        return RULES[self.code][0]

    def line(self) -> str:
        """One line; control characters of untrusted text (an accept reason) escaped (``terminal.visible``)."""
        if self.accepted is not None:
            return visible(" ".join(f"{self.code} accepted: {self.where}: {self.accepted}".split()))
        return visible(" ".join(f"{self.code} {self.severity}: {self.where}: {self.message} — {self.hint}".split()))

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "severity": self.severity, "where": self.where, "message": self.message,
                "hint": self.hint, "domains": sorted(self.domains), "accepted": self.accepted,
                "detail": dict(self.detail) if self.detail is not None else None}


def check_mesh(mesh: Mesh, focus: Iterable[str] | None = None) -> list[Finding]:
    """Every finding over ``mesh`` involving a domain of ``focus`` (all domains when None).

    Errors come first (by code, then task), then warnings.
    """
    graph = _Graph(mesh)
    wanted = set(focus) if focus is not None else set(mesh.domains)
    # Only tasks downstream of the domains under review can have a finding about them (SLAs), and
    # only tasks both up- and downstream of them can share a cycle with them.
    sources = [(t.dag_id, t.task_id) for d in wanted if d in mesh.domains for t in mesh.domains[d].tasks()]
    downstream = reachable(sources, graph.succs)
    on_cycles_with_them = downstream
    if focus is not None:
        upstream: set[Node] = reachable(sources, graph.preds)
        on_cycles_with_them = downstream & upstream
    cycles = _strongly_connected(graph, on_cycles_with_them)
    in_cycles = {node for component in cycles for node in component}
    feasibility = Feasibility(graph, in_cycles)
    findings = [*graph.resolution_findings, *_cycle_findings(graph, cycles),
                *feasibility.findings(downstream), *_alignment_findings(graph, wanted)]
    findings = [f for f in findings if f.domains & wanted]
    unique = {(f.code, f.where, f.message): f for f in findings}
    return sorted(unique.values(), key=lambda f: (f.severity != ERROR, f.accepted is not None, f.code, f.where,
                                                  f.message))


def failing(findings: Iterable[Finding], *, strict: bool) -> list[Finding]:
    """The findings that fail `handoff check`: errors, and with ``strict`` unacknowledged warnings."""
    return [f for f in findings if f.severity == ERROR or (strict and f.accepted is None)]


# --------------------------------------------------------------------------------------
# The global task graph
# --------------------------------------------------------------------------------------

class _Graph:
    """Every task of the mesh; edges run upstream -> downstream, across DAGs through sensors."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.preds: dict[Node, list[Node]] = {}
        self.succs: dict[Node, list[Node]] = {}
        self.resolved: dict[Node, Task] = {}  # sensor -> the upstream model task it waits on
        self.resolution_findings: list[Finding] = []
        for task in mesh.tasks():
            node = (task.dag_id, task.task_id)
            self.preds.setdefault(node, [])
            self.succs.setdefault(node, [])
        for task in mesh.tasks():
            node = (task.dag_id, task.task_id)
            for upstream in task.upstream:
                self._edge((task.dag_id, upstream), node)
            if task.is_sensor:
                target = self._resolve(task)
                if target is not None:
                    self.resolved[node] = target
                    self._edge((target.dag_id, target.task_id), node)

    def _edge(self, upstream: Node, downstream: Node) -> None:
        if upstream in self.succs:  # plans are validated: in-DAG upstreams exist
            self.succs[upstream].append(downstream)
            self.preds[downstream].append(upstream)

    def task(self, node: Node) -> Task:
        task = self.mesh.task(*node)
        if task is None:  # the graph's nodes are the mesh's tasks
            raise LookupError(f"no task {node[0]}.{node[1]} in the mesh")
        return task

    def pipeline(self, dag_id: str) -> Pipeline:
        pipeline = self.mesh.pipeline(dag_id)
        if pipeline is None:  # the graph's nodes are the mesh's tasks, each in a pipeline
            raise LookupError(f"no pipeline {dag_id} in the mesh")
        return pipeline

    def schedule(self, node_or_dag: Node | str) -> str:
        return self.pipeline(node_or_dag if isinstance(node_or_dag, str) else node_or_dag[0]).schedule

    def team(self, domain: str) -> str:
        found = self.mesh.domains.get(domain)
        return f"{found.owner} ({found.slack})" if found else domain

    def _resolve(self, sensor: Task) -> Task | None:
        up_domain, up_model = sensor.upstream_domain, sensor.upstream_model
        if up_domain is None or up_model is None:  # a plan's sensor always names its upstream
            raise ValueError(f"sensor {sensor.ref} names no upstream model")
        wanted = f"{up_domain}.{up_model}"
        resolution = self.mesh.resolve(up_domain, up_model)
        involved = frozenset({sensor.domain, up_domain})
        where = sensor.ref
        reads = _reads(sensor)
        declared = "the ref() (and re-parse against the upstream's current manifest)" if sensor.refs else \
            "handoff_upstream.model of the source"
        if resolution.problem == "unknown_domain":
            near = difflib.get_close_matches(up_domain, list(self.mesh.domains), n=1)
            fix = ("the ref()'s project (or the registry's binding of projects to domains)" if sensor.refs else
                   "handoff_upstream.domain of the source")
            self.resolution_findings.append(Finding(
                "HO301", where, f"{reads} waits on {wanted}, but no domain '{up_domain}' is published",
                (f"did you mean '{near[0]}'? fix {fix}" if near else
                 f"publish the plan of domain '{up_domain}' first (`handoff publish`), or fix {fix}"),
                involved))
            return None
        if resolution.problem == "unknown_model":
            near = difflib.get_close_matches(up_model, self.mesh.model_keys(up_domain), n=1)
            guess = f"did you mean '{near[0]}'? " if near else ""
            self.resolution_findings.append(Finding(
                "HO302", where, f"{reads} waits on {wanted}, but {up_domain} publishes no model '{up_model}'",
                f"{guess}fix {declared} (owner: {self.team(sensor.domain)}), "
                f"or keep the model in {up_domain} (owner: {self.team(up_domain)})",
                involved))
            return None
        if resolution.problem == "ambiguous":
            versions = ", ".join(t.task_id for t in resolution.candidates)
            self.resolution_findings.append(Finding(
                "HO302", where, f"{reads} waits on {wanted}, a name {up_domain} gives to several versions ({versions})",
                ("pin the version in the ref() (v=N), or have the upstream republish its plan with this handoff (it "
                 "records which version is the latest)" if sensor.refs else
                 f"set handoff_upstream.model to the version you read, e.g. '{resolution.candidates[-1].task_id}'"),
                involved))
            return None
        target = resolution.task
        if target is None:  # a resolution without a problem has its task
            raise LookupError(f"{wanted} resolved to no task")
        if up_domain != sensor.domain and target.access != "public":
            self.resolution_findings.append(Finding(
                "HO303", where, f"{reads} waits on {wanted}, which is {target.access}: other domains may only "
                f"read public models",
                f"ask {self.team(up_domain)} to make it `access: public`, or read one of {up_domain}'s public "
                f"models instead", involved))
            # still an edge: the DAGs would wait on it, so cycles and SLAs through it are real
        if sensor.refs and target.unique_id not in sensor.refs:
            self.resolution_findings.append(Finding(
                "HO307", where, f"{reads} waits on {wanted}, which {up_domain} now publishes as {target.unique_id} "
                f"(task {target.dag_id}.{target.task_id}): the sensor waits on that task while {sensor.domain}'s "
                "deployed models read what their manifest resolved the ref to",
                f"re-parse {sensor.domain} against {up_domain}'s current manifest and compile it again (owner: "
                f"{self.team(sensor.domain)}), or pin the version the models read (ref(..., v=N))", involved))
        return target


def _reads(sensor: Task) -> str:
    if sensor.refs:
        return f"cross-project ref to {', '.join(sensor.refs)}"
    if sensor.sources:
        return f"source {', '.join(sensor.sources)}"
    return "sensor"


# --------------------------------------------------------------------------------------
# HO304: cycles
# --------------------------------------------------------------------------------------

def _strongly_connected(graph: _Graph, within: set[Node]) -> list[list[Node]]:
    """Tarjan's algorithm, iterative, on the subgraph of ``within``; only components with a cycle."""
    index: dict[Node, int] = {}
    low: dict[Node, int] = {}
    on_stack: set[Node] = set()
    stack: list[Node] = []
    found: list[list[Node]] = []
    counter = 0
    succs = {node: [n for n in graph.succs[node] if n in within] for node in within}
    for root in sorted(within):
        if root in index:
            continue
        work: list[tuple[Node, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = succs[node]
            if child < len(successors):
                work.append((node, child + 1))
                nxt = successors[child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in succs[node]:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def _a_cycle(graph: _Graph, component: list[Node]) -> list[Node]:
    """One cycle through the component's first node (breadth-first: a shortest one)."""
    members = set(component)
    start = component[0]
    came_from: dict[Node, Node] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in graph.succs[node]:
                if nxt not in members:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start, start]  # pragma: no cover - a component with a cycle always closes


def _cycle_findings(graph: _Graph, cycles: list[list[Node]]) -> list[Finding]:
    findings = []
    for component in cycles:
        cycle = _a_cycle(graph, component)
        tasks = [graph.task(n) for n in cycle]
        domains = frozenset(t.domain for t in tasks)
        dags = sorted({t.dag_id for t in tasks})
        sensors = [t for t in tasks[:-1] if t.is_sensor]
        kind = "across domains" if len(domains) > 1 else "across DAGs of one domain"
        findings.append(Finding(
            "HO304", tasks[0].ref,
            f"cycle of tasks {kind}: {' -> '.join(t.ref for t in tasks)}; DAGs {', '.join(dags)} would wait on "
            f"each other forever (deadlock)",
            "break the cycle: remove or re-point one of its cross-domain sources ("
            + ", ".join(f"{s.ref} on {s.upstream_domain}.{s.upstream_model}" for s in sensors) + ")",
            domains))
    return findings


# --------------------------------------------------------------------------------------
# HO306: logical-date alignment
# --------------------------------------------------------------------------------------

def _alignment_findings(graph: _Graph, wanted: set[str]) -> list[Finding]:
    findings = []
    for node, target in sorted(graph.resolved.items()):
        sensor = graph.task(node)
        if sensor.domain not in wanted and target.domain not in wanted:
            continue
        upstream, downstream = graph.pipeline(target.dag_id), graph.pipeline(node[0])
        report = alignment_report(schedule_of(upstream.schedule, upstream.timezone),
                                  schedule_of(downstream.schedule, downstream.timezone))
        if not report.surprising:
            continue
        reasons = dict(sensor.accept)
        findings.append(Finding(
            "HO306", sensor.ref, f"waits on {target.domain}.{target.model}: {report.summary()}",
            "align the schedules (docs/alignment.md), or acknowledge it on the source: "
            "handoff_upstream: {accept: {HO306: \"why it is fine\"}}",
            frozenset({sensor.domain, target.domain}),
            detail={"upstream_task": target.ref, **report.as_dict()},
            accepted=reasons.get("HO306")))
    return findings
