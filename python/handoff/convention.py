"""The meta convention, part two: a project's effective settings (domain, pipelines, owners,
SLAs, waits) and the project-level rules (HO2xx), over a whole manifest (``resolve``, pure).

Each meta block is first checked against the schema (HO1xx, ``handoff.meta_schema``); rule codes
(docs/convention.md lists them all) are shared with the dbt macros, which must give the same
verdict (code and key path) on the same meta.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, overload

from .manifest import Manifest
from .meta_schema import validate_meta
from .sla import duration_seconds, sla_form_problem

if TYPE_CHECKING:
    from .cross_project import CrossProjectRef


DEFAULT_START_DATE = "2024-01-01"
DEFAULT_RETRIES = 1
DEFAULT_RETRY_DELAY = "5m"
DEFAULT_WAIT = {"timeout": "6h", "poke_interval": "5m", "mode": "deferrable"}
DEFAULT_MAX_ACTIVE_RUNS = 1
DEFAULT_EXECUTION = "batched"  # docs/execution.md, decisions.md D29
DEFAULT_TIMEZONE = "UTC"
ACCESS_LEVELS = ("public", "protected", "private")  # dbt's; the plan schema allows only these
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@overload
def seconds(duration: str) -> int: ...


@overload
def seconds(duration: str | None) -> int | None: ...


def seconds(duration: str | None) -> int | None:
    """'90s' / '5m' / '6h' / '1d' -> seconds (None stays None)."""
    if duration is None:
        return None
    return int(duration[:-1]) * _UNITS[duration[-1]]


@dataclass(frozen=True)
class Violation:
    """A rule broken by one node or source; prints as one line."""

    code: str
    unique_id: str
    file: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.unique_id} ({self.file})" if self.file else self.unique_id
        key = f" meta.{self.key}:" if self.key else ":"
        return f"{self.code} {where}{key} {self.message}"


@dataclass(frozen=True)
class DomainInfo:
    name: str
    owner: str
    slack: str
    description: str = ""
    mute: tuple[str, ...] = ()  # message kinds the domain's channel does not receive (handoff_domain.mute)


@dataclass(frozen=True)
class PipelineInfo:
    name: str
    schedule: str
    start_date: str = DEFAULT_START_DATE
    description: str = ""
    max_active_runs: int = DEFAULT_MAX_ACTIVE_RUNS
    execution: str = DEFAULT_EXECUTION
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True)
class NodeSettings:
    """A node's effective handoff settings after project -> folder -> model composition."""

    unique_id: str
    domain: str
    pipeline: PipelineInfo | None
    owner: str
    slack: str
    available_by: str | None
    available_within_s: int | None
    retries: int
    retry_delay_s: int
    timeout_s: int | None
    pool: str | None
    unit_tests: bool = False  # run the model's unit tests in its task too (opt-in, docs/plan.md)


@dataclass(frozen=True)
class Upstream:
    """Another domain's model this project reads: a source table marked handoff_upstream (``kind``
    "source", ``source_unique_id`` its unique_id), or a cross-project ref (``kind`` "ref",
    ``source_unique_id`` the id handoff.cross_project gives it, ``source_name`` the dbt project)."""

    source_unique_id: str
    source_name: str
    table: str
    domain: str
    model: str
    timeout_s: int
    poke_interval_s: int
    mode: str
    kind: str = "source"
    accept: tuple[tuple[str, str], ...] = ()  # (rule code, reason) of the warnings acknowledged


@dataclass(frozen=True)
class Resolved:
    project_name: str
    domain: DomainInfo | None
    nodes: Mapping[str, NodeSettings]
    upstreams: Mapping[str, Upstream]  # the sources marked handoff_upstream, by unique_id
    violations: tuple[Violation, ...]
    refs: tuple[CrossProjectRef, ...] = ()  # cross-project refs (dbt Mesh), handoff.cross_project
    ref_waits: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # their waits, by upstream id


def merged_source_meta(source_meta: Mapping[str, Any], table_meta: Mapping[str, Any]) -> dict[str, Any]:
    """A source table's effective meta: table keys win; inside handoff_upstream, key by key."""
    merged = {**source_meta, **table_meta}
    outer, inner = source_meta.get("handoff_upstream"), table_meta.get("handoff_upstream")
    if isinstance(outer, dict) and isinstance(inner, dict):
        merged["handoff_upstream"] = {**outer, **inner}
    return merged


