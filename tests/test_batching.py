"""The batched mode's pure decisions (handoff.batching): waves, waiting, per-model outcomes, notes."""

from __future__ import annotations

from handoff.batching import (
    BATCH_TASK_ID,
    NOTE_LIMIT,
    BatchModel,
    Outcome,
    WaveTracker,
    batched_models,
    left_to_airflow,
    note,
    printable,
    ready,
    waiting,
)
from handoff.plan_model import DbtTask, PlanPipeline, SensorTask


def _m(task_id: str, *upstream: str, tests: tuple[str, ...] = (), retries: int = 0) -> BatchModel:
    uid = f"model.p.{task_id}"
    return BatchModel(task_id, uid, (uid, *tests), tests, upstream, retries, 10.0)


# a -> b -> c ; sensor s -> d -> e ; f alone ; g reads b and d
MODELS = {m.task_id: m for m in [
    _m("a"), _m("b", "a"), _m("c", "b"), _m("d", "s"), _m("e", "d"), _m("f"), _m("g", "b", "d")]}


def test_first_wave_is_everything_not_behind_an_unfinished_sensor():
    assert ready(MODELS, {"s": "deferred"}) == ["a", "b", "c", "f"]


def test_a_satisfied_sensor_releases_only_its_readers():
    states = {"s": "success", "a": "success", "b": "success", "c": "success", "f": "success"}
    assert ready(MODELS, states) == ["d", "e", "g"]


def test_settled_tasks_and_their_dependants_are_not_ready():
    states = {"s": "deferred", "a": "failed", "b": "upstream_failed"}
    assert ready(MODELS, states) == ["f"]  # c waits on b, which Airflow settled


def test_a_retry_waits_for_its_delay_and_holds_its_dependants():
    states = {"s": "success"}
    assert ready(MODELS, states, not_before={"b": 100.0}, now=50.0) == ["a", "d", "e", "f"]
    assert ready(MODELS, states, not_before={"b": 100.0}, now=150.0) == ["a", "b", "c", "d", "e", "f", "g"]


def test_waiting_names_the_unfinished_sensor_and_the_next_retry():
    states = {"s": "deferred", "a": "success", "b": None, "f": "success"}
    wait = waiting(MODELS, states, not_before={"b": 123.0})
    assert wait.tasks == ("s",) and wait.retry_at == 123.0 and not wait.done


def test_nothing_to_wait_for_when_the_sensor_failed():
    states = {"s": "failed", "a": "success", "b": "success", "c": "success", "f": "success"}
    assert waiting(MODELS, states).done  # d, e, g: Airflow makes them upstream_failed


def test_batched_models_take_the_most_common_pool_and_leave_the_others_alone():
    def task(task_id: str, pool: str | None) -> DbtTask:
        return DbtTask(task_id=task_id, kind="dbt_model", unique_id=f"model.p.{task_id}", name=task_id, tests=(),
                       relation=None, access="protected", owner="o", slack="", available_by=None,
                       available_within_s=None, microbatch=False, retries=1, retry_delay_s=60, timeout_s=None,
                       pool=pool, upstream=())

    sensor = SensorTask(task_id="wait__x__y", kind="sensor", upstream_domain="x", upstream_model="y", sources=(),
                        timeout_s=60, poke_interval_s=60, mode="poke", accept=(), upstream=())
    pipeline = PlanPipeline(name="daily", dag_id="p__daily", schedule="@daily", start_date="2024-01-01",
                            description="", timezone="UTC", execution="batched",
                            tasks=(task("a", None), task("b", None), task("heavy", "big"), sensor))
    pool, models = batched_models(pipeline)
    assert pool == "default_pool" and [m.task_id for m in models] == ["a", "b"]
    assert models[0].retries == 1 and models[0].retry_delay_s == 60.0 and BATCH_TASK_ID not in {"a", "b"}


