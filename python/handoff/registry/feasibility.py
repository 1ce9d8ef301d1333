"""SLA feasibility over the mesh (rules HO305 and HO308; pure): docs/registry.md.

For a model with an SLA and each run of its pipeline over a representative window, the run's
deadline (``handoff.sla.deadline``) must not come before the deadline of any run it waits on:

* in its own DAG, the models upstream of it in the *same* run;
* through a sensor (another pipeline or another domain), the upstream run the alignment rule
  picks (latest upstream tick ≤ the run's logical date), and transitively everything *that* run
  waits on.

A model without an SLA passes its upstreams' deadlines on. The earliest violated run is reported
with both deadlines and an SLA value that clears every run of the window (HO305). A run whose
deadline is not after its own start (a time of day the clock skips that day, or a plan written by
hand) is a warning (HO308).

The window, per model: the ticks of its pipeline in 2024 — the whole year when its pipeline or
any pipeline it waits on (transitively) has a day-of-month or month field; otherwise one cycle
(two days, or two weeks when a day-of-week field is set) plus two days around every month end
and a cycle around every daylight-saving switch of each timezone involved.

Just over 400 lines on purpose: one rule pair (HO305/HO308) whose window, propagation and
suggested fix only make sense together; the deadline arithmetic itself is ``handoff.sla``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ..sla import Sla, by_deadline, deadline, format_duration
from ..ticks import Schedule, latest_tick_at_or_before, schedule_of, ticks_between, wall_clock, zone
from .mesh import Task

if TYPE_CHECKING:
    from .checks import Finding, _Graph

Node = tuple[str, str]  # (dag_id, task_id)
YEAR_START = datetime(2024, 1, 1, tzinfo=timezone.utc)
YEAR_END = datetime(2025, 1, 1, tzinfo=timezone.utc)
MAX_RUNS_CHECKED = 20_000  # per model (an every-minute pipeline is cut short)
_ONE_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Due:
    """The latest deadline a run waits on: whose (``origin``, a model task, at ``origin_run``),
    and the sensors crossed on the way (downstream first)."""

    deadline: datetime
    origin: Node
    origin_run: datetime
    sensors: tuple[Node, ...] = ()


@dataclass(frozen=True)
class _Waits:
    """What every run of a task waits on inside its DAG: the latest available_by and the longest
    available_within among the models upstream of it (the run is the same), and the sensors
    upstream of it, through which it waits on other DAGs' runs."""

    by: tuple[str, Node] | None = None
    within: tuple[int, Node] | None = None
    sensors: frozenset[Node] = frozenset()


