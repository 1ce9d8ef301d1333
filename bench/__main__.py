"""python -m bench [--only build,parse,compile,registry,exec,ui,batch,task,scheduler] [--repeats N] [--quick]

Runs the suite and prints one table; also writes bench/results/latest.md and latest.json.
"""

from __future__ import annotations

import argparse
import json
import time

from . import suite
from .mesh import MeshSpec

SECTIONS = ("build", "parse", "compile", "registry", "exec", "ui", "batch", "task", "scheduler", "impact", "imports")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each measurement (median)")
    parser.add_argument("--quick", action="store_true", help="small scenarios only, for trying the suite out")
    parser.add_argument("--scenarios", help="DAG-build/compile scenarios, e.g. 1x250,20x250 (default: all five)")
    parser.add_argument("--batch-sizes", default="200,1000",
                        help="models of the one-domain meshes the batch section runs (default 200,1000)")
    parser.add_argument("--batch-db", default="postgres", choices=("postgres", "sqlite"),
                        help="Airflow's metadata database in the batch section (default: a PostgreSQL server "
                             "the bench starts)")
    parser.add_argument("--batch-variants", default="batched,per_task,cosmos_local,cosmos_watcher",
                        help="what the batch section runs beside one `dbt build` (batched always runs)")
    parser.add_argument("--batch-timeout", type=float, default=7200,
                        help="seconds after which a DAG run of the batch section is stopped and reported as far as "
                             "it got (default 7200)")
    parser.add_argument("--batch-slow-timeout", type=float, default=600,
                        help="the same limit for the variants with a worker process per model (per_task, Cosmos "
                             "LOCAL) above 200 models, reported with the rate they reached (default 600)")
    parser.add_argument("--task-sizes", default="1000,5000,20000",
                        help="models of the 1xN domains of the per-task section (default 1000,5000,20000)")
    opts = parser.parse_args()
    only = [s for s in opts.only.split(",") if s]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    load_before = suite.machine()["loadavg"]
    report = suite.Report()
    scenarios = [MeshSpec(1, 250), MeshSpec(3, 50)] if opts.quick else suite.BUILD_SCENARIOS
    if opts.scenarios:
        scenarios = [MeshSpec(*map(int, label.split("x"))) for label in opts.scenarios.split(",")]
    parse_spec = MeshSpec(3, 50) if opts.quick else suite.PARSE_SPEC
    print("preparing meshes (generated and parsed by dbt on first use, then cached)", flush=True)
    needs_meshes = bool({"build", "parse", "compile", "registry", "ui"} & set(only))
    prepared = ({spec: suite.prepare(spec) for spec in dict.fromkeys([*scenarios, parse_spec])}
                if needs_meshes else {})

    if "build" in only:
        for spec in scenarios:
            suite.bench_build(report, prepared[spec], opts.repeats)
    if "parse" in only:
        suite.bench_parse(report, prepared[parse_spec], opts.repeats)
    if "compile" in only:
        suite.bench_compile(report, [prepared[s] for s in scenarios], opts.repeats)
    if "registry" in only:
        from . import registry

        registry.bench_registry(report, prepared[parse_spec], opts.repeats)
    if "exec" in only:
        from . import execution

        execution.bench_execution(report, quick=opts.quick, repeats=opts.repeats)
    if "ui" in only:
        from . import ui

        ui.bench_ui(report, prepared[parse_spec], opts.repeats)
    if "batch" in only:
        from . import batched

        sizes = [30] if opts.quick else [int(n) for n in opts.batch_sizes.split(",") if n]
        batched.bench_batched(report, sizes, db=opts.batch_db, timeout_s=opts.batch_timeout,
                              slow_timeout_s=opts.batch_slow_timeout,
                              variants=tuple(v for v in opts.batch_variants.split(",") if v))

    if "imports" in only:
        from . import imports

        imports.bench_imports(report, opts.repeats)
    if "impact" in only:
        from . import impact

        impact.bench_impact(report, opts.repeats, MeshSpec(3, 50) if opts.quick else impact.SPEC)

    if "task" in only or "scheduler" in only:
        from . import tasks

        sizes = [200] if opts.quick else [int(n) for n in opts.task_sizes.split(",") if n]
        tasks.bench_tasks(report, sizes if "task" in only else [], opts.repeats,
                          cosmos_sizes=(200,) if opts.quick else (1000, 5000),
                          scheduler_size=(50 if opts.quick else 200) if "scheduler" in only else None)

    elapsed = time.perf_counter() - started
    info = suite.machine()
    header = (f"handoff benchmarks — {info['cpu']}, {info['nproc']} CPUs, {info['memory']}, Python {info['python']}\n"
              f"{info['versions']}\nsuite wall time {elapsed / 60:.1f} min; 1-min load average {load_before} at the start, "
              f"{info['loadavg']} at the end (the machine is shared: times are CPU times where the work is "
              "single-threaded, wall times for execution and the registry)")
    text = header + "\n\n" + report.table() + ("\n\n" + "\n".join(f"- {n}" for n in report.notes) if report.notes else "")
    print("\n" + text)
    suite.RESULTS.mkdir(exist_ok=True)
    (suite.RESULTS / "latest.md").write_text(text + "\n", "utf-8")
    (suite.RESULTS / "latest.json").write_text(json.dumps(
        {"machine": info, "elapsed_s": elapsed, "rows": [r.__dict__ for r in report.rows],
         "notes": report.notes, "raw": report.raw}, indent=1, default=str), "utf-8")
    missed = [r for r in report.rows if r.met == "NO"]
    print(f"\n{len(missed)} target(s) missed" if missed else "\nevery target met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
