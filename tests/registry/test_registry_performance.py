"""The registry at a size CI can afford, on SQLite and PostgreSQL: 20 domains x 250 tasks published
(into an empty registry, then replaced from plan files) and `who-depends-on` over 15,000 tasks.

These tests assert what the answers are, never how fast they come: a loaded machine is slow, not
wrong. The times are printed and recorded as test properties; the budgets (publish <= 5 s,
who-depends-on <= 10 ms) are rows of `make bench` (bench/registry.py, docs/benchmarks.md).
"""

from __future__ import annotations

import random
import statistics
import time

import pytest
from bench_registry import build_plans
from handoff.registry.store import Registry
from registry_helpers import public_marts, synthetic_plan, write_plans


@pytest.fixture(scope="module")
def twenty_domains(plans) -> list[dict]:
    template = plans("billing")
    made: list[dict] = []
    for i in range(20):
        ups = [(made[j].domain.name, public_marts(made[j])[0]) for j in range(max(0, i - 3), i)]
        made.append(synthetic_plan(f"p{i:02d}", 250, template=template, upstreams=ups))  # validated
    return made


def test_publishing_20_domains_of_250_tasks_and_replacing_them_from_files(registry_url, twenty_domains, tmp_path,
                                                                           record_property):
    files = write_plans(tmp_path / "plans", *twenty_domains)
    assert sum(len(p.tasks) for plan in twenty_domains for p in plan.pipelines) == 20 * 250
    with Registry(registry_url) as registry:
        started = time.perf_counter()
        registry.publish(twenty_domains, validate=False)
        first = time.perf_counter() - started
        started = time.perf_counter()
        results = registry.publish_files([tmp_path / "plans"], force=True)  # read + validate + replace
        from_files = time.perf_counter() - started
        assert [r.changed for r in results] == [True] * 20 and len(files) == 20
        assert len(registry.mesh().domains) == 20
    line = (f"publish 20 x 250 tasks on {registry_url.split(':')[0]}: {first:.2f}s into an empty registry, "
            f"{from_files:.2f}s replacing them from plan files (reading and validating included)")
    record_property("publish", line)
    print(line)


def test_who_depends_on_answers_over_15000_tasks(registry_url, plans, record_property):
    mesh = build_plans(60, 250, plans("billing"))  # 15,000 tasks
    readers: dict[tuple[str, str], set[str]] = {}
    for plan in mesh:
        for task in (t for p in plan.pipelines for t in p.sensors()):
            readers.setdefault((task.upstream_domain, task.upstream_model), set()).add(plan.domain.name)
    with Registry(registry_url) as registry:
        for i in range(0, len(mesh), 20):
            registry.publish(mesh[i:i + 20], validate=False)
        rng = random.Random(3)
        samples = [(p.domain.name, rng.choice(public_marts(p))) for p in rng.sample(mesh, 40)]
        for domain, model in samples[:5]:
            registry.consumers(domain, model)
        times, sizes = [], []
        for domain, model in samples:
            started = time.perf_counter()
            sizes.append(len(registry.consumers(domain, model)))
            times.append((time.perf_counter() - started) * 1000)
        for domain, model in samples:  # the direct answer is the plans' sensors on that model
            direct = {c.domain for c in registry.consumers(domain, model, transitive=False)}
            assert direct == readers.get((domain, model), set()), (domain, model)
    median = statistics.median(times)
    line = (f"who-depends-on on {registry_url.split(':')[0]}, 15,000 tasks: median {median:.2f} ms, "
            f"max {max(times):.1f} ms over {len(times)} models (consumers: median {statistics.median(sizes):.0f}, "
            f"max {max(sizes)})")
    record_property("who_depends_on", line)
    print(line)
    assert max(sizes) > 0 and any(readers.get(sample) for sample in samples)