class Feasibility:
    """The HO305/HO308 findings of one mesh graph (``checks._Graph``), computed on demand."""

    def __init__(self, graph: _Graph, skip: set[Node]) -> None:
        self.graph = graph
        self.skip = skip  # tasks on a cycle (HO304): walking them would step back in time forever
        self._waits: dict[Node, _Waits] = {}
        self._due: dict[tuple[Node, datetime], Due | None] = {}
        self._active: set[tuple[Node, datetime]] = set()
        self._schedules: dict[str, frozenset[Schedule]] = {}
        self._waits_on_dags: dict[str, set[str]] = {}  # dag_id -> the DAGs its sensors wait on
        for sensor, target in graph.resolved.items():
            self._waits_on_dags.setdefault(sensor[0], set()).add(target.dag_id)

    # -- schedules ---------------------------------------------------------------------
    def schedule(self, node_or_dag: Node | str) -> Schedule:
        dag_id = node_or_dag if isinstance(node_or_dag, str) else node_or_dag[0]
        pipeline = self.graph.mesh.pipeline(dag_id)
        if pipeline is None:  # pragma: no cover - every task of a mesh belongs to one of its pipelines
            raise KeyError(dag_id)
        return schedule_of(pipeline.schedule, pipeline.timezone)

    def sla(self, node: Node) -> Sla:
        task = self.graph.task(node)
        return Sla() if task.is_sensor else Sla(task.available_by, task.available_within_s)

    def own_deadline(self, node: Node, run: datetime) -> datetime | None:
        sla = self.sla(node)
        return _deadline(run, sla, self.schedule(node)) if sla else None

    # -- what a run waits on -------------------------------------------------------------
    def waits(self, node: Node) -> _Waits:
        """_Waits of ``node`` (iterative over its in-DAG ancestors, memoized)."""
        if node in self._waits:
            return self._waits[node]
        stack: list[tuple[Node, bool]] = [(node, False)]
        on_path: set[Node] = set()
        while stack:
            current, expanded = stack.pop()
            if current in self._waits:
                continue
            preds = self._in_dag_preds(current)
            if not expanded:
                on_path.add(current)
                stack.append((current, True))
                stack.extend((p, False) for p in preds if p not in self._waits and p not in on_path)
                continue
            on_path.discard(current)
            by: tuple[str, Node] | None = None
            within: tuple[int, Node] | None = None
            sensors: set[Node] = set()
            for pred in preds:
                if pred not in self._waits:
                    continue  # an in-DAG cycle: plans are acyclic, so only a hand-made one
                if pred in self.graph.resolved:
                    sensors.add(pred)
                    continue
                sla, found = self.sla(pred), self._waits[pred]
                for candidate in (found.by, (sla.available_by, pred) if sla.available_by else None):
                    if candidate is not None and (by is None or candidate[0] > by[0]):
                        by = candidate
                for span in (found.within, (sla.available_within_s, pred) if sla.available_within_s else None):
                    if span is not None and (within is None or span[0] > within[0]):
                        within = span
                sensors |= found.sensors
            self._waits[current] = _Waits(by, within, frozenset(sensors))
        return self._waits[node]

    def _in_dag_preds(self, node: Node) -> list[Node]:
        if node in self.graph.resolved:
            return []  # a sensor's one predecessor is in another DAG
        return [(node[0], upstream) for upstream in self.graph.task(node).upstream
                if (node[0], upstream) not in self.skip and self.graph.mesh.task(node[0], upstream) is not None]

    def required(self, node: Node, run: datetime) -> Due | None:
        """The latest deadline among every run that ``node``'s run at ``run`` waits on (not its own)."""
        waits = self.waits(node)
        best: Due | None = None
        for origin in (waits.by[1] if waits.by else None, waits.within[1] if waits.within else None):
            if origin is None:
                continue
            found = self.own_deadline(origin, run)
            if found is not None and (best is None or found > best.deadline):
                best = Due(found, origin, run)
        for sensor in sorted(waits.sensors):
            target = self.graph.resolved[sensor]
            target_node = (target.dag_id, target.task_id)
            if target_node in self.skip:
                continue
            upstream_run = _aligned(self.schedule(target_node), run)
            found_due = self.latest(target_node, upstream_run)
            if found_due is not None and (best is None or found_due.deadline > best.deadline):
                best = Due(found_due.deadline, found_due.origin, found_due.origin_run, (sensor, *found_due.sensors))
        return best

    def latest(self, node: Node, run: datetime) -> Due | None:
        """The latest deadline of ``node``'s run at ``run`` including its own SLA (memoized)."""
        key = (node, run)
        if key in self._due:
            return self._due[key]
        if key in self._active:
            return None  # a cycle through sensors not caught as HO304 (hand-made plans)
        self._active.add(key)
        try:
            best = self.required(node, run)
            own = self.own_deadline(node, run)
            if own is not None and (best is None or own >= best.deadline):
                best = Due(own, node, run)
        finally:
            self._active.discard(key)
        self._due[key] = best
        return best

    # -- the window ----------------------------------------------------------------------
    def upstream_schedules(self, dag_id: str) -> frozenset[Schedule]:
        """The schedules of ``dag_id`` and of every DAG it waits on, transitively."""
        if dag_id in self._schedules:
            return self._schedules[dag_id]
        found: set[Schedule] = set()
        seen: set[str] = set()
        stack = [dag_id]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            found.add(self.schedule(current))
            stack.extend(self._waits_on_dags.get(current, ()))
        self._schedules[dag_id] = frozenset(found)
        return self._schedules[dag_id]

    def runs(self, node: Node) -> list[datetime]:
        own = self.schedule(node)
        return _window_ticks(own, self.upstream_schedules(node[0]))[:MAX_RUNS_CHECKED]

    # -- findings --------------------------------------------------------------------------
    def findings(self, candidates: Iterable[Node]) -> list[Finding]:
        found = []
        for node in sorted(candidates):
            task = self.graph.task(node)
            if task.is_sensor or node in self.skip or not self.sla(node):
                continue
            runs = self.runs(node)
            late: list[tuple[datetime, datetime, Due]] = []
            early: tuple[datetime, datetime] | None = None
            for run in runs:
                own = self.own_deadline(node, run)
                if own is None:  # pragma: no cover - only models with an SLA get here
                    continue
                if own <= run and early is None:
                    early = (run, own)
                upstream = self.required(node, run)
                if upstream is not None and upstream.deadline > own:
                    late.append((run, own, upstream))
            if late:
                found.append(self._late_finding(task, node, runs, late))
            if early is not None:
                found.append(self._early_finding(task, node, *early))
        return found

    def _late_finding(self, task: Task, node: Node, runs: list[datetime],
                      late: list[tuple[datetime, datetime, Due]]) -> Finding:
        from .checks import Finding

        run, own, upstream = late[0]
        origin = self.graph.task(upstream.origin)
        origin_sla = self.sla(upstream.origin)
        key, value = self.suggestion(node, runs)
        through = [self.graph.task(s).task_id for s in upstream.sensors]
        schedule = self.schedule(node)
        message = (f"{task.domain}.{task.model} ({self.sla(node).describe()}): run {_iso(run)} is due {_iso(own)}, "
                   f"but waits on {origin.domain}.{origin.model} ({origin_sla.describe()}) run "
                   f"{_iso(upstream.origin_run)}, due {_iso(upstream.deadline)}"
                   + (f" (through {', '.join(through)})" if through else "")
                   + (f"; {len(late)} of {len(runs)} runs checked" if len(late) > 1 else ""))
        own_key = "available_by" if self.sla(node).available_by is not None else "available_within"
        change = f"set {key}" if key == own_key else f"replace {own_key} with {key}"  # HO208: never both
        hint = (f"{change}: {_yaml(value)} on {task.model} (clears every run checked), or agree an earlier SLA "
                f"with {self.graph.team(origin.domain)}")
        domains = frozenset({task.domain, origin.domain, *(self.graph.task(s).domain for s in upstream.sensors)})
        detail = {
            "run": _iso(run), "deadline": _iso(own), "sla": self.sla(node).describe(),
            "upstream": {"model": f"{origin.domain}.{origin.model}", "task": origin.ref,
                         "sla": origin_sla.describe(), "run": _iso(upstream.origin_run),
                         "deadline": _iso(upstream.deadline)},
            "through_sensors": [self.graph.task(s).ref for s in upstream.sensors],
            "late_runs": len(late), "late_examples": [_iso(r) for r, _, _ in late[:5]],
            "window": _window_detail(runs, schedule, self.upstream_schedules(node[0])),
            "suggested": {"key": key, "value": value},
        }
        return Finding("HO305", task.ref, message, hint, domains, detail=detail)

    def _early_finding(self, task: Task, node: Node, run: datetime, due: datetime) -> Finding:
        from .checks import Finding

        schedule = self.schedule(node)
        local = wall_clock(run, schedule).strftime("%H:%M")
        message = (f"{task.domain}.{task.model} ({self.sla(node).describe()}): run {_iso(run)} "
                   f"(starts {local} {schedule.timezone}) is due {_iso(due)}, not after its own start")
        hint = ("pick an available_by later than the pipeline's time of day that the clock never skips, "
                "or use available_within")
        detail = {"run": _iso(run), "deadline": _iso(due), "local_start": local, "timezone": schedule.timezone}
        return Finding("HO308", task.ref, message, hint, frozenset({task.domain}), detail=detail)

    def suggestion(self, node: Node, runs: list[datetime]) -> tuple[str, str]:
        """An SLA of the model's own form that clears every run of ``runs`` (verified), else the
        available_within that does."""
        needs = [(run, due.deadline) for run in runs if (due := self.required(node, run)) is not None]
        within = max((_ceil_minute(need - run) for run, need in needs), default=_ONE_MINUTE)
        within_s = max(60, int(within.total_seconds()))
        schedule = self.schedule(node)
        if self.sla(node).available_by is not None:
            by = self._by_clearing(needs, schedule)
            if by is not None:
                return "available_by", by
        return "available_within", format_duration(within_s)

    def _by_clearing(self, needs: list[tuple[datetime, datetime]], schedule: Schedule) -> str | None:
        """The earliest HH:MM whose deadline clears every (run, needed deadline), or None."""
        earliest = "00:00"
        for run, need in needs:
            candidate = _earliest_by(run, need, schedule)
            if candidate is None:
                return None
            earliest = max(earliest, candidate)
        if all(by_deadline(run, earliest, schedule) >= need for run, need in needs):
            return earliest
        return None  # pragma: no cover - _earliest_by verified each run