def resolve(manifest: Manifest) -> Resolved:
    """Check every own node and source and compute effective settings (pure)."""
    violations: list[Violation] = []
    nodes: dict[str, NodeSettings] = {}
    domains: dict[str, list[str]] = {}
    domain_info: DomainInfo | None = None
    pipelines: dict[str, tuple[PipelineInfo, str]] = {}

    for node in manifest.own_nodes():
        issues = validate_meta("node", node.meta)
        violations.extend(Violation(i.code, node.unique_id, node.original_file_path, i.path, i.message)
                          for i in issues)
        if issues:
            continue
        meta = node.meta
        domain = meta.get("handoff_domain")
        if domain is None:
            violations.append(Violation(
                "HO201", node.unique_id, node.original_file_path, "handoff_domain",
                "no domain: set +meta: {handoff_domain: {name, owner, slack}} for the project in dbt_project.yml"))
            continue
        info = DomainInfo(domain["name"], domain["owner"], domain["slack"], domain.get("description", ""),
                          tuple(sorted(k for k, on in (domain.get("mute") or {}).items() if on is True)))
        domains.setdefault(_domain_key(info), []).append(node.unique_id)
        domain_info = domain_info or info
        pipeline = meta.get("handoff_pipeline")
        pipeline_info = None
        if pipeline is None:
            if not node.is_ephemeral:
                violations.append(Violation(
                    "HO202", node.unique_id, node.original_file_path, "handoff_pipeline",
                    "no pipeline: set +meta: {handoff_pipeline: {name, schedule}} in dbt_project.yml "
                    "for the project or this folder"))
                continue
        else:
            pipeline_info = PipelineInfo(pipeline["name"], pipeline["schedule"],
                                         pipeline.get("start_date", DEFAULT_START_DATE),
                                         pipeline.get("description", ""),
                                         pipeline.get("max_active_runs", DEFAULT_MAX_ACTIVE_RUNS),
                                         pipeline.get("execution", DEFAULT_EXECUTION),
                                         pipeline.get("timezone", DEFAULT_TIMEZONE))
            if not node.is_ephemeral:
                first = pipelines.setdefault(pipeline_info.name, (pipeline_info, node.unique_id))
                here, seen = pipeline_info, first[0]
                if _pipeline_key(seen) != _pipeline_key(here):
                    violations.append(Violation(
                        "HO203", node.unique_id, node.original_file_path, "handoff_pipeline",
                        f"pipeline '{here.name}' has schedule '{here.schedule}' ({_pipeline_extras(here)}) here "
                        f"but '{seen.schedule}' ({_pipeline_extras(seen)}) on {first[1]}; "
                        "give the pipeline one schedule, or name the folder's pipeline differently"))
                violations.extend(_time_rules(node, meta.get("handoff") or {}, pipeline_info,
                                              first_of_pipeline=first[1] == node.unique_id))
        defaults = meta.get("handoff_defaults") or {}
        own = meta.get("handoff") or {}
        knobs = {**defaults, **own}
        owner = own.get("owner") or _group_owner(manifest, node.group) or info.owner
        if node.access == "public" and not owner:
            violations.append(Violation("HO205", node.unique_id, node.original_file_path, "handoff.owner",
                                        "public model without an owner: set meta.handoff.owner"))
        if node.access is not None and node.access not in ACCESS_LEVELS:  # only an edited manifest (dbt refuses it)
            violations.append(Violation("HO210", node.unique_id, node.original_file_path, "access",
                                        "access is not one of public, protected, private: set `access:` (for a "
                                        "seed, `config: access:`) in its YAML to one of them"))
        nodes[node.unique_id] = NodeSettings(
            unique_id=node.unique_id,
            domain=info.name,
            pipeline=pipeline_info,
            owner=owner,
            slack=own.get("slack") or info.slack,
            available_by=own.get("available_by"),
            available_within_s=duration_seconds(own["available_within"]) if own.get("available_within") else None,
            retries=int(knobs.get("retries", DEFAULT_RETRIES)),
            retry_delay_s=seconds(knobs.get("retry_delay", DEFAULT_RETRY_DELAY)) or 0,
            timeout_s=seconds(knobs.get("timeout")),
            pool=knobs.get("pool"),
            unit_tests=bool(knobs.get("unit_tests", False)),
        )

    if len(domains) > 1:
        described = "; ".join(f"{key} on {len(uids)} node(s), e.g. {uids[0]}" for key, uids in sorted(domains.items()))
        for _, uids in sorted(domains.items())[1:]:
            node = manifest.nodes[uids[0]]
            violations.append(Violation(
                "HO206", node.unique_id, node.original_file_path, "handoff_domain",
                f"one project is one domain, but it declares several: {described}; "
                "set handoff_domain once, at project level"))

    upstreams: dict[str, Upstream] = {}
    own_domain = domain_info.name if domain_info else None
    for src in manifest.own_sources():
        meta = merged_source_meta(src.source_meta, src.meta)
        issues = validate_meta("source", meta)
        violations.extend(Violation(i.code, src.unique_id, src.original_file_path, i.path, i.message)
                          for i in issues)
        declared = meta.get("handoff_upstream")
        if issues or declared is None:
            continue
        if declared["domain"] == own_domain:
            violations.append(Violation(
                "HO204", src.unique_id, src.original_file_path, "handoff_upstream.domain",
                f"source points at its own domain '{own_domain}': use ref('{declared.get('model', src.name)}') "
                "instead of a source"))
            continue
        wait = {**DEFAULT_WAIT, **(declared.get("wait") or {})}
        upstreams[src.unique_id] = Upstream(
            source_unique_id=src.unique_id,
            source_name=src.source_name,
            table=src.name,
            domain=declared["domain"],
            model=declared.get("model", src.name),
            timeout_s=seconds(wait["timeout"]) or 0,
            poke_interval_s=seconds(wait["poke_interval"]) or 0,
            mode=wait["mode"],
            accept=tuple(sorted((declared.get("accept") or {}).items())),
        )

    from .cross_project import find_refs, ref_waits

    refs = find_refs(manifest)
    waits, disagreements = ref_waits(manifest, refs, set(nodes))
    violations.extend(disagreements)

    return Resolved(
        project_name=manifest.project_name,
        domain=domain_info,
        nodes=nodes,
        upstreams=upstreams,
        violations=tuple(violations),
        refs=tuple(refs),
        ref_waits=waits,
    )


