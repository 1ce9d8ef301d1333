"""SLA feasibility as a property over many schedule pairs, against a brute force over a whole year.

For each generated pair (upstream schedule, timezone, SLA -> downstream schedule, timezone, SLA;
seeded, so every run checks the same pairs) the brute force walks **every** downstream run of
2024 (not the sparse window `check` uses), aligns it on the upstream run it waits on (latest
upstream tick at or before it: docs/alignment.md) and compares the two deadlines
(``handoff.sla.deadline``, the definition). Then:

* `check` reports HO305 exactly when the brute force finds a late run, and names the same earliest
  late run with the same two deadlines: the window is representative;
* the suggested value is a valid SLA for the downstream schedule (no HO208), clears every run of
  the year (brute force) and `check` with it reports no HO305;
* it is the tightest such value: one minute less leaves a run of the year late;
* the pair checks alike when both pipelines are in one domain (a cross-pipeline sensor) and
  when they are in two;
* over two hops (up -> mid -> down, three schedules and timezones, the middle model with or
  without an SLA of its own) the same holds: the mid run is aligned on the downstream run, the up
  run on the *mid* run's logical date.

Schedules cover hourly and sub-hourly crons at different minutes, several ticks a day, weekdays,
weekly, monthly and the 1st/15th; timezones cover both hemispheres' daylight saving (Europe/Berlin,
America/New_York, Australia/Sydney), a 30-minute switch (Australia/Lord_Howe) and none
(Asia/Kolkata, UTC).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

import pytest

from handoff.registry.checks import check_mesh
from handoff.registry.mesh import Domain, Mesh, Pipeline, Task
from handoff.sla import Sla, daily_time_of, deadline, duration_seconds, sla_form_problem
from handoff.ticks import Schedule, latest_tick_at_or_before, schedule_of, ticks_between

YEAR = (datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 1, tzinfo=timezone.utc))
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kolkata"]
FREQUENT = ["0 * * * *", "45 * * * *", "*/30 * * * *", "10 */2 * * *", "15 8-18/2 * * MON-FRI", "0 6,18 * * *"]
ONCE_A_DAY = ["0 3 * * *", "30 2 * * *", "0 5 * * *", "15 1 * * *", "0 23 * * *", "0 7 * * MON-FRI",
              "0 6 * * MON", "0 4 1 * *", "30 0 1,15 * *", "@daily", "@weekly"]
PAIRS = 120


@dataclass(frozen=True)
class Side:
    schedule: str
    zone: str
    sla: Sla

    @property
    def cadence(self) -> Schedule:
        return schedule_of(self.schedule, self.zone)

    def text(self) -> str:
        return f"{self.schedule} {self.zone} {self.sla.describe()}"


def random_sla(rng: random.Random, schedule: str) -> Sla:
    runs_at = daily_time_of(schedule)
    if runs_at is not None and runs_at < "23:59" and rng.random() < 0.5:
        start = int(runs_at[:2]) * 60 + int(runs_at[3:]) + 1
        minute = rng.randrange(start, 24 * 60)
        return Sla(available_by=f"{minute // 60:02d}:{minute % 60:02d}")
    return Sla(available_within_s=60 * rng.choice([5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1440, 2880]))


def random_side(rng: random.Random) -> Side:
    schedule = rng.choice(FREQUENT if rng.random() < 0.35 else ONCE_A_DAY)
    return Side(schedule, rng.choice(ZONES), random_sla(rng, schedule))


def generated_pairs() -> list[tuple[Side, Side]]:
    rng = random.Random(14)
    return [(random_side(rng), random_side(rng)) for _ in range(PAIRS)]


@lru_cache(maxsize=64)
def year_ticks(cadence: Schedule) -> tuple[datetime, ...]:
    return tuple(ticks_between(cadence, *YEAR, limit=40_000))


@lru_cache(maxsize=512)
def brute_force(up: Side, down: Side) -> list[tuple[datetime, datetime, datetime]]:
    """Every late downstream run of 2024: (run, its deadline, the upstream run's deadline)."""
    late = []
    for run in year_ticks(down.cadence):
        upstream_run = latest_tick_at_or_before(up.cadence, run)
        upstream_due = deadline(upstream_run, up.sla, up.cadence)
        due = deadline(run, down.sla, down.cadence)
        assert upstream_due is not None and due is not None
        if upstream_due > due:
            late.append((run, due, upstream_due))
    return late


def model(domain: str, dag_id: str, name: str, sla: Sla, upstream: tuple[str, ...] = ()) -> Task:
    return Task(domain=domain, dag_id=dag_id, task_id=name, kind="dbt_model", model=name, access="public",
                owner=f"team-{domain}", slack=f"#{domain}", upstream=upstream, available_by=sla.available_by,
                available_within_s=sla.available_within_s)


def mesh_of(up: Side, down: Side, *, one_domain: bool) -> Mesh:
    up_domain, down_domain = ("shop", "shop") if one_domain else ("up", "down")
    up_pipe = Pipeline(up_domain, "early", f"{up_domain}__early", up.schedule, "2024-01-01", timezone=up.zone,
                       tasks=(model(up_domain, f"{up_domain}__early", "m", up.sla),))
    sensor = Task(domain=down_domain, dag_id=f"{down_domain}__late", task_id=f"wait__{up_domain}__m", kind="sensor",
                  upstream_domain=up_domain, upstream_model="m")
    down_pipe = Pipeline(down_domain, "late", f"{down_domain}__late", down.schedule, "2024-01-01",
                         timezone=down.zone, tasks=(sensor, model(down_domain, f"{down_domain}__late", "r", down.sla,
                                                                  (sensor.task_id,))))
    if one_domain:
        return Mesh({"shop": Domain("shop", "team-shop", "#shop", pipelines=(up_pipe, down_pipe))})
    return Mesh({"up": Domain("up", "team-up", "#up", pipelines=(up_pipe,)),
                 "down": Domain("down", "team-down", "#down", pipelines=(down_pipe,))})


def late_findings(up: Side, down: Side, *, one_domain: bool = False) -> list:
    mesh = mesh_of(up, down, one_domain=one_domain)
    return [f for f in check_mesh(mesh, focus={"shop" if one_domain else "down"}) if f.code == "HO305"]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def sla_of(key: str, value: str) -> Sla:
    return Sla(available_by=value) if key == "available_by" else Sla(available_within_s=duration_seconds(value))


def one_minute_less(key: str, value: str) -> Sla | None:
    if key == "available_by":
        minutes = int(value[:2]) * 60 + int(value[3:]) - 1
        return Sla(available_by=f"{minutes // 60:02d}:{minutes % 60:02d}") if minutes >= 0 else None
    seconds = duration_seconds(value) - 60
    return Sla(available_within_s=seconds) if seconds > 0 else None


def test_the_generated_pairs_cover_every_kind() -> None:
    """The property below is only as good as its pairs: both verdicts, both SLA forms, every zone."""
    pairs = generated_pairs()
    sides = [side for pair in pairs for side in pair]
    assert {s.zone for s in sides} == set(ZONES)
    assert {s.schedule for s in sides} >= {*FREQUENT[:3], "0 6 * * MON", "0 4 1 * *", "30 0 1,15 * *"}
    assert any(s.sla.available_by for s in sides) and any(s.sla.available_within_s for s in sides)
    verdicts = [bool(brute_force(up, down)) for up, down in pairs]
    assert 0.2 < sum(verdicts) / len(verdicts) < 0.8, sum(verdicts)


@pytest.mark.parametrize("index", range(PAIRS))
def test_check_agrees_with_a_year_of_runs_and_its_suggestion_is_the_tightest_that_clears(index: int) -> None:
    up, down = generated_pairs()[index]
    case = f"{up.text()} -> {down.text()}"
    late = brute_force(up, down)
    found = late_findings(up, down)
    assert [f.code for f in late_findings(up, down, one_domain=True)] == [f.code for f in found], case
    if not late:
        assert found == [], (case, [f.line() for f in found])
        return
    assert len(found) == 1, (case, late[:3])
    detail = found[0].detail
    run, due, upstream_due = late[0]
    assert (detail["run"], detail["deadline"], detail["upstream"]["deadline"]) == (
        iso(run), iso(due), iso(upstream_due)), case
    key, value = detail["suggested"]["key"], detail["suggested"]["value"]
    fixed = Side(down.schedule, down.zone, sla_of(key, value))
    if key == "available_by":
        assert sla_form_problem(down.schedule, value, None) is None, (case, value)
    assert brute_force(up, fixed) == [], (case, value)
    assert late_findings(up, fixed) == [], (case, value)
    tighter = one_minute_less(key, value)
    if tighter is not None and (tighter.available_by is None
                                or sla_form_problem(down.schedule, tighter.available_by, None) is None):
        assert brute_force(up, Side(down.schedule, down.zone, tighter)) != [], (
            f"{case}: {key} {value} is not the tightest: {tighter.describe()} clears every run too")


# --------------------------------------------------------------------------------------
# Two hops: up -> mid -> down, each pipeline on its own schedule and timezone
# --------------------------------------------------------------------------------------

CHAINS = 60


def generated_chains() -> list[tuple[Side, Side, Side]]:
    """(up, mid, down); a third of the middle models have no SLA (they pass the upstream's on)."""
    rng = random.Random(1414)
    chains = []
    for _ in range(CHAINS):
        up, mid, down = random_side(rng), random_side(rng), random_side(rng)
        if rng.random() < 0.35:
            mid = Side(mid.schedule, mid.zone, Sla())
        chains.append((up, mid, down))
    return chains


@lru_cache(maxsize=256)
def chain_brute_force(up: Side, mid: Side, down: Side) -> list[tuple[datetime, datetime, datetime]]:
    """Every late downstream run of 2024: the mid run it waits on is the latest mid tick at or
    before it, and that run waits on the latest up tick at or before *its* logical date."""
    late = []
    for run in year_ticks(down.cadence):
        mid_run = latest_tick_at_or_before(mid.cadence, run)
        needs = [deadline(latest_tick_at_or_before(up.cadence, mid_run), up.sla, up.cadence)]
        if mid.sla:
            needs.append(deadline(mid_run, mid.sla, mid.cadence))
        need = max(n for n in needs if n is not None)
        due = deadline(run, down.sla, down.cadence)
        assert due is not None
        if need > due:
            late.append((run, due, need))
    return late


def chain_mesh(up: Side, mid: Side, down: Side) -> Mesh:
    def pipeline(name: str, side: Side, tasks: tuple[Task, ...]) -> Domain:
        return Domain(name, f"team-{name}", f"#{name}", pipelines=(
            Pipeline(name, "p", f"{name}__p", side.schedule, "2024-01-01", timezone=side.zone, tasks=tasks),))

    def waiting(name: str, on: str, sla: Sla) -> tuple[Task, ...]:
        sensor = Task(domain=name, dag_id=f"{name}__p", task_id=f"wait__{on}__m", kind="sensor",
                      upstream_domain=on, upstream_model="m")
        return sensor, model(name, f"{name}__p", "m", sla, (sensor.task_id,))

    return Mesh({"up": pipeline("up", up, (model("up", "up__p", "m", up.sla),)),
                 "mid": pipeline("mid", mid, waiting("mid", "up", mid.sla)),
                 "down": pipeline("down", down, waiting("down", "mid", down.sla))})


def test_the_generated_chains_have_both_verdicts() -> None:
    verdicts = [bool(chain_brute_force(*chain)) for chain in generated_chains()]
    assert 0.2 < sum(verdicts) / len(verdicts) < 0.8, sum(verdicts)


@pytest.mark.parametrize("index", range(CHAINS))
def test_two_hops_agree_with_a_year_of_runs_and_the_suggestion_clears_them(index: int) -> None:
    up, mid, down = generated_chains()[index]
    case = f"{up.text()} -> {mid.text()} -> {down.text()}"
    late = chain_brute_force(up, mid, down)
    found = [f for f in check_mesh(chain_mesh(up, mid, down), focus={"down"}) if f.code == "HO305"]
    if not late:
        assert found == [], (case, [f.line() for f in found])
        return
    assert len(found) == 1, (case, late[:3])
    detail = found[0].detail
    run, due, need = late[0]
    assert (detail["run"], detail["deadline"], detail["upstream"]["deadline"]) == (iso(run), iso(due), iso(need)), case
    fixed = Side(down.schedule, down.zone, sla_of(detail["suggested"]["key"], detail["suggested"]["value"]))
    assert chain_brute_force(up, mid, fixed) == [], (case, detail["suggested"])
    assert [f for f in check_mesh(chain_mesh(up, mid, fixed), focus={"down"}) if f.code == "HO305"] == [], case
