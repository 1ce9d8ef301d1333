"""Concurrent publishers, readers during publishes, and a publisher killed inside its transaction,
on SQLite and on a real PostgreSQL.

Concurrency: 20 processes publish 20 different domains, 10 rounds each (each round a new plan and
a new Registry, as separate CI jobs would), all starting at one signal on a registry nobody has
created yet (so they also race to create the tables). A reader in this process checks, over and
over, that every domain it sees is complete. Afterwards every domain holds its last round, whole.

Crash: a publisher process stops right after inserting the new tasks (the old rows deleted, the
transaction open) and is SIGKILLed there; the previous version must be intact, and a new publish
must go through.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from handoff.plan_model import Plan
from handoff.registry import schema as s
from handoff.registry.mesh import domain_from_plan
from handoff.registry.publishing import domain_rows
from handoff.registry.store import Registry
from registry_helpers import public_marts, synthetic_plan, write_plans
from sqlalchemy import func, select

WORKERS = Path(__file__).resolve().parent / "registry_workers.py"
PUBLISHERS = 20
ROUNDS = 10
HANG_GUARD_S = 900  # only against a hang: a loaded machine is slow, not wrong (times are printed, not asserted)


def _tasks_per_domain(registry: Registry) -> tuple[dict[str, tuple[int, str]], Counter[str]]:
    """One consistent read: each domain's declared task count and label, and its task rows."""
    def read(conn):  # type: ignore[no-untyped-def]
        declared = {r.name: (r.task_count, r.label) for r in conn.execute(
            select(s.domains.c.name, s.domains.c.task_count, s.domains.c.label).where(s.domains.c.plan_sha256 != ""))}
        rows = Counter(dict(conn.execute(select(s.tasks.c.domain, func.count()).group_by(s.tasks.c.domain)).all()))
        return declared, rows

    return registry._read(read, "checking consistency")  # type: ignore[no-any-return]