def _pipeline_key(info: PipelineInfo) -> tuple[str, str, int, str, str]:
    return info.schedule, info.start_date, info.max_active_runs, info.execution, info.timezone


def _pipeline_extras(info: PipelineInfo) -> str:
    return (f"start {info.start_date}, max_active_runs {info.max_active_runs}, execution {info.execution}, "
            f"timezone {info.timezone}")


def _time_rules(node: Any, own: Mapping[str, Any], pipeline: PipelineInfo, *,
                first_of_pipeline: bool) -> list[Violation]:
    """HO208 (an SLA ambiguous for the pipeline's schedule) and HO209 (a timezone the timezone
    database does not know; reported once, on the first node of the pipeline)."""
    found = []
    problem = sla_form_problem(pipeline.schedule, own.get("available_by"), own.get("available_within"))
    if problem is not None:
        found.append(Violation("HO208", node.unique_id, node.original_file_path, "handoff.available_by", problem))
    if first_of_pipeline and never_fires(pipeline.schedule):
        found.append(Violation(
            "HO211", node.unique_id, node.original_file_path, "handoff_pipeline.schedule",
            f"schedule '{pipeline.schedule}' never fires: no month it names has the day of month it names "
            "(February has at most 29 days; April, June, September and November 30): fix the day or month field"))
    if first_of_pipeline and pipeline.timezone not in known_timezones():
        found.append(Violation(
            "HO209", node.unique_id, node.original_file_path, "handoff_pipeline.timezone",
            f"timezone '{pipeline.timezone}' is not in the timezone database: write an IANA name such as "
            "Europe/Berlin, America/New_York or UTC"))
    return found


_MONTH_NAMES = {name: n for n, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: 29 in leap years


def never_fires(schedule: str) -> bool:
    """Whether a five-field cron (already matching the schema's pattern) never fires: no month it
    names has a day of month it names (``0 0 30 2 *``, ``0 0 31 4,6 *``), whatever its day-of-week
    field (croniter, which Airflow's CronTriggerTimetable uses, finds no date then either). Presets
    always fire. The macro handoff_rule_pipeline_never_fires is the same rule (HO211)."""
    fields = schedule.split()
    if len(fields) != 5:
        return False
    days, months = _expand(fields[2], 1, 31, {}), _expand(fields[3], 1, 12, _MONTH_NAMES)
    return bool(days) and bool(months) and all(min(days) > _MONTH_DAYS[m - 1] for m in months)


def _expand(field: str, low: int, high: int, names: Mapping[str, int]) -> set[int]:
    found: set[int] = set()
    for item in field.split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = low, high
        else:
            start, _, end = base.partition("-")
            first = names.get(start, 0) or int(start)
            last = (names.get(end, 0) or int(end)) if end else (high if step_text else first)
        found.update(range(first, last + 1, step))
    return found


@lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    """IANA timezone names (the tzdata package): what HO209 accepts, with UTC."""
    import zoneinfo

    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def _domain_key(info: DomainInfo) -> str:
    """The domain-level keys nodes must agree on (HO206; the macro handoff_check_project says the same)."""
    muted = f", mute: {' '.join(info.mute)}" if info.mute else ""
    return f"{{name: {info.name}, owner: {info.owner}, slack: {info.slack}{muted}}}"


def _group_owner(manifest: Manifest, group: str | None) -> str | None:
    found = manifest.groups.get(group) if group else None
    if found is None:
        return None
    return found.owner_name or found.owner_email