def _earliest_by(run: datetime, need: datetime, schedule: Schedule) -> str | None:
    """The earliest HH:MM on the run's day whose deadline is ≥ ``need`` (binary search over the
    minutes of the day: the deadline grows with the time), or None if none is."""
    low, high = 0, 24 * 60 - 1
    if by_deadline(run, _hhmm(high), schedule) < need:
        return None
    while low < high:
        middle = (low + high) // 2
        if by_deadline(run, _hhmm(middle), schedule) >= need:
            high = middle
        else:
            low = middle + 1
    return _hhmm(low)


@functools.lru_cache(maxsize=65536)
def _deadline(run: datetime, sla: Sla, schedule: Schedule) -> datetime | None:
    """handoff.sla.deadline, remembered: a mesh's models share a few SLAs and schedules."""
    return deadline(run, sla, schedule)


@functools.lru_cache(maxsize=65536)
def _aligned(schedule: Schedule, run: datetime) -> datetime:
    return latest_tick_at_or_before(schedule, run)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _ceil_minute(delta: timedelta) -> timedelta:
    seconds = delta.total_seconds()
    return timedelta(minutes=-(-seconds // 60))


def _yaml(value: str) -> str:
    return f'"{value}"' if ":" in value else value


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


# --------------------------------------------------------------------------------------
# The representative window
# --------------------------------------------------------------------------------------

def _cycle(schedule: Schedule) -> str:
    """'day', 'week' or 'year': after how long the schedule's ticks repeat (wall clock)."""
    _, _, day_of_month, month, day_of_week = schedule.cron.split()
    if day_of_month != "*" or month != "*":
        return "year"
    return "week" if day_of_week != "*" else "day"


@functools.lru_cache(maxsize=256)
def _switches(timezone_name: str) -> tuple[date, ...]:
    """The days of 2024 on which ``timezone_name`` changes its UTC offset (daylight saving)."""
    tz = zone(timezone_name)
    days = []
    previous = YEAR_START.astimezone(tz).utcoffset()
    for day in range(1, 367):
        moment = (YEAR_START + timedelta(days=day)).astimezone(tz)
        offset = moment.utcoffset()
        if offset != previous:
            days.append((YEAR_START + timedelta(days=day - 1)).date())
        previous = offset
    return tuple(days)


@functools.lru_cache(maxsize=1024)
def _periods(schedules: frozenset[Schedule]) -> tuple[tuple[datetime, datetime], ...]:
    cycles = {_cycle(s) for s in schedules}
    if "year" in cycles:
        return ((YEAR_START, YEAR_END + timedelta(days=1)),)
    span = timedelta(days=14) if "week" in cycles else timedelta(days=2)
    periods = [(YEAR_START, YEAR_START + span)]
    for month in range(2, 14):  # the last day of each month and the first of the next
        first = datetime(2024 + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=timezone.utc)
        periods.append((first - timedelta(days=1), first + timedelta(days=1)))
    for name in sorted({s.timezone for s in schedules} - {"UTC"}):
        for day in _switches(name):
            middle = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            periods.append((middle - span, middle + span))
    periods.sort()
    merged: list[tuple[datetime, datetime]] = []
    for start, end in periods:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


@functools.lru_cache(maxsize=1024)
def _window_ticks_cached(own: Schedule, schedules: frozenset[Schedule]) -> tuple[datetime, ...]:
    ticks: list[datetime] = []
    for start, end in _periods(schedules | {own}):
        ticks.extend(ticks_between(own, start, end, limit=MAX_RUNS_CHECKED * 4))
        if len(ticks) >= MAX_RUNS_CHECKED:
            break
    return tuple(ticks)


def _window_ticks(own: Schedule, schedules: frozenset[Schedule]) -> list[datetime]:
    return list(_window_ticks_cached(own, schedules))


def _window_detail(runs: list[datetime], own: Schedule, schedules: frozenset[Schedule]) -> dict[str, Any]:
    periods = _periods(schedules | {own})
    return {"runs_checked": len(runs), "first": _iso(runs[0]) if runs else None,
            "last": _iso(runs[-1]) if runs else None,
            "periods": [[_iso(start), _iso(end)] for start, end in periods],
            "timezones": sorted({s.timezone for s in schedules | {own}})}
