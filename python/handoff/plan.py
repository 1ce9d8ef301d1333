"""Compiles a manifest into a plan: the small, versioned JSON the Airflow factory and the registry read.

The plan is data. Model names, descriptions and meta values never become code: the factory
reads them as strings. Compiling is pure and deterministic (same manifest -> same bytes).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema

from . import __version__, schemas
from .columns import Catalog, ColumnResolver, demand_from_json, demand_to_json
from .convention import NodeSettings, Resolved, Upstream, resolve
from .cross_project import RefUpstreams
from .errors import HandoffError
from .manifest import Manifest, Node

PLAN_VERSION = 1
_INVALID_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
MAX_ID_LENGTH = 250


def task_id_for_node(node: Node) -> str:
    """Airflow task_id of a model/seed/snapshot: its name (+ _v<version>), invalid characters as '_'."""
    base = node.name if node.version is None else f"{node.name}_v{node.version}"
    return _INVALID_ID_CHARS.sub("_", base)[:MAX_ID_LENGTH]


def sensor_task_id(domain: str, model: str) -> str:
    """Airflow task_id of the sensor waiting on ``domain``'s ``model``."""
    return _INVALID_ID_CHARS.sub("_", f"wait__{domain}__{model}")[:MAX_ID_LENGTH]


def dag_id_for(domain: str, pipeline: str) -> str:
    """The Airflow dag_id of a domain's pipeline: always derived, never chosen (validate_plan checks it)."""
    return f"{domain}__{pipeline}"


def dbt_selector(node: Node) -> str:
    """A dbt --select argument that matches exactly this node."""
    return node.name if node.version is None else f"{node.name}.v{node.version}"


