"""What a dbt task tells dbt about its run (handoff.run_interval, dbt_runner.build_args): pure parts.

The end-to-end proof (dag.test for past dates, an Airflow backfill) is in
tests/airflow/test_data_intervals.py and tests/airflow/test_backfill_stack.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from handoff.airflow.dbt_runner import DbtProject, build_args
from handoff.errors import HandoffError
from handoff.run_interval import conf_vars, dbt_vars_for, interval_of_run, run_interval


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_a_scheduled_run_and_a_run_without_logical_date() -> None:
    run = run_interval(logical_date=utc("2024-03-10T00:00"), run_after=utc("2024-03-10T00:00"),
                       run_id="scheduled__2024-03-10T00:00:00+00:00", schedule="@daily")
    assert run.dbt_vars() == {"handoff_logical_date": "2024-03-10T00:00:00+00:00",
                              "handoff_data_interval_start": "2024-03-09T00:00:00+00:00",
                              "handoff_data_interval_end": "2024-03-10T00:00:00+00:00",
                              "handoff_run_id": "scheduled__2024-03-10T00:00:00+00:00"}
    assert run.event_time_range() == ("2024-03-09T00:00:00", "2024-03-10T00:00:00")
    manual = interval_of_run(SimpleNamespace(logical_date=None, run_after=utc("2024-03-10T05:17"), run_id="m"),
                             "0 3 * * *", "Europe/Berlin")  # 03:00 Berlin = 02:00 UTC in March
    assert (manual.start, manual.end) == (utc("2024-03-10T02:00"), utc("2024-03-10T05:17"))
    with pytest.raises(HandoffError, match="neither a logical date nor a run_after"):
        interval_of_run(SimpleNamespace(logical_date=None, run_after=None, run_id="x"), "@daily")


@pytest.mark.parametrize(("conf", "message"), [
    ({"dbt_vars": ["a"]}, "must be an object"),
    ({"dbt_vars": {"handoff_run_id": "x"}}, "sets handoff_run_id, which handoff sets from the run"),
    ({"dbt_vars": {"big": "x" * 70_000}}, "bytes (at most 64000)"),
    ({"dbt_vars": {"when": datetime(2024, 1, 1)}}, "is not JSON"),
])
def test_bad_conf_vars_are_one_line_errors(conf: dict, message: str) -> None:
    with pytest.raises(HandoffError) as caught:
        conf_vars(conf)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_build_args_carry_the_interval_and_microbatch_flags_only_for_microbatch(tmp_path) -> None:
    run = run_interval(logical_date=utc("2024-03-10T00:00"), run_after=None, run_id="r", schedule="@daily")
    project = DbtProject(str(tmp_path), str(tmp_path))
    plain = build_args(project, ["m"], work_dir=tmp_path, dbt_vars=dbt_vars_for(run, {"dbt_vars": {"k": 1}}), run=run)
    variables = json.loads(plain[plain.index("--vars") + 1])
    assert variables == {"k": 1, **run.dbt_vars()} and "--event-time-start" not in plain
    batched = build_args(project, ["m"], work_dir=tmp_path, run=run, microbatch=True)
    assert batched[batched.index("--event-time-start") + 1] == "2024-03-09T00:00:00"
    assert batched[batched.index("--event-time-end") + 1] == "2024-03-10T00:00:00"
    assert conf_vars(None) == {} and conf_vars({"other": 1}) == {}