def test_tests_are_matched_by_unique_id_not_by_name():
    """Two models' tests may share one custom name (docs/plan.md): each finishes its own model."""
    tracker = WaveTracker([_m("a", tests=("test.p.pk.1",)), _m("b", tests=("test.p.pk.2",))])
    tracker.finished("model.p.a", "a", "success", "OK", 0.1)
    tracker.finished("model.p.b", "b", "success", "OK", 0.1)
    b = tracker.finished("test.p.pk.2", "pk", "fail", "Got 1 result")
    assert b is not None and (b.task_id, b.status) == ("b", "failed")
    a = tracker.finished("test.p.pk.1", "pk", "pass")
    assert a is not None and (a.task_id, a.status) == ("a", "success")


def test_a_model_is_reported_once_it_and_all_its_tests_finished():
    tracker = WaveTracker([_m("a", tests=("test.p.not_null_a_id.1", "test.p.unique_a_id.2")), _m("b")])
    assert tracker.finished("model.p.a", "a", "success", "OK", 0.5) is None
    assert tracker.finished("test.p.not_null_a_id.1", "not_null_a_id", "pass") is None
    b = tracker.finished("model.p.b", "b", "success", "OK", 0.1)
    assert b is not None and b.status == "success" and b.task_id == "b"
    a = tracker.finished("test.p.unique_a_id.2", "unique_a_id", "pass")
    assert a is not None and a.status == "success"
    assert a.tests == [("test.p.not_null_a_id.1", "pass"), ("test.p.unique_a_id.2", "pass")]
    assert tracker.finish() == []


def test_a_failing_test_fails_its_model_and_a_skipped_model_is_skipped():
    tracker = WaveTracker([_m("a", tests=("test.p.unique_a_id.2",)), _m("b", "a"), _m("c")])
    tracker.finished("model.p.a", "a", "success", "OK", 0.2)
    a = tracker.finished("test.p.unique_a_id.2", "unique_a_id", "fail", "Got 2 results")
    assert a is not None and a.status == "failed" and "unique_a_id" in a.message
    b = tracker.finished("model.p.b", "b", "skipped")
    assert b is not None and b.status == "skipped"
    rest = tracker.finish()  # c never reported by dbt: the plan and the deployed project differ
    assert [(o.task_id, o.status) for o in rest] == [("c", "failed")] and "redeploy" in rest[0].message


def test_an_erroring_model_is_failed_at_once():
    tracker = WaveTracker([_m("a", tests=("test.p.unique_a_id.2",))])
    a = tracker.finished("model.p.a", "a", "error", "Catalog Error: no table")
    assert a is not None and a.status == "failed" and a.message == "Catalog Error: no table"


def test_notes_fit_airflow_and_say_what_happened():
    text = note(Outcome("a", "failed", "x" * 5000, 1.5, [("t", "fail")]), wave=2, attempt=2, attempts=2)
    assert len(text) <= NOTE_LIMIT and text.startswith("handoff batch, wave 2, attempt 2/2: dbt failed in 1.50 s, done 1970-01-01T00:00:00.000+00:00")
    assert "tests: t fail" in note(Outcome("a", "success", "", 0.1, [("t", "fail")]), wave=1, attempt=1, attempts=1)


def test_a_model_whose_state_was_not_written_leaves_everything_below_it_to_airflow():
    left = left_to_airflow(MODELS, {"b"})
    assert left == {"b", "c", "g"}  # b's dependants, and theirs; a, d, e, f stay with the batch
    active = {t: m for t, m in MODELS.items() if t not in left}
    # b has no state in Airflow yet: its dependants must not be ready, and nothing waits for b
    states = {"s": "success", "a": "success", "d": "success", "e": "success", "f": "success"}
    assert ready(active, states) == []
    assert waiting(active, states).done
    assert left_to_airflow(MODELS, {"s", "unknown"}) == set()  # only batched models count
    assert left_to_airflow(MODELS, set()) == set()


def test_a_note_holds_printable_text_only():
    text = note(Outcome("a", "failed", "Could not convert string 'a\rb\x1b[0m\x00\x85\ud800' to INT32", 0.1, []),
                wave=1, attempt=1, attempts=1)
    assert "\r" not in text and "\x1b" not in text and "\x00" not in text and "\x85" not in text
    assert "'a\\x0db\\x1b[0m\\x00\\x85\\ud800'" in text, text
    assert printable("line 1\n\tline 2 é") == "line 1\n\tline 2 é"
