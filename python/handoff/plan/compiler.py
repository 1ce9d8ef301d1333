"""Compiles a manifest into a plan (``compile_manifest``): one task per model, seed and snapshot,
one sensor per upstream model of another domain or pipeline, tests placed in the task of their
last parent (docs/plan.md). Pure and deterministic: the same manifest gives the same plan, byte
for byte once written (``handoff.plan.document.dumps``).

The plan is data. Model names, descriptions and meta values never become code: the factory
reads them as strings.

Over 400 lines on purpose: one concern, one pass over one manifest (``_Compiler``: fold ephemeral
models, place tests, name and merge sensors, build the typed tasks); ids, graph algorithms and
the document's checks live beside it (``naming``, ``graph``, ``document``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Final, TypeVar, get_args

from .. import __version__
from ..columns import Catalog, ColumnResolver, Demand
from ..convention import NodeSettings, PipelineInfo, Resolved, Upstream, resolve
from ..cross_project import RefUpstreams
from ..errors import HandoffError
from ..manifest import Manifest, Node
from ..plan_model import (
    Acceptance,
    AcceptedCode,
    Access,
    Column,
    ColumnList,
    ColumnsFrom,
    DbtTask,
    Execution,
    Hooks,
    MutedKind,
    Plan,
    PlanDbt,
    PlanDomain,
    PlanPipeline,
    PlanTask,
    ReadColumns,
    SensorMode,
    SensorTask,
    TaskKind,
)
from .document import PLAN_VERSION, check_structure
from .graph import topological_order
from .naming import HOOK_TYPES, dag_id_for, model_key, sensor_task_id, suffixed, task_id_for_node, unique_ids


def compile_manifest(manifest: Manifest, catalog: Catalog | None = None, *,
                     projects: Mapping[str, str] | None = None, registry: str = "the registry") -> Plan:
    """The plan of one domain's manifest; raises HandoffError listing every convention violation.

    Cross-project refs (dbt Mesh, docs/mesh.md) become sensors like sources marked handoff_upstream:
    ``projects`` maps each dbt project to its domain (the registry's binding, ``registry`` names it
    in messages); a ref to a project it does not map is a one-line HandoffError saying what to
    publish first. A manifest without such refs needs no mapping.

    Column knowledge (docs/impact.md): public models carry their ``columns`` when they are known (from
    ``catalog``, a contract or compiled SQL), and sensors carry what each task ``reads`` of their
    upstream model when the manifest holds compiled SQL (`dbt compile`). A parsed-only manifest
    without contracts gives a plan without either.
    """
    resolved = resolve(manifest)
    if resolved.violations:
        lines = "; ".join(str(v) for v in resolved.violations[:20])
        more = f" (+{len(resolved.violations) - 20} more)" if len(resolved.violations) > 20 else ""
        raise HandoffError(f"{len(resolved.violations)} convention violation(s): {lines}{more}",
                           where=manifest.path, hint="fix them (`dbt run-operation handoff_validate` lists them)")
    if resolved.domain is None:
        raise HandoffError("the project has no models to schedule", where=manifest.path,
                           hint="annotate models with handoff_domain / handoff_pipeline")
    from ..cross_project import ref_upstreams

    refs = ref_upstreams(list(resolved.refs), resolved.ref_waits, projects, where=manifest.path, registry=registry)
    if refs.upstreams:
        resolved = replace(resolved, upstreams={**resolved.upstreams, **refs.upstreams})
    plan = _Compiler(manifest, resolved, catalog, refs).plan()
    check_structure(plan, manifest.path)  # never write a plan no reader would accept
    return plan



class _Compiler:
    def __init__(self, manifest: Manifest, resolved: Resolved, catalog: Catalog | None = None,
                 refs: RefUpstreams | None = None) -> None:
        self.m = manifest
        self.r = resolved
        self.refs = refs or RefUpstreams({}, {}, {})
        self.columns = ColumnResolver(manifest, catalog)
        self.domain = resolved.domain.name if resolved.domain else ""
        self.notes: list[str] = []

    # -- dependency folding --------------------------------------------------------------
    def _inputs(self, node: Node, seen: frozenset[str] = frozenset()) -> set[str]:
        """Direct task inputs of a node: own executable nodes and declared upstream sources,
        looking through ephemeral models."""
        found: set[str] = set()
        for dep in node.depends_on:
            if dep in self.r.nodes or dep in self.r.upstreams:
                target = self.m.nodes.get(dep)
                if target is not None and target.is_ephemeral:
                    if dep in seen:
                        raise HandoffError(f"ephemeral cycle through {dep}", where=self.m.path)
                    found |= self._inputs(target, seen | {dep})
                else:
                    found.add(dep)
            elif (node.unique_id, dep) in self.refs.inputs:
                found |= self.refs.inputs[(node.unique_id, dep)]  # another project's model (dbt Mesh)
            elif dep in self.m.sources:
                continue  # a raw source: no sensor
            elif dep in self.m.disabled or (dep in self.m.nodes and not self.m.nodes[dep].enabled):
                raise HandoffError(
                    f"node {node.unique_id} depends on {dep}, which is disabled: dbt builds no table for it, so "
                    f"{node.name} would read a stale or missing one", where=self.m.path,
                    hint="enable it or remove the ref(), then re-run `dbt parse` (dbt itself refuses a ref() to a "
                         "disabled node: this manifest is stale or edited)")
            elif dep in self.m.nodes:
                other = self.m.nodes[dep]
                if other.resource_type in ("model", "seed", "snapshot"):
                    self.notes.append(
                        f"{node.unique_id} depends on {dep} of package '{other.package_name}', which handoff "
                        f"does not schedule: no task builds it, so on a fresh warehouse {node.name} fails until it "
                        f"exists — build it in the deploy job after `dbt deps` (`dbt build --select "
                        f"package:{other.package_name}`, again whenever the package changes), or move the model "
                        "into this project to give it a task (docs/plan.md)")
            else:
                raise HandoffError(f"node {node.unique_id} depends on {dep}, which is not in the manifest",
                                   where=self.m.path, hint="the manifest is inconsistent; re-run `dbt parse`")
        return found

    # -- plan ----------------------------------------------------------------------------
    def plan(self) -> Plan:
        executable = [n for n in self.m.own_nodes() if n.unique_id in self.r.nodes and not n.is_ephemeral]
        _refuse_case_only_twins(executable, self.m.path)
        inputs = {n.unique_id: self._inputs(n) for n in executable}
        order = topological_order(inputs, where=self.m.path)
        tests = self._tests_by_task(order, inputs)
        for home, ids in self._unit_tests_by_task(order).items():
            tests[home].extend(ids)
        by_pipeline: dict[str, list[Node]] = defaultdict(list)
        for node in executable:
            by_pipeline[self._pipeline(node.unique_id).name].append(node)

        task_ids = unique_ids({n.unique_id: (task_id_for_node(n), model_key(n.name, n.version)) for n in executable})
        for uid, task_id in task_ids.items():
            if task_id in HOOK_TYPES:  # the DAGs' hook tasks own these ids
                task_ids[uid] = suffixed(task_id, uid)
        node_task = {n.unique_id: (self._pipeline(n.unique_id).name, task_ids[n.unique_id]) for n in executable}
        self._sensor_ids = self._sensor_task_ids(inputs, node_task, set(task_ids.values()))

        pipelines = []
        for pipeline_name in sorted(by_pipeline):
            nodes = by_pipeline[pipeline_name]
            info = self._pipeline(nodes[0].unique_id)
            tasks: list[PlanTask] = []
            sensors: dict[str, SensorTask] = {}
            reads: dict[str, dict[str, Demand | None]] = {}  # sensor task id -> downstream task id -> demand
            for node in nodes:
                upstream_ids: set[str] = set()
                for dep in sorted(inputs[node.unique_id]):
                    if dep in self.r.upstreams:
                        sensor = self._sensor(self.r.upstreams[dep])
                    elif node_task[dep][0] != pipeline_name:
                        sensor = self._pipeline_sensor(dep, node_task[dep][0])
                    else:
                        upstream_ids.add(node_task[dep][1])
                        continue
                    existing = sensors.get(sensor.task_id)
                    sensors[sensor.task_id] = sensor if existing is None else _merged_sensor(existing, sensor)
                    if dep in self.r.upstreams and node.compiled_code is not None:
                        for read in self.refs.targets.get(dep, (dep,)):
                            self._add_reads(reads.setdefault(sensor.task_id, {}), node, read,
                                            node_task[node.unique_id][1])
                    upstream_ids.add(sensor.task_id)
                tasks.append(self._node_task(node, self.r.nodes[node.unique_id], sorted(upstream_ids),
                                             tests.get(node.unique_id, []), node_task))
            tasks.extend(sensor if sensor.task_id not in reads else replace(sensor, reads=_read_columns(
                reads[sensor.task_id])) for sensor in sensors.values())
            tasks.sort(key=lambda t: t.task_id)
            where = f"pipeline {pipeline_name} (handoff_pipeline of {nodes[0].unique_id})"
            pipelines.append(PlanPipeline(
                name=pipeline_name, dag_id=dag_id_for(self.domain, pipeline_name), schedule=info.schedule,
                start_date=info.start_date, description=info.description, tasks=tuple(tasks), timezone=info.timezone,
                max_active_runs=info.max_active_runs,
                execution=_one_of(EXECUTIONS, info.execution, where, "execution", self.m.path)))

        domain = self.r.domain
        if domain is None:  # resolve() reported HO2xx, and compile stops before this
            raise AssertionError("compiling a project that declares no domain")
        hooks = self._hooks()
        return Plan(
            plan_version=PLAN_VERSION, handoff_version=__version__,
            domain=PlanDomain(name=domain.name, owner=domain.owner, slack=domain.slack, description=domain.description,
                              mute=tuple(_one_of(MUTED_KINDS, k, f"domain {domain.name}", "mute", self.m.path)
                                         for k in domain.mute)),
            dbt=PlanDbt(project_name=self.m.project_name, dbt_version=self.m.dbt_version,
                        manifest_sha256=self.m.sha256),
            pipelines=tuple(pipelines),
            hooks=Hooks(tuple(hooks["on-run-start"]), tuple(hooks["on-run-end"])),
            notes=tuple(sorted(set(self.notes))),
        )

    def _pipeline(self, unique_id: str) -> PipelineInfo:
        pipeline = self.r.nodes[unique_id].pipeline
        if pipeline is None:  # resolve() reported HO2xx for a node without one, and compile stops before this
            raise AssertionError(f"{unique_id} has no pipeline")
        return pipeline

    def _add_reads(self, reads: dict[str, Demand | None], node: Node, source_id: str, task_id: str) -> None:
        """What ``node`` (task ``task_id``) reads of the upstream model behind ``source_id``, added to
        a sensor's ``reads`` (task id -> demand; None: unknown, and stays unknown)."""
        found = self.columns.reads(node, [source_id])[source_id].demand
        if task_id not in reads:
            reads[task_id] = found
        else:
            known = reads[task_id]
            reads[task_id] = None if known is None or found is None else known | found

    def _hooks(self) -> dict[str, list[str]]:
        """The project hooks (of the project and its packages) in the order dbt runs them: packages'
        first, by package name, the root project's last; each project's in list order."""
        hooks = [n for n in self.m.nodes.values() if n.resource_type == "operation"]
        hooks.sort(key=lambda n: (n.package_name == self.m.project_name, n.package_name, n.hook_index or 0,
                                  n.unique_id))
        return {kind: [n.unique_id for n in hooks if kind in n.tags] for kind in HOOK_TYPES}

    def _node_task(self, node: Node, s: NodeSettings, upstream: list[str], tests: list[str],
                   node_task: Mapping[str, tuple[str, str]]) -> DbtTask:
        columns = None
        if node.resource_type == "model" and node.access == "public":
            found = self.columns.of(node.unique_id)
            if found.known:
                columns = ColumnList(
                    source=_one_of(COLUMNS_FROM, found.source, node.unique_id, "columns", self.m.path),
                    columns=tuple(Column(c.name, c.data_type) for c in found.columns))
        return DbtTask(
            task_id=node_task[node.unique_id][1],
            kind=_one_of(TASK_KINDS, node.resource_type, node.unique_id, "resource_type", self.m.path),
            unique_id=node.unique_id,
            name=node.name,
            version=node.version,
            latest_version=node.latest_version if node.version is not None else None,
            tests=tuple(sorted(tests)),
            relation=node.relation_name,
            access=_one_of(ACCESS, node.access or "protected", node.unique_id, "access", self.m.path),
            owner=s.owner,
            slack=s.slack,
            available_by=s.available_by,
            available_within_s=s.available_within_s,
            microbatch=node.is_microbatch,
            retries=s.retries,
            retry_delay_s=s.retry_delay_s,
            timeout_s=s.timeout_s,
            pool=s.pool,
            upstream=tuple(upstream),
            columns=columns,
        )

    def _sensor_task_ids(self, inputs: Mapping[str, set[str]], node_task: Mapping[str, tuple[str, str]],
                         taken: set[str]) -> dict[tuple[str, str], str]:
        """(upstream domain, model key) -> sensor task id, unique among themselves and the model tasks."""
        wanted: dict[tuple[str, str], None] = {}
        for node, deps in inputs.items():
            for dep in deps:
                if dep in self.r.upstreams:
                    wanted[(self.r.upstreams[dep].domain, self.r.upstreams[dep].model)] = None
                elif node_task[dep][0] != node_task[node][0]:
                    target = self.m.nodes[dep]
                    wanted[(self.domain, model_key(target.name, target.version))] = None
        raw = {f"{domain}\0{model}": (sensor_task_id(domain, model), f"wait__{domain}__{model}")
               for domain, model in wanted}
        raw.update({f"\0task\0{t}": (t, t) for t in taken})  # model tasks keep their ids
        ids = unique_ids(raw)
        clashes = {k for k, v in ids.items() if not k.startswith("\0task\0") and v in taken}
        for key in clashes:  # a model named like a sensor id keeps it; the sensor gets a suffix
            ids[key] = suffixed(ids[key], key)
        return {tuple(k.split("\0", 1)): v for k, v in ids.items() if not k.startswith("\0task\0")}  # type: ignore[misc]

    def _sensor(self, up: Upstream) -> SensorTask:
        where = f"{up.source_unique_id} (handoff_upstream)"
        return SensorTask(
            task_id=self._sensor_ids[(up.domain, up.model)],
            kind="sensor",
            upstream_domain=up.domain,
            upstream_model=up.model,
            sources=(up.source_unique_id,) if up.kind == "source" else (),
            timeout_s=up.timeout_s,
            poke_interval_s=up.poke_interval_s,
            mode=_one_of(SENSOR_MODES, up.mode, where, "wait.mode", self.m.path),
            accept=tuple(Acceptance(_one_of(ACCEPTED_CODES, code, where, "accept", self.m.path), reason)
                         for code, reason in up.accept),
            upstream=(),
            # the other project's nodes, as this manifest resolved the refs
            refs=tuple(self.refs.targets[up.source_unique_id]) if up.kind == "ref" else None,
        )

    def _pipeline_sensor(self, dep: str, pipeline: str) -> SensorTask:
        """A dependency on a node of the same domain in another pipeline (another DAG)."""
        from ..convention import DEFAULT_WAIT, seconds

        node = self.m.nodes[dep]
        key = model_key(node.name, node.version)  # a version is named exactly: the DAG waits on that task
        return SensorTask(
            task_id=self._sensor_ids[(self.domain, key)],
            kind="sensor",
            upstream_domain=self.domain,
            upstream_model=key,
            sources=(),
            timeout_s=seconds(DEFAULT_WAIT["timeout"]),
            poke_interval_s=seconds(DEFAULT_WAIT["poke_interval"]),
            mode=_one_of(SENSOR_MODES, DEFAULT_WAIT["mode"], dep, "wait.mode", self.m.path),
            accept=(),
            upstream=(),
        )

    def _unit_tests_by_task(self, order: Mapping[str, int]) -> dict[str, list[str]]:
        """Unit tests run in their model's task only when the model opts in (``unit_tests: true``);
        the others are CI's (docs/plan.md), named in one note."""
        found: dict[str, list[str]] = defaultdict(list)
        skipped = []
        for test in sorted(self.m.unit_tests.values(), key=lambda t: t.unique_id):
            if test.package_name != self.m.project_name:
                continue
            model = test.model
            if model is not None and model in order and self.r.nodes[model].unit_tests:
                found[model].append(test.unique_id)
            else:
                skipped.append(test.unique_id)
        if skipped:
            shown = ", ".join(skipped[:10]) + (f" (+{len(skipped) - 10} more)" if len(skipped) > 10 else "")
            self.notes.append(f"{len(skipped)} unit test(s) run in no task: unit tests belong in CI (`dbt test "
                              f"--select test_type:unit`); a model opts in with handoff: {{unit_tests: true}}: {shown}")
        return found

    def _tests_by_task(self, order: Mapping[str, int], inputs: dict[str, set[str]]) -> dict[str, list[str]]:
        """Test policy (docs/plan.md): a test runs in the task of its parent that comes last in the
        domain's topological order; that task also waits for the test's other parents (added to
        ``inputs``). Every added edge runs from an earlier node to a later one in one fixed order,
        so no placement can make a node wait on its own descendant: the plan stays acyclic."""
        found: dict[str, list[str]] = defaultdict(list)
        unscheduled: list[tuple[Node, set[str]]] = []
        for test in self.m.own_nodes("test"):
            parents = self._test_parents(test)
            scheduled = [p for p in parents if p in order]
            if not scheduled:
                unscheduled.append((test, parents))
                continue
            home = max(scheduled, key=order.__getitem__)
            found[home].append(test.unique_id)
            inputs[home].update(p for p in parents if p != home and (p in order or p in self.r.upstreams))
        self.notes.extend(_unscheduled_test_notes(unscheduled))
        return found

    def _test_parents(self, test: Node) -> set[str]:
        """What a test reads, as task inputs: own executable nodes and declared upstream sources
        (through ephemeral models); raw sources and package nodes are left out."""
        parents: set[str] = set()
        for dep in test.depends_on:
            node = self.m.nodes.get(dep)
            if node is not None and node.is_ephemeral and dep in self.r.nodes:
                parents |= self._inputs(node)
            elif dep in self.r.nodes or dep in self.r.upstreams:
                parents.add(dep)
        return parents


