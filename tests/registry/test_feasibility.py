"""SLA feasibility (HO305/HO308) over schedule pairs, and acknowledged warnings (HO306).

Each row of the table is a two-domain mesh: an upstream model (schedule, timezone, SLA) read
through a sensor by a downstream model (schedule, timezone, SLA). The expected verdict names the
earliest violated run, both deadlines and the suggested value; every suggestion is then put in the
downstream model's SLA and the check re-run: it must clear the error (no HO305 left). The pure
rules run on an in-memory Mesh (handoff.registry.mesh), as `handoff check` does.
"""

from __future__ import annotations

from typing import Any

import pytest
from handoff.registry.checks import check_mesh, failing
from handoff.registry.mesh import Domain, Mesh, Pipeline, Task
from handoff.sla import duration_seconds

Side = tuple[str, str, str | None]  # schedule, timezone, SLA ("HH:MM" = available_by, else available_within)


def sla_fields(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    return {"available_by": text} if ":" in text else {"available_within_s": duration_seconds(text)}


def model(domain: str, dag_id: str, name: str, sla: str | None, upstream: tuple[str, ...] = ()) -> Task:
    return Task(domain=domain, dag_id=dag_id, task_id=name, kind="dbt_model", model=name, access="public",
                owner=f"team-{domain}", slack=f"#{domain}", upstream=upstream, **sla_fields(sla))


def sensor(domain: str, dag_id: str, up_domain: str, up_model: str, accept: tuple[tuple[str, str], ...] = ()) -> Task:
    return Task(domain=domain, dag_id=dag_id, task_id=f"wait__{up_domain}__{up_model}", kind="sensor",
                upstream_domain=up_domain, upstream_model=up_model, accept=accept)


def domain(name: str, *pipelines: tuple[str, tuple[str, str], tuple[Task, ...]]) -> Domain:
    """A domain of pipelines given as (name, (schedule, timezone), tasks)."""
    return Domain(name, f"team-{name}", f"#{name}", pipelines=tuple(
        Pipeline(name, pipe, f"{name}__{pipe}", cadence[0], "2024-01-01", tasks=tasks, timezone=cadence[1])
        for pipe, cadence, tasks in pipelines))


def pair(up: Side, down: Side, accept: tuple[tuple[str, str], ...] = ()) -> Mesh:
    (up_schedule, up_zone, up_sla), (down_schedule, down_zone, down_sla) = up, down
    upstream = domain("up", ("p", (up_schedule, up_zone), (model("up", "up__p", "m", up_sla),)))
    downstream = domain("down", ("p", (down_schedule, down_zone), (
        sensor("down", "down__p", "up", "m", accept),
        model("down", "down__p", "r", down_sla, ("wait__up__m",)))))
    return Mesh({"up": upstream, "down": downstream})


# name: (upstream, downstream, None (feasible) or (earliest run, its deadline, upstream deadline, key, value))
TABLE: dict[str, tuple[Side, Side, tuple[str, str, str, str, str] | None]] = {
    # the mesh the old check rejected: an hourly model due 45 min after each run, two daily readers
    "hourly 45m -> daily 02:30 by 04:00": (("0 * * * *", "UTC", "45m"), ("30 2 * * *", "UTC", "04:00"), None),
    "hourly 45m -> daily 06:00 by 07:00": (("0 * * * *", "UTC", "45m"), ("0 6 * * *", "UTC", "07:00"), None),
    "hourly 45m -> daily 06:00 by 06:30": (
        ("0 * * * *", "UTC", "45m"), ("0 6 * * *", "UTC", "06:30"),
        ("2024-01-01T06:00Z", "2024-01-01T06:30Z", "2024-01-01T06:45Z", "available_by", "06:45")),
    "hourly 20m, different minutes -> hourly 10m": (
        ("45 * * * *", "UTC", "20m"), ("50 * * * *", "UTC", "10m"),
        ("2024-01-01T00:50Z", "2024-01-01T01:00Z", "2024-01-01T01:05Z", "available_within", "15m")),
    "every 30 min 40m -> hourly at :10 by 25m": (
        ("*/30 * * * *", "UTC", "40m"), ("10 * * * *", "UTC", "25m"),
        ("2024-01-01T00:10Z", "2024-01-01T00:35Z", "2024-01-01T00:40Z", "available_within", "30m")),
    "cron several ticks a day -> evening daily": (
        ("15 8-18/2 * * MON-FRI", "UTC", "1h"), ("0 20 * * MON-FRI", "UTC", "20:30"), None),
    "daily 03:00 by 05:30 -> daily 05:00 by 05:15": (
        ("0 3 * * *", "UTC", "05:30"), ("0 5 * * *", "UTC", "05:15"),
        ("2024-01-01T05:00Z", "2024-01-01T05:15Z", "2024-01-01T05:30Z", "available_by", "05:30")),
    "daily reads the previous day's run: feasible": (
        ("0 5 * * *", "UTC", "07:00"), ("0 1 * * *", "UTC", "08:00"), None),
    "weekly Monday by 09:00 -> daily 07:00 by 08:00 (Mondays late)": (
        ("0 6 * * MON", "UTC", "09:00"), ("0 7 * * *", "UTC", "08:00"),
        ("2024-01-01T07:00Z", "2024-01-01T08:00Z", "2024-01-01T09:00Z", "available_by", "09:00")),
    "monthly within 2d -> daily by 08:00 (month starts late; only a duration clears it)": (
        ("0 0 1 * *", "UTC", "2d"), ("0 6 * * *", "UTC", "08:00"),
        ("2024-01-01T06:00Z", "2024-01-01T08:00Z", "2024-01-03T00:00Z", "available_within", "42h")),
    "daily -> monthly on the 1st: feasible": (("0 2 * * *", "UTC", "03:00"), ("0 4 1 * *", "UTC", "05:00"), None),
    # a non-UTC deployment timezone: Berlin in summer (the spring-forward day is the first late run)
    "UTC 01:00 within 90m -> Berlin 03:00 within 30m (summer late)": (
        ("0 1 * * *", "UTC", "90m"), ("0 3 * * *", "Europe/Berlin", "30m"),
        ("2024-03-31T01:00Z", "2024-03-31T01:30Z", "2024-03-31T02:30Z", "available_within", "90m")),
    # ... Sydney in standard time (the fall-back day, 2024-04-07, is the first late run)
    "UTC 02:00 within 45m -> Sydney 12:00 within 30m (winter late)": (
        ("0 2 * * *", "UTC", "45m"), ("0 12 * * *", "Australia/Sydney", "30m"),
        ("2024-04-07T02:00Z", "2024-04-07T02:30Z", "2024-04-07T02:45Z", "available_within", "45m")),
    # ... an upstream in Berlin, due 06:30 local: 05:30 UTC in winter, too late for 04:45 UTC
    "Berlin 05:00 by 06:30 -> UTC 04:00 by 04:45 (winter late)": (
        ("0 5 * * *", "Europe/Berlin", "06:30"), ("0 4 * * *", "UTC", "04:45"),
        ("2024-01-01T04:00Z", "2024-01-01T04:45Z", "2024-01-01T05:30Z", "available_by", "05:30")),
    # New York springs forward on 2024-03-10: 06:50 EDT is 10:50 UTC, before the upstream's 11:00
    "UTC 10:00 within 1h -> New York 06:00 by 06:50 (summer late)": (
        ("0 10 * * *", "UTC", "1h"), ("0 6 * * *", "America/New_York", "06:50"),
        ("2024-03-10T10:00Z", "2024-03-10T10:50Z", "2024-03-10T11:00Z", "available_by", "07:00")),
    # Lord Howe's half-hour switch back (2024-04-07): 13:00 local moves from 02:00 to 02:30 UTC, so
    # the run waits on the same day's 02:30 upstream (due 02:50) instead of the day before's
    "UTC 02:30 within 20m -> Lord Howe 13:00 within 15m (winter late)": (
        ("30 2 * * *", "UTC", "20m"), ("0 13 * * *", "Australia/Lord_Howe", "15m"),
        ("2024-04-07T02:30Z", "2024-04-07T02:45Z", "2024-04-07T02:50Z", "available_within", "20m")),
    "Berlin by 06:30 -> New York by 02:00 local: feasible all year": (
        ("0 5 * * *", "Europe/Berlin", "06:30"), ("0 1 * * *", "America/New_York", "02:00"), None),
}


@pytest.mark.parametrize("case", sorted(TABLE))
def test_feasibility_over_schedule_pairs(case: str) -> None:
    up, down, expected = TABLE[case]
    findings = check_mesh(pair(up, down), focus={"down"})
    late = [f for f in findings if f.code == "HO305"]
    if expected is None:
        assert late == [], [f.line() for f in late]
        return
    [finding] = late
    run, due, upstream_due, key, value = expected
    assert finding.where == "down.down__p.r"
    detail = finding.detail
    assert detail is not None
    assert (detail["run"], detail["deadline"], detail["upstream"]["deadline"]) == (run, due, upstream_due)
    assert detail["suggested"] == {"key": key, "value": value}
    line = finding.line()
    assert "\n" not in line and len(line) < 400, line
    own_key = "available_by" if ":" in down[2] else "available_within"
    change = f"set {key}: " if key == own_key else f"replace {own_key} with {key}: "  # never both keys (HO208)
    assert f"run {run} is due {due}" in line and f"due {upstream_due}" in line and change in line, line
    # the suggested value clears the error: put it in the downstream SLA and check again
    fixed = check_mesh(pair(up, (down[0], down[1], value)), focus={"down"})
    assert [f.line() for f in fixed if f.code == "HO305"] == []


def test_the_window_covers_a_cycle_month_ends_and_both_switches() -> None:
    finding = next(f for f in check_mesh(pair(("0 * * * *", "UTC", "45m"), ("0 6 * * *", "Europe/Berlin", "06:30")),
                                         focus={"down"}) if f.code == "HO305")
    window = finding.detail["window"]
    periods = [start[:10] for start, _ in window["periods"]]
    assert periods[0] == "2024-01-01" and window["timezones"] == ["Europe/Berlin", "UTC"]
    for month_end in ("2024-01-31", "2024-02-29", "2024-11-30", "2024-12-31"):  # merged periods start earlier
        assert any(start[:10] <= month_end <= end[:10] for start, end in window["periods"]), month_end
    for switch in ("2024-03-31", "2024-10-27"):
        assert any(start[:10] <= switch <= end[:10] for start, end in window["periods"]), switch
    yearly = next(f for f in check_mesh(pair(("0 0 1 * *", "UTC", "2d"), ("0 6 * * *", "UTC", "08:00")),
                                        focus={"down"}) if f.code == "HO305")
    assert yearly.detail["window"]["runs_checked"] == 367  # a monthly schedule: the whole of 2024


def test_the_03_00_behind_04_00_case_is_not_accepted() -> None:
    """0 6 * * * promising 03:00 behind a 02:30 upstream promising 04:00: the convention rejects the
    SLA (HO208, tests/test_sla.py); a plan carrying it anyway gets HO308, which --strict fails."""
    findings = check_mesh(pair(("30 2 * * *", "UTC", "04:00"), ("0 6 * * *", "UTC", "03:00")), focus={"down"})
    assert [f.code for f in findings] == ["HO308"]
    assert "is due 2024-01-01T06:00Z, not after its own start" in findings[0].line()
    assert failing(findings, strict=True) == findings and failing(findings, strict=False) == []


def test_a_deadline_the_clock_skips_is_a_warning_on_that_day_only() -> None:
    findings = check_mesh(pair(("0 23 * * *", "UTC", "1h"), ("30 2 * * *", "Europe/Berlin", "02:45")),
                          focus={"down"})
    [early] = [f for f in findings if f.code == "HO308"]
    assert early.detail == {"run": "2024-03-31T01:30Z", "deadline": "2024-03-31T01:30Z", "local_start": "03:30",
                            "timezone": "Europe/Berlin"}


def test_deadlines_pass_through_models_without_sla_and_within_a_dag() -> None:
    """up.m (due 05:30) <- down: sensor <- staging (no SLA) <- mart (due 05:15) and, in the same run,
    mart <- early (due 05:45): the latest of the two is named."""
    upstream = domain("up", ("p", ("0 3 * * *", "UTC"), (model("up", "up__p", "m", "05:30"),)))
    downstream = domain("down", ("p", ("0 5 * * *", "UTC"), (
        sensor("down", "down__p", "up", "m"),
        model("down", "down__p", "staging", None, ("wait__up__m",)),
        model("down", "down__p", "early", "05:45", ("staging",)),
        model("down", "down__p", "mart", "05:15", ("early", "staging")))))
    [finding] = [f for f in check_mesh(Mesh({"up": upstream, "down": downstream}), focus={"down"})
                 if f.code == "HO305"]
    assert finding.where == "down.down__p.mart"
    assert finding.detail["upstream"]["model"] == "down.early" and finding.detail["suggested"]["value"] == "05:45"
    # early itself waits on up.m (05:30 <= 05:45): fine


def test_three_domains_two_hops_through_pipelines_of_different_timezones() -> None:
    shop = domain("shop", ("p", ("0 2 * * *", "Europe/Berlin"), (model("shop", "shop__p", "orders", "03:30"),)))
    billing = domain("billing", ("p", ("0 3 * * *", "Europe/Berlin"), (
        sensor("billing", "billing__p", "shop", "orders"),
        model("billing", "billing__p", "invoices", None, ("wait__shop__orders",)))))
    growth = domain("growth", ("p", ("15 2 * * *", "UTC"), (
        sensor("growth", "growth__p", "billing", "invoices"),
        model("growth", "growth__p", "roi", "02:20", ("wait__billing__invoices",)))))
    findings = check_mesh(Mesh({"shop": shop, "billing": billing, "growth": growth}), focus={"growth"})
    [late] = [f for f in findings if f.code == "HO305"]
    # growth's 02:15 UTC run waits on billing's 03:00 Berlin run of the same day in winter (02:00 UTC),
    # which waits on shop's 02:00 Berlin run (01:00 UTC), due 03:30 Berlin = 02:30 UTC > 02:20 UTC.
    # In summer both Berlin runs are an hour earlier in UTC: shop is due 01:30 UTC, in time.
    assert late.detail["run"] == "2024-01-01T02:15Z" and late.detail["upstream"]["deadline"] == "2024-01-01T02:30Z"
    assert late.detail["suggested"] == {"key": "available_by", "value": "02:30"}
    assert late.detail["through_sensors"] == ["growth.growth__p.wait__billing__invoices",
                                              "billing.billing__p.wait__shop__orders"]
    assert late.domains == {"shop", "billing", "growth"}


def test_an_acknowledged_warning_is_reported_but_does_not_fail_strict() -> None:
    up, down = ("0 * * * *", "UTC", "45m"), ("30 2 * * *", "UTC", "04:00")
    [plain] = check_mesh(pair(up, down), focus={"down"})
    assert plain.code == "HO306" and failing([plain], strict=True) == [plain]
    assert "'0 * * * *' -> '30 2 * * *'" in plain.line() and len(plain.line()) < 300
    assert plain.detail["unawaited_upstream_runs"] == 8395
    reason = "we read the 02:00 hourly run on purpose; later hours feed tomorrow"
    [accepted] = check_mesh(pair(up, down, accept=(("HO306", reason),)), focus={"down"})
    assert accepted.accepted == reason and failing([accepted], strict=True) == []
    assert accepted.line() == f"HO306 accepted: down.down__p.wait__up__m: {reason}"
    assert accepted.as_dict()["detail"] == plain.as_dict()["detail"]


def test_a_cycle_through_sensors_does_not_hang_the_sla_walk() -> None:
    a = domain("a", ("p", ("0 3 * * *", "UTC"), (sensor("a", "a__p", "b", "y"), model("a", "a__p", "x", "05:00",
                                                                                          ("wait__b__y",)))))
    b = domain("b", ("p", ("0 4 * * *", "UTC"), (sensor("b", "b__p", "a", "x"), model("b", "b__p", "y", "06:00",
                                                                                          ("wait__a__x",)))))
    codes = {f.code for f in check_mesh(Mesh({"a": a, "b": b}), focus={"a"})}
    assert "HO304" in codes and "HO305" not in codes


def test_feasibility_is_independent_of_the_order_domains_are_given() -> None:
    up, down = ("0 3 * * *", "UTC", "05:30"), ("0 5 * * *", "UTC", "05:15")
    mesh = pair(up, down)
    reordered = Mesh(dict(reversed(list(mesh.domains.items()))))
    assert [f.as_dict() for f in check_mesh(mesh)] == [f.as_dict() for f in check_mesh(reordered)]