def compile_manifest(manifest: Manifest, catalog: Catalog | None = None, *,
                     projects: Mapping[str, str] | None = None, registry: str = "the registry") -> dict[str, Any]:
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
    from .cross_project import ref_upstreams

    refs = ref_upstreams(list(resolved.refs), resolved.ref_waits, projects, where=manifest.path, registry=registry)
    if refs.upstreams:
        resolved = replace(resolved, upstreams={**resolved.upstreams, **refs.upstreams})
    return _Compiler(manifest, resolved, catalog, refs).plan()


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
            elif dep in self.m.nodes:
                other = self.m.nodes[dep]
                if other.resource_type in ("model", "seed", "snapshot"):
                    self.notes.append(f"{node.unique_id} depends on {dep} of package "
                                      f"'{other.package_name}', which handoff does not schedule")
            else:
                raise HandoffError(f"node {node.unique_id} depends on {dep}, which is not in the manifest",
                                   where=self.m.path, hint="the manifest is inconsistent; re-run `dbt parse`")
        return found

    # -- plan ----------------------------------------------------------------------------
    def plan(self) -> dict[str, Any]:
        executable = [n for n in self.m.own_nodes() if n.unique_id in self.r.nodes and not n.is_ephemeral]
        inputs = {n.unique_id: self._inputs(n) for n in executable}
        tests = self._tests_by_task({n.unique_id for n in executable}, inputs)
        by_pipeline: dict[str, list[Node]] = defaultdict(list)
        for node in executable:
            pipeline = self.r.nodes[node.unique_id].pipeline
            assert pipeline is not None
            by_pipeline[pipeline.name].append(node)

        node_task: dict[str, tuple[str, str]] = {}  # unique_id -> (pipeline, task_id)
        owners: dict[str, str] = {}
        for pipeline_name, nodes in by_pipeline.items():
            for node in nodes:
                task_id = task_id_for_node(node)
                clash = owners.get(task_id)
                if clash is not None:
                    raise HandoffError(
                        f"task id '{task_id}' of {node.unique_id} collides with {clash} after name normalisation",
                        where=self.m.path, hint="rename one of the models (task ids keep A-Z a-z 0-9 _ . -)")
                owners[task_id] = node.unique_id
                node_task[node.unique_id] = (pipeline_name, task_id)

        pipelines = []
        for pipeline_name in sorted(by_pipeline):
            nodes = by_pipeline[pipeline_name]
            info = self.r.nodes[nodes[0].unique_id].pipeline
            assert info is not None
            tasks: list[dict[str, Any]] = []
            sensors: dict[str, dict[str, Any]] = {}
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
                    if sensor["task_id"] in owners:
                        raise HandoffError(f"sensor task id '{sensor['task_id']}' collides with a model's task id",
                                           where=self.m.path, hint="rename the model")
                    existing = sensors.setdefault(sensor["task_id"], sensor)
                    if existing is not sensor:
                        existing["sources"] = sorted(set(existing["sources"]) | set(sensor["sources"]))
                    if existing is not sensor and "refs" in sensor:
                        existing["refs"] = sorted(set(existing.get("refs", [])) | set(sensor["refs"]))
                    if dep in self.r.upstreams and node.compiled_code is not None:
                        for read in self.refs.targets.get(dep, (dep,)):
                            self._add_reads(existing, node, read, node_task[node.unique_id][1])
                    upstream_ids.add(sensor["task_id"])
                tasks.append(self._node_task(node, self.r.nodes[node.unique_id], sorted(upstream_ids),
                                             tests.get(node.unique_id, []), node_task))
            tasks.extend(sensors.values())
            tasks.sort(key=lambda t: t["task_id"])
            pipelines.append({
                "name": pipeline_name,
                "dag_id": dag_id_for(self.domain, pipeline_name),
                "schedule": info.schedule,
                "start_date": info.start_date,
                "description": info.description,
                "max_active_runs": info.max_active_runs,
                "execution": info.execution,
                "tasks": tasks,
            })

        domain = self.r.domain
        assert domain is not None
        return {
            "plan_version": PLAN_VERSION,
            "handoff_version": __version__,
            "domain": {"name": domain.name, "owner": domain.owner, "slack": domain.slack,
                       "description": domain.description},
            "dbt": {"project_name": self.m.project_name, "dbt_version": self.m.dbt_version,
                    "manifest_sha256": self.m.sha256},
            "pipelines": pipelines,
            "notes": sorted(set(self.notes)),
        }

    def _add_reads(self, sensor: dict[str, Any], node: Node, source_id: str, task_id: str) -> None:
        """What ``node`` (task ``task_id``) reads of the upstream model behind ``source_id``: a sensor's
        ``reads`` maps task ids to ``{"all", "columns"}`` or null (unknown)."""
        found = self.columns.reads(node, [source_id])[source_id].demand
        reads = sensor.setdefault("reads", {})
        if task_id in reads and (reads[task_id] is None or found is None):
            reads[task_id] = None
        elif task_id in reads:
            reads[task_id] = demand_to_json(demand_from_json(reads[task_id]) | found)  # type: ignore[operator]
        else:
            reads[task_id] = demand_to_json(found)

    def _node_task(self, node: Node, s: NodeSettings, upstream: list[str], tests: list[Node],
                   node_task: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
        task = self._task_fields(node, s, upstream, tests, node_task)
        if node.resource_type == "model" and node.access == "public":
            columns = self.columns.of(node.unique_id)
            if columns.known:
                task["columns"] = columns.to_json()
        return task

    def _task_fields(self, node: Node, s: NodeSettings, upstream: list[str], tests: list[Node],
                     node_task: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
        return {
            "task_id": node_task[node.unique_id][1],
            "kind": f"dbt_{node.resource_type}",
            "unique_id": node.unique_id,
            "name": node.name,
            "select": dbt_selector(node),
            "tests": sorted(t.name for t in tests),
            "relation": node.relation_name,
            "access": node.access or "protected",
            "owner": s.owner,
            "slack": s.slack,
            "available_by": s.available_by,
            "retries": s.retries,
            "retry_delay_s": s.retry_delay_s,
            "timeout_s": s.timeout_s,
            "pool": s.pool,
            "upstream": upstream,
        }

    def _sensor(self, up: Upstream) -> dict[str, Any]:
        sensor = {
            "task_id": sensor_task_id(up.domain, up.model),
            "kind": "sensor",
            "upstream_domain": up.domain,
            "upstream_model": up.model,
            "sources": [up.source_unique_id] if up.kind == "source" else [],
            "timeout_s": up.timeout_s,
            "poke_interval_s": up.poke_interval_s,
            "mode": up.mode,
            "upstream": [],
        }
        if up.kind == "ref":  # the other project's nodes, as this manifest resolved the refs
            sensor["refs"] = list(self.refs.targets[up.source_unique_id])
        return sensor

    def _pipeline_sensor(self, dep: str, pipeline: str) -> dict[str, Any]:
        """A dependency on a node of the same domain in another pipeline (another DAG)."""
        from .convention import DEFAULT_WAIT, seconds

        node = self.m.nodes[dep]
        return {
            "task_id": sensor_task_id(self.domain, node.name),
            "kind": "sensor",
            "upstream_domain": self.domain,
            "upstream_model": node.name,
            "sources": [],
            "timeout_s": seconds(DEFAULT_WAIT["timeout"]),
            "poke_interval_s": seconds(DEFAULT_WAIT["poke_interval"]),
            "mode": DEFAULT_WAIT["mode"],
            "upstream": [],
        }

    def _tests_by_task(self, executable: set[str], inputs: dict[str, set[str]]) -> dict[str, list[Node]]:
        """Test policy: a test runs in the task of its node; a test of several nodes runs in the task of
        the node it is attached to (dbt's attached_node, else the last parent by name), which then
        also waits for the test's other parents (added to ``inputs``)."""
        found: dict[str, list[Node]] = defaultdict(list)
        for test in self.m.own_nodes("test"):
            parents = sorted(self._test_parents(test) & executable)
            if not parents:
                continue  # a test of sources only: dbt source freshness territory, not a task's
            home = test.attached_node if test.attached_node in parents else parents[-1]
            found[home].append(test)
            for other in parents:
                if other != home:
                    inputs[home].add(other)
        return found

    def _test_parents(self, test: Node) -> set[str]:
        parents: set[str] = set()
        for dep in test.depends_on:
            node = self.m.nodes.get(dep)
            if node is not None and node.is_ephemeral:
                parents |= self._inputs(node)
            else:
                parents.add(dep)
        return parents


# --------------------------------------------------------------------------------------
# Reading and writing plans
# --------------------------------------------------------------------------------------

def dumps(plan: Mapping[str, Any]) -> str:
    """Canonical plan text: sorted keys, two-space indent, UTF-8, trailing newline."""
    from .files import dumps_strict

    return dumps_strict(plan, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def validate_plan(plan: Any, where: str) -> dict[str, Any]:
    """Check a plan's version and schema; returns it or raises a one-line HandoffError."""
    if not isinstance(plan, dict):
        raise HandoffError("a plan is a JSON object", where=where, hint="write plans with `handoff compile`")
    version = plan.get("plan_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise HandoffError(f"plan_version is {version!r}, not an integer", where=where,
                           hint="write plans with `handoff compile`")
    if version > PLAN_VERSION:
        raise HandoffError(f"plan version {version} is newer than this handoff reads ({PLAN_VERSION})",
                           where=where, hint="upgrade handoff where the plan is read, or compile with this version")
    if version < 1:
        raise HandoffError(f"plan version {version} does not exist", where=where)
    fast = schemas.fast_check("plan")  # compiled twin: ~11x faster on valid plans (schemas.py)
    error = None if fast is not None and fast(plan) else jsonschema.exceptions.best_match(
        schemas.validator("plan").iter_errors(plan))
    if error is not None:
        raise HandoffError(f"plan does not match schemas/plan.schema.json at {_location(plan, error.absolute_path)}: "
                           f"{_shorter(error.message)}", where=where, hint="re-compile it with `handoff compile`")
    _check_references(plan, where)
    _check_derived(plan, where)
    return plan


def _check_derived(plan: dict[str, Any], where: str) -> None:
    """What the schema cannot say: ids derived from names, real calendar dates, schedules that fire.

    A dag_id is always ``<domain>__<pipeline>`` (a plan must not claim another domain's DAG, issue
    #12), a sensor's task id is derived from what it waits on, a start date exists in the calendar
    and a schedule fires at least once (Airflow would fail to import the DAG otherwise)."""
    from datetime import date

    from .alignment import to_cron

    domain = plan["domain"]["name"]
    for pipeline in plan["pipelines"]:
        name = pipeline["name"]
        expected = dag_id_for(domain, name)
        if pipeline["dag_id"] != expected:
            raise HandoffError(f"pipeline {name}: dag_id '{pipeline['dag_id']}' is not '{expected}' — a dag_id is "
                               "always <domain>__<pipeline>", where=where, hint="re-compile it with `handoff compile`")
        try:
            date.fromisoformat(pipeline["start_date"])
        except ValueError:
            raise HandoffError(f"pipeline {name}: start_date '{pipeline['start_date']}' is not a date in the calendar",
                               where=where, hint="fix handoff_pipeline.start_date and re-compile") from None
        try:
            to_cron(pipeline["schedule"])
        except HandoffError as exc:
            raise HandoffError(f"pipeline {name}: {exc.problem}", where=where,
                               hint=f"{exc.hint or 'fix handoff_pipeline.schedule'}, then re-compile") from None
        for task in pipeline["tasks"]:
            if task["kind"] == "sensor":
                wanted = sensor_task_id(task["upstream_domain"], task["upstream_model"])
                if task["task_id"] != wanted:
                    raise HandoffError(f"pipeline {name}: sensor '{task['task_id']}' waiting on "
                                       f"{task['upstream_domain']}.{task['upstream_model']} must be named '{wanted}'",
                                       where=where, hint="re-compile it with `handoff compile`")


def _location(plan: Any, path: Iterable[Any]) -> str:
    """A JSON path with the pipeline's and the task's names: pipelines/0 (daily)/tasks/3 (orders)/pool."""
    parts: list[str] = []
    node = plan
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
        label = str(part)
        if isinstance(part, int) and isinstance(node, dict):
            name = node.get("task_id") if "kind" in node else node.get("name")
            if isinstance(name, str) and name.isprintable() and len(name) <= 80:
                label = f"{part} ({name})"
        parts.append(label)
    return "/".join(parts) or "(root)"


def _shorter(message: str) -> str:
    """jsonschema quotes whole sub-documents in some messages; one line stays readable."""
    return message if len(message) <= 300 else message[:297] + "..."


def _check_references(plan: dict[str, Any], where: str) -> None:
    for pipeline in plan["pipelines"]:
        ids = Counter(t["task_id"] for t in pipeline["tasks"])
        duplicates = sorted(i for i, n in ids.items() if n > 1)
        if duplicates:
            raise HandoffError(f"pipeline {pipeline['name']}: duplicate task id(s) {', '.join(duplicates)}",
                               where=where, hint="re-compile the plan")
        known = set(ids)
        for task in pipeline["tasks"]:
            missing = sorted(set(task["upstream"]) - known)
            if missing:
                raise HandoffError(f"task {task['task_id']} waits on unknown task(s) {', '.join(missing)}",
                                   where=where, hint="re-compile the plan")


def load_plan(path: str | Path) -> dict[str, Any]:
    """Read and validate a plan file."""
    from .files import read_json

    data = read_json(path, what="file", hint="write it with `handoff compile`")
    return validate_plan(data, str(path))


def load_plans(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Plans of several files; a folder means every *.plan.json in it."""
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.glob("*.plan.json")) if p.is_dir() else [p])
    return [load_plan(f) for f in files]


def write_atomically(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (``handoff.files.write_atomically``)."""
    from .files import write_atomically as write

    write(path, text)