def _refuse_case_only_twins(nodes: Iterable[Node], where: str) -> None:
    """Two nodes whose unique ids or relations differ only in case would write one table on most
    warehouses (DuckDB, Snowflake, BigQuery compare identifiers case-insensitively)."""
    seen: dict[str, Node] = {}
    for node in sorted(nodes, key=lambda n: n.unique_id):
        relation = node.relation_name if isinstance(node.relation_name, str) else ""  # the schema judges it later
        for key in {f"id:{node.unique_id.lower()}", f"relation:{relation.lower()}"}:
            if key == "relation:":
                continue
            other = seen.setdefault(key, node)
            if other is not node:
                raise HandoffError(
                    f"{other.unique_id} and {node.unique_id} differ only in case: most warehouses treat their "
                    f"tables ({other.relation_name} and {node.relation_name}) as one", where=where,
                    hint="rename one of them (or give it another alias)")


def _unscheduled_test_notes(unscheduled: list[tuple[Node, set[str]]]) -> list[str]:
    """Notes for the tests no task runs, grouped by why (a project has many tests of raw sources)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for test, parents in unscheduled:
        if not test.depends_on:
            why = "read no model, seed, snapshot or source"
        elif parents:
            why = "read only other domains' models (their domain tests them)"
        else:
            why = "read only raw sources, or models handoff does not schedule"
        groups[why].append(test.unique_id)
    notes = []
    for why, ids in sorted(groups.items()):
        shown = ", ".join(sorted(ids)[:10]) + (f" (+{len(ids) - 10} more)" if len(ids) > 10 else "")
        notes.append(f"{len(ids)} test(s) run in no task: they {why}; run them in CI (`dbt test`): {shown}")
    return notes


def _merged_sensor(first: SensorTask, second: SensorTask) -> SensorTask:
    """One sensor standing for two sources (or refs) of the same upstream model: their sources and
    refs are joined (sorted); an acknowledged code counts once, its reasons joined (sorted, so the
    plan stays deterministic)."""
    reasons: dict[AcceptedCode, set[str]] = {}
    for entry in (*first.accept, *second.accept):
        reasons.setdefault(entry.code, set()).add(entry.reason)
    accept = tuple(Acceptance(code, "; ".join(sorted(found))) for code, found in sorted(reasons.items()))
    merged = replace(first, sources=tuple(sorted({*first.sources, *second.sources})), accept=accept)
    if second.refs is not None:
        merged = replace(merged, refs=tuple(sorted({*(first.refs or ()), *second.refs})))
    return merged


def _read_columns(reads: Mapping[str, Demand | None]) -> dict[str, ReadColumns | None]:
    """A sensor's ``reads`` as the plan writes it: per downstream task id, the columns (sorted) or None."""
    return {task_id: None if demand is None else ReadColumns(demand.all, tuple(sorted(demand.names)))
            for task_id, demand in reads.items()}