def test_concurrent_publishers_never_lose_a_domain_and_readers_never_see_half_of_one(
        registry_url, plans, tmp_path, record_property):
    template = plans("billing")
    domains = [f"c{i:02d}" for i in range(PUBLISHERS)]
    versions: dict[str, list[dict]] = {}
    for i, domain in enumerate(domains):
        upstream = versions[domains[i - 1]][0] if i else None
        ups = [(domains[i - 1], public_marts(upstream)[0])] if upstream else []
        versions[domain] = [synthetic_plan(domain, 40 + 3 * r, template=template, upstreams=ups, version=r,
                                           validate=False) for r in range(ROUNDS)]
    files = {d: [write_plans(tmp_path / f"r{r}", plan)[0] for r, plan in enumerate(versions[d])] for d in domains}
    task_counts = {d: {sum(len(p.tasks) for p in plan.pipelines): r for r, plan in enumerate(versions[d])}
                   for d in domains}

    procs = [subprocess.Popen([sys.executable, str(WORKERS), "publisher", registry_url, d, *map(str, files[d])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for d in domains]
    spawned = time.perf_counter()
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
        ready = time.perf_counter() - spawned
        started = time.perf_counter()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()

        problems: list[str] = []
        reads = 0
        seen_partial_rounds = 0

        def reader() -> None:
            nonlocal reads, seen_partial_rounds
            registry = None
            while any(p.poll() is None for p in procs):
                try:
                    registry = registry or Registry(registry_url, must_exist=True)
                    declared, rows = _tasks_per_domain(registry)
                except Exception as exc:  # noqa: BLE001 - the registry does not exist in the first instants
                    if registry is None and ("not a handoff registry" in str(exc) or "no registry at" in str(exc)):
                        time.sleep(0.02)
                        continue
                    problems.append(repr(exc))
                    return
                reads += 1
                for domain, (count, label) in declared.items():
                    if rows[domain] != count:
                        problems.append(f"{domain}: declares {count} tasks, {rows[domain]} rows visible")
                    elif task_counts[domain].get(count) != int(label.removeprefix("round-")):
                        problems.append(f"{domain}: {count} tasks do not belong to {label}")
                    elif label != f"round-{ROUNDS - 1}":
                        seen_partial_rounds += 1
                time.sleep(0.005)
            if registry is not None:
                registry.close()

        watcher = threading.Thread(target=reader)
        watcher.start()
        outputs = [proc.communicate(timeout=HANG_GUARD_S) for proc in procs]
        elapsed = time.perf_counter() - started
        watcher.join(timeout=HANG_GUARD_S)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    summaries = []
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    errors = [e for summary in summaries for e in summary["errors"]]
    assert errors == []
    assert [summary["published"] for summary in summaries] == [ROUNDS] * PUBLISHERS
    assert problems == [] and reads > 0

    with Registry(registry_url, must_exist=True) as registry:
        mesh = registry.mesh()
        assert sorted(mesh.domains) == domains
        for domain in domains:
            last = domain_from_plan(versions[domain][-1])
            assert mesh.domains[domain].pipelines == last.pipelines
            assert mesh.domains[domain].label == f"round-{ROUNDS - 1}"
            assert len(registry.history(domain, limit=100)) == ROUNDS
        declared, rows = _tasks_per_domain(registry)
        assert all(rows[d] == declared[d][0] for d in domains)

    retries = sum(summary["retries"] for summary in summaries)
    reasons = Counter(r.split(":")[0] for summary in summaries for r in summary["reasons"])
    slowest = max(t for summary in summaries for t in summary["seconds"])
    line = (f"{PUBLISHERS} publishers x {ROUNDS} rounds on {registry_url.split(':')[0]}: {elapsed:.1f}s "
            f"(processes ready in {ready:.1f}s), "
            f"{retries} retried transaction(s) {dict(reasons)}, slowest publish {slowest:.2f}s, "
            f"{reads} consistent reads ({seen_partial_rounds} domain views mid-storm)")
    record_property("concurrency", line)
    print(line)


def test_a_publisher_killed_inside_its_transaction_leaves_the_previous_version(registry_url, plans, tmp_path):
    old, new = plans("billing"), plans("billing", {"models/extra.sql": "select * from {{ ref('invoices') }}"})
    with Registry(registry_url) as registry:
        registry.publish([plans("shop"), old], label="old")
        before = {t.name: _count(registry, t, "billing") for t in s.DOMAIN_TABLES}
    [path] = write_plans(tmp_path / "new", new)

    crasher = subprocess.Popen([sys.executable, str(WORKERS), "crasher", registry_url, str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = crasher.stdout.readline().strip()
        assert line == "INSIDE", crasher.stderr.read()
        # the publisher has deleted the old rows and inserted new tasks, uncommitted: readers see the old version
        with Registry(registry_url, must_exist=True) as registry:
            assert registry.mesh().domains["billing"].pipelines == domain_from_plan(old).pipelines
        os.kill(crasher.pid, signal.SIGKILL)
        crasher.wait(timeout=30)
    finally:
        if crasher.poll() is None:
            crasher.kill()
            crasher.wait()
    assert crasher.returncode == -signal.SIGKILL

    with Registry(registry_url, must_exist=True) as registry:
        mesh = registry.mesh()
        assert mesh.domains["billing"].pipelines == domain_from_plan(old).pipelines
        assert mesh.domains["billing"].label == "old"
        assert {t.name: _count(registry, t, "billing") for t in s.DOMAIN_TABLES} == before
        assert [h["label"] for h in registry.history("billing")] == ["old"]
        [result] = registry.publish([new], label="new")  # the dead publisher's locks are gone
        assert result.changed
        assert registry.mesh().domains["billing"].pipelines == domain_from_plan(new).pipelines
        assert {t.name: _count(registry, t, "billing") for t in s.DOMAIN_TABLES} == {
            name: len(rows) for name, rows in domain_rows(domain_from_plan(new)).items()}


def _count(registry: Registry, table, domain: str) -> int:  # type: ignore[no-untyped-def]
    with registry.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(table.c.domain == domain)).scalar())


def test_publishers_of_the_same_domain_take_turns_and_one_whole_version_wins(registry_url, plans, tmp_path):
    template = plans("billing")
    versions = [synthetic_plan("same", 30 + 5 * v, template=template, version=v) for v in range(8)]
    Registry(registry_url).close()
    procs = []
    for worker in range(4):  # 4 processes x 5 publishes of one domain, each a different version
        mine = [versions[(worker + k) % len(versions)] for k in range(5)]
        files = [write_plans(tmp_path / f"w{worker}-{k}", plan)[0] for k, plan in enumerate(mine)]
        procs.append(subprocess.Popen([sys.executable, str(WORKERS), "publisher", registry_url, "same",
                                       *map(str, files)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=HANG_GUARD_S) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert [e for summary in summaries for e in summary["errors"]] == []
    with Registry(registry_url, must_exist=True) as registry:
        stored = registry.mesh().domains["same"]
        assert any(stored.pipelines == domain_from_plan(v).pipelines and stored.plan_sha256 ==
                   domain_from_plan(v).plan_sha256 for v in versions)
        assert _count(registry, s.tasks, "same") == stored.task_count
        assert len(registry.history("same", limit=100)) == 20
