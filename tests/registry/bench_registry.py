"""Benchmark of the registry at scale (not a test; run by hand, numbers go to docs/registry.md).

    .venv/bin/python tests/registry/bench_registry.py [--domains 400] [--tasks 250] [--backend sqlite|postgresql|both]

Builds a mesh of DOMAINS x TASKS tasks (default 100,000) from synthetic plans shaped like dbt
projects (registry_helpers.synthetic_plan, template compiled by dbt from tests/registry/projects/
billing). Each domain after the first reads 2-6 public models of earlier domains, half of them
from ten "core" domains, so core models have many transitive consumers. Then measures:
publishing, `who-depends-on` (Registry.consumers, transitive and direct) on sampled public
models with a warm connection, the same through the CLI, loading the mesh, `check`, `snapshot`.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from registry_helpers import public_marts, synthetic_plan


def template_plan(workdir: Path) -> dict:
    from dbt.cli.main import dbtRunner
    from handoff.manifest import load_manifest
    from handoff.plan import compile_manifest

    project = workdir / "billing"
    shutil.copytree(HERE / "projects" / "billing", project)
    shutil.copy(HERE / "projects" / "profiles.yml", workdir / "profiles.yml")
    result = dbtRunner().invoke(["--quiet", "parse", "--project-dir", str(project), "--profiles-dir", str(workdir)])
    assert result.success, result.exception
    return compile_manifest(load_manifest(project / "target" / "manifest.json"))


def build_plans(domains: int, tasks: int, template: dict) -> list[dict]:
    rng = random.Random(7)
    plans: list[dict] = []
    publics: list[list[str]] = []
    for i in range(domains):
        ups: list[tuple[str, str]] = []
        for _ in range(rng.randint(2, 6) if i else 0):
            j = rng.randrange(min(i, 10)) if rng.random() < 0.5 else rng.randrange(i)
            ups.append((plans[j].domain.name, rng.choice(publics[j])))
        plan = synthetic_plan(f"d{i:03d}", tasks, template=template, upstreams=ups, validate=(i < 3))
        plans.append(plan)
        publics.append(public_marts(plan))
    return plans


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(url: str, plans: list[dict], label: str) -> None:
    from handoff.plan_model import Plan
    from handoff.registry.checks import check_mesh
    from handoff.registry.mesh import domain_from_plan
    from handoff.registry.store import Registry

    print(f"\n== {label}: {len(plans)} domains, {sum(len(p['tasks']) for pl in plans for p in pl['pipelines'])} tasks")
    with Registry(url) as registry:
        started = time.perf_counter()
        for i in range(0, len(plans), 20):
            registry.publish(plans[i:i + 20], validate=False)
        print(f"publish (20 plans per transaction): {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        registry.publish(plans[:20], validate=False, force=True)
        print(f"publish 20 x {len(plans[0]['pipelines'][0]['tasks'])} tasks again (replace): "
              f"{time.perf_counter() - started:.2f}s")

        rng = random.Random(11)
        samples = [(p.domain.name, m) for p in plans[:10] for m in rng.sample(public_marts(p), 5)]
        samples += [(p.domain.name, rng.choice(public_marts(p))) for p in rng.sample(plans[10:], 150)]
        for name, transitive in (("who-depends-on", True), ("who-depends-on --direct", False)):
            for domain, model in samples[:5]:  # warm up
                registry.consumers(domain, model, transitive=transitive)
            times, sizes = [], []
            for domain, model in samples:
                started = time.perf_counter()
                found = registry.consumers(domain, model, transitive=transitive)
                times.append((time.perf_counter() - started) * 1000)
                sizes.append(len(found))
            core = times[:50]
            print(f"{name}: {len(samples)} models, median {statistics.median(times):.2f} ms, "
                  f"p90 {percentile(times, 0.9):.2f} ms, p99 {percentile(times, 0.99):.2f} ms, max {max(times):.1f} ms; "
                  f"consumers median {statistics.median(sizes):.0f}, max {max(sizes)}; "
                  f"core-domain models median {statistics.median(core):.2f} ms "
                  f"(consumers median {statistics.median(sizes[:50]):.0f})")
            for label, chosen in (("with 1-100 consumers", [t for n, t in zip(sizes, times) if 0 < n <= 100]),
                                  ("with > 100 consumers", [t for n, t in zip(sizes, times) if n > 100])):
                if chosen:
                    print(f"   models {label}: {len(chosen)}, median {statistics.median(chosen):.2f} ms, "
                          f"max {max(chosen):.2f} ms")
        started = time.perf_counter()
        mesh = registry.mesh()
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        findings = check_mesh(mesh.with_domains([domain_from_plan(plans[-1])]), focus={plans[-1].domain.name})
        print(f"load mesh: {loaded:.2f}s; check one domain against it: {time.perf_counter() - started:.2f}s "
              f"({len(findings)} findings)")
        started = time.perf_counter()
        snapshot = registry.snapshot()
        print(f"snapshot: {time.perf_counter() - started:.2f}s ({len(snapshot.models)} models)")
    domain, model = samples[0]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "handoff.cli", "who-depends-on", f"{domain}.{model}",
                           "--registry", url, "--format", "json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    print(f"CLI `handoff who-depends-on {domain}.{model}` end to end (process start included): "
          f"{time.perf_counter() - started:.2f}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domains", type=int, default=400)
    parser.add_argument("--tasks", type=int, default=250)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="handoff-bench-"))
    try:
        started = time.perf_counter()
        plans = build_plans(args.domains, args.tasks, template_plan(work))
        print(f"generated {len(plans)} plans in {time.perf_counter() - started:.1f}s")
        if args.backend in ("sqlite", "both"):
            run(f"sqlite:///{work}/registry.db", plans, "SQLite")
        if args.backend in ("postgresql", "both"):
            from support.postgres import start_postgres

            server = start_postgres()
            try:
                server.admin("CREATE DATABASE bench")
                run(server.url("bench"), plans, "PostgreSQL")
            finally:
                server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