L = TypeVar("L", bound=str)

# each Literal of plan_model by its text: compile names the node and key of a value outside it
TASK_KINDS: Final[Mapping[str, TaskKind]] = {k.removeprefix("dbt_"): k for k in get_args(TaskKind)}
ACCESS: Final[Mapping[str, Access]] = {a: a for a in get_args(Access)}
SENSOR_MODES: Final[Mapping[str, SensorMode]] = {m: m for m in get_args(SensorMode)}
EXECUTIONS: Final[Mapping[str, Execution]] = {e: e for e in get_args(Execution)}
COLUMNS_FROM: Final[Mapping[str, ColumnsFrom]] = {c: c for c in get_args(ColumnsFrom)}
ACCEPTED_CODES: Final[Mapping[str, AcceptedCode]] = {c: c for c in get_args(AcceptedCode)}
MUTED_KINDS: Final[Mapping[str, MutedKind]] = {k: k for k in get_args(MutedKind)}


def _one_of(allowed: Mapping[str, L], value: str, node: str, key: str, where: str) -> L:
    """``value`` as the plan's type for ``key``; a value outside it (a validator missed it) is a
    one-line HandoffError naming the node and key."""
    try:
        return allowed[value]
    except KeyError:
        raise HandoffError(f"{node}: {key} {value!r} is not one of {', '.join(sorted(allowed))}", where=where,
                           hint="fix that value in the dbt project (its YAML or dbt_project.yml), then `handoff "
                                "package` and compile again") from None

