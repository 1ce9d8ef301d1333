"""The benchmark suite: every row measured side by side in one run, printed as one table.

Each measurement runs in a fresh interpreter (bench/workers.py); a row's value is the median of
its repeats. handoff and the floor run on the project's .venv; Cosmos on bench/.venv, which is
that same .venv plus Cosmos (bench/venv.sh), so all three use the very same Airflow.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .mesh import BENCH, CACHE, Mesh, MeshSpec, get_mesh

REPO = BENCH.parent
MAIN_PY = REPO / ".venv" / "bin" / "python"
BENCH_PY = BENCH / ".venv" / "bin" / "python"
RUN = CACHE / "run"
RESULTS = BENCH / "results"

BUILD_SCENARIOS = [MeshSpec(1, 250), MeshSpec(1, 1000), MeshSpec(1, 5000), MeshSpec(20, 250), MeshSpec(1, 20000)]
NO_COSMOS_BUILD_AT = 20000  # models of one domain from which Cosmos's DAG build is not timed (minutes per repeat)
PARSE_SPEC = MeshSpec(20, 250)

TARGETS = {
    "build_vs_floor": 1.0,  # handoff build time / strong floor build time, at most
    "first_vs_warm": 1.5,  # first parse of new plans (validating them) / warm parse, at most
    "cosmos_vs_build": 5.0,  # Cosmos (TestBehavior.NONE) time / handoff time, at least
    "parse_vs_cosmos": 20.0,  # Cosmos all-in-one-file per-task parse / ours, at least
    "compile_vs_json": 2.0,  # (load_manifest + compile_manifest) / json.load, at most
    "exec_overhead_s": 1.0,  # per model, at most
    "exec_vs_build": 1.5,  # task-per-model wall / one dbt build wall, at most
    "who_depends_on_s": 0.010,
    "publish_s": 5.0,
}


# --------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------

@dataclass
class Row:
    section: str
    measurement: str
    handoff: str
    others: str = ""
    ratio: str = ""
    target: str = ""
    met: str = ""  # "yes" / "NO" / "" (no target) / "pending"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  [{row.section}] {row.measurement}: {row.handoff} | {row.others} | {row.ratio} | {row.met}",
              flush=True)

    def table(self) -> str:
        head = ["#", "section", "measurement", "handoff", "compared with", "ratio", "target", "met"]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        for i, r in enumerate(self.rows, 1):
            cells = [str(i), r.section, r.measurement, r.handoff, r.others, r.ratio, r.target, r.met]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines)


def met(ok: bool) -> str:
    return "yes" if ok else "NO"


def secs(value: float) -> str:
    if value < 0.01:
        return f"{value * 1000:.2f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


# --------------------------------------------------------------------------------------
# Running workers
# --------------------------------------------------------------------------------------

def base_env(dags_folder: Path | None = None) -> dict[str, str]:
    home = CACHE / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or home / "dags"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "PYTHONPATH": str(REPO),
    })
    for key in ("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "_AIRFLOW_PARSING_CONTEXT_TASK_ID"):
        env.pop(key, None)
    return env


def handoff_env(spec: MeshSpec, dags_folder: Path | None = None) -> dict[str, str]:
    """Worker environment with the factory's plan-validation cache in a folder of this run
    (``clear_validation_cache`` empties it, so the next parse is a first parse)."""
    env = base_env(dags_folder)
    env["HANDOFF_CACHE_DIR"] = str(RUN / spec.label / "handoff-cache")
    return env


def clear_validation_cache(spec: MeshSpec) -> None:
    shutil.rmtree(RUN / spec.label / "handoff-cache", ignore_errors=True)


def run_worker(kind: str, args: dict[str, Any], *, python: Path = MAIN_PY,
               env: dict[str, str] | None = None, timeout: float = 900) -> dict[str, Any]:
    """One fresh interpreter, one measurement; its JSON result."""
    done = subprocess.run([str(python), "-m", "bench.workers", kind, json.dumps(args)], cwd=REPO,
                          env=env or base_env(), capture_output=True, text=True, timeout=timeout, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            return json.loads(line[len("BENCH-RESULT "):])
    raise RuntimeError(f"worker {kind} {args} failed (exit {done.returncode}):\n"
                       f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def median_of(repeats: int, measure: Callable[[], dict[str, Any]], key: str) -> tuple[dict[str, Any], list[dict]]:
    """Run ``measure`` ``repeats`` times; the run whose ``key`` is the median, and all runs."""
    runs = [measure() for _ in range(repeats)]
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[len(ordered) // 2], runs


def med(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


# --------------------------------------------------------------------------------------
# Preparing a mesh: plans compiled by handoff, a registry snapshot for sensors
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prepared:
    mesh: Mesh
    plans_dir: Path

    @property
    def spec(self) -> MeshSpec:
        return self.mesh.spec

    def cosmos_manifests(self) -> list[list[str]]:
        return [[d, str(self.mesh.manifest(d))] for d in self.mesh.domains()]


def prepare(spec: MeshSpec) -> Prepared:
    """Generate (or reuse) the mesh and compile its plans with this checkout's handoff."""
    mesh = get_mesh(spec)
    plans_dir = RUN / spec.label / "plans"
    shutil.rmtree(plans_dir, ignore_errors=True)
    clear_validation_cache(spec)
    plans_dir.mkdir(parents=True)
    code = (
        "import sys, pathlib\n"
        "from handoff.manifest import load_manifest\n"
        "from handoff.plan import compile_manifest, dumps\n"
        "out = pathlib.Path(sys.argv[1])\n"
        "for path in sys.argv[2:]:\n"
        "    plan = compile_manifest(load_manifest(path))\n"
        "    (out / f\"{plan.domain.name}.plan.json\").write_text(dumps(plan), 'utf-8')\n"
    )
    subprocess.run([str(MAIN_PY), "-c", code, str(plans_dir), *map(str, mesh.manifests())],
                   check=True, cwd=REPO, env=base_env())
    return Prepared(mesh, plans_dir)


def write_snapshot(prepared: Prepared, dest: Path) -> Path:
    """A registry snapshot (domain, model) -> upstream task, as the factory reads it, derived from
    the plans (what `handoff snapshot` exports after every domain is published)."""
    from handoff.plan_model import Plan
    from handoff.registry.mesh import Mesh, domain_from_plan
    from handoff.registry.snapshot import build_snapshot, snapshot_text

    domains = {}
    for plan_file in sorted(prepared.plans_dir.glob("*.plan.json")):
        domain = domain_from_plan(Plan.from_json(json.loads(plan_file.read_text("utf-8"))), str(plan_file))
        domains[domain.name] = domain
    dest.write_text(snapshot_text(build_snapshot(Mesh(domains)), str(dest)), "utf-8")  # refuses an invalid one
    return dest


# --------------------------------------------------------------------------------------
# 1. DAG build, memory, serialization
# --------------------------------------------------------------------------------------

def bench_build(report: Report, prepared: Prepared, repeats: int) -> None:
    spec = prepared.spec
    mesh = prepared.mesh
    pipelines = sum(len(json.loads(p.read_text())["pipelines"]) for p in prepared.plans_dir.glob("*.plan.json"))
    common = {"plans_dir": str(prepared.plans_dir), "projects_dir": str(mesh.projects_dir),
              "profiles_dir": str(mesh.profiles_dir), "expect_dags": pipelines}
    cosmos_args = {"manifests": prepared.cosmos_manifests(), "profiles_yml": str(mesh.profiles_dir / "profiles.yml")}
    variants = {
        "handoff": (MAIN_PY, {"builder": "ours", **common}),
        "floor": (MAIN_PY, {"builder": "floor", **common}),
        "floor_rshift": (MAIN_PY, {"builder": "floor", "wiring": "rshift", **common}),
        "cosmos_none": (BENCH_PY, {"builder": "cosmos", "test_behavior": "NONE", **cosmos_args}),
        "cosmos_after_each": (BENCH_PY, {"builder": "cosmos", "test_behavior": "AFTER_EACH", **cosmos_args}),
    }
    big = spec.models >= NO_COSMOS_BUILD_AT
    if big:  # minutes per repeat; the quadratic `>>` floor too
        for name in ("floor_rshift", "cosmos_none", "cosmos_after_each"):
            del variants[name]
    env = handoff_env(spec)
    cold = run_worker("build", variants["handoff"][1], env=env)  # plans never seen: validated
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for _ in range(repeats):  # interleaved, so a noisy moment on the machine hits every variant alike
        for name, (python, args) in variants.items():
            runs[name].append(run_worker("build", args, python=python, env=env))
    report.raw[f"build {spec.label}"] = {"handoff_cold": cold, **runs}
    b = {name: med(r, "build_s") for name, r in runs.items()}
    tasks = runs["handoff"][0]["tasks"]
    label = f"{spec.label} ({runs['handoff'][0]['dags']} DAG{'s' if spec.domains > 1 else ''}, {tasks} tasks)"
    first = cold["build_s"] / b["handoff"]
    ok = b["handoff"] <= TARGETS["build_vs_floor"] * b["floor"]
    others = f"strong floor (ids wired directly) {secs(b['floor'])}"
    ratio = f"{b['handoff'] / b['floor']:.2f}× strong floor; first parse {first:.2f}× warm"
    target = "≤ 1.0× strong floor"
    if big:  # the issue's first-parse target is set at 1x20,000, where validation dominated
        ok = ok and first <= TARGETS["first_vs_warm"]
        target += ", first parse ≤ 1.5× warm"
    if not big:
        ok = ok and b["cosmos_none"] >= TARGETS["cosmos_vs_build"] * b["handoff"]
        others += (f"; floor wired with `>>` {secs(b['floor_rshift'])}; Cosmos NONE {secs(b['cosmos_none'])} "
                   f"({runs['cosmos_none'][0]['tasks']} tasks); Cosmos AFTER_EACH {secs(b['cosmos_after_each'])} "
                   f"({runs['cosmos_after_each'][0]['tasks']} tasks)")
        ratio += (f"; Cosmos NONE {b['cosmos_none'] / b['handoff']:.1f}× slower, "
                  f"AFTER_EACH {b['cosmos_after_each'] / b['handoff']:.1f}× slower")
        target += " and Cosmos NONE ≥ 5× slower"
    else:
        others += "; Cosmos and the `>>` floor not timed at this size (minutes per repeat)"
    report.add(Row(
        "DAG build", f"build {label}, CPU time, median of {repeats}",
        f"{secs(b['handoff'])} (first parse of new plans, validating them: {secs(cold['build_s'])})",
        others, ratio, target, met(ok)))
    peak = {name: med(r, "rss_peak_mb") for name, r in runs.items()}
    delta = {name: med(r, "rss_delta_mb") for name, r in runs.items()}
    cosmos_mem = "" if big else (
        f"; Cosmos NONE {peak['cosmos_none']:.0f} MB (+{delta['cosmos_none']:.0f}); "
        f"AFTER_EACH {peak['cosmos_after_each']:.0f} MB (+{delta['cosmos_after_each']:.0f})")
    report.add(Row(
        "DAG build", f"memory {spec.label}: peak RSS of the building process (+ RSS the built DAGs keep)",
        f"{peak['handoff']:.0f} MB (+{delta['handoff']:.0f})",
        f"floor {peak['floor']:.0f} MB (+{delta['floor']:.0f}){cosmos_mem}",
        f"{peak['handoff'] / peak['floor']:.2f}× floor", "", ""))
    ser = {name: med(r, "serialize_s") for name, r in runs.items()}
    size = {name: runs[name][0]["serialized_bytes"] / 1e6 for name in runs}
    cosmos_ser = "" if big else (
        f"; Cosmos NONE {secs(ser['cosmos_none'])}, {size['cosmos_none']:.1f} MB; "
        f"AFTER_EACH {secs(ser['cosmos_after_each'])}, {size['cosmos_after_each']:.1f} MB")
    report.add(Row(
        "DAG build", f"Airflow serialization of the built DAGs (DagSerialization.to_dict + json), CPU {spec.label}",
        f"{secs(ser['handoff'])}, {size['handoff']:.1f} MB",
        f"floor {secs(ser['floor'])}, {size['floor']:.1f} MB{cosmos_ser}",
        f"{ser['handoff'] / ser['floor']:.2f}× floor", "", ""))


# --------------------------------------------------------------------------------------
# 2. Per-task parse in a worker
# --------------------------------------------------------------------------------------

COSMOS_FILE = '''"""Cosmos, the way its docs deploy it: DbtDag(s) built from the manifest at every parse."""
from datetime import datetime, timezone
from cosmos import DbtDag, ExecutionConfig, LoadMode, ProfileConfig, ProjectConfig, RenderConfig, TestBehavior

PROFILES = {profiles!r}
for domain, manifest, project in {domains!r}:
    globals()[domain] = DbtDag(
        dag_id=f"{{domain}}__daily", schedule="0 3 * * *",
        start_date=datetime(2024, 1, 1, tzinfo=timezone.utc), catchup=False,
        project_config=ProjectConfig(manifest_path=manifest, project_name=domain),
        profile_config=ProfileConfig(profile_name=domain, target_name="dev", profiles_yml_filepath=PROFILES),
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.{behavior}),
        execution_config=ExecutionConfig(dbt_project_path=project),
    )
'''

HANDOFF_FILE = '''"""The one DAG file of a handoff deployment."""
from handoff.airflow import dags_from_env

globals().update(dags_from_env())
'''


def bench_parse(report: Report, prepared: Prepared, repeats: int) -> None:
    mesh = prepared.mesh
    domains = mesh.domains()
    target_domain = domains[-1]  # the last domain reads the most upstreams
    plan = json.loads((prepared.plans_dir / f"{target_domain}.plan.json").read_text())
    models = sorted(t["task_id"] for t in plan["pipelines"][0]["tasks"] if t["kind"] == "dbt_model")
    model = next(t for t in plan["pipelines"][0]["tasks"]
                 if t["task_id"] == next((m for m in models if m.startswith("mrt_")), models[-1]))
    dag_id = plan["pipelines"][0]["dag_id"]
    folder = RUN / prepared.spec.label / "dags"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "handoff").mkdir(parents=True)
    (folder / "handoff_snapshot").mkdir()
    (folder / "cosmos_all").mkdir()
    (folder / "cosmos_one").mkdir()
    official = REPO / "integration_tests" / "airflow" / "dags" / "handoff_dags.py"
    ours_text = official.read_text("utf-8") if official.is_file() else HANDOFF_FILE
    (folder / "handoff" / "handoff_dags.py").write_text(ours_text)
    (folder / "handoff_snapshot" / "handoff_dags.py").write_text(ours_text)
    snapshot = write_snapshot(prepared, folder / "registry_snapshot.json")
    entries = [(d, str(mesh.manifest(d)), str(mesh.project_dir(d))) for d in domains]
    profiles = str(mesh.profiles_dir / "profiles.yml")
    (folder / "cosmos_all" / "cosmos_dags.py").write_text(
        COSMOS_FILE.format(profiles=profiles, domains=entries, behavior="NONE"))
    for entry in entries:
        (folder / "cosmos_one" / f"cosmos_{entry[0]}.py").write_text(
            COSMOS_FILE.format(profiles=profiles, domains=[entry], behavior="NONE"))

    def env_for(dags_folder: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = handoff_env(prepared.spec, dags_folder)
        env.update({"_AIRFLOW_PARSING_CONTEXT_DAG_ID": dag_id,
                    "_AIRFLOW_PARSING_CONTEXT_TASK_ID": model["task_id"],
                    "HANDOFF_PLANS_DIR": str(prepared.plans_dir),
                    "HANDOFF_DBT_PROJECTS_DIR": str(mesh.projects_dir),
                    "HANDOFF_DBT_PROFILES_DIR": str(mesh.profiles_dir),
                    **(extra or {})})
        return env

    cosmos_task = f"{model['name']}_run"
    variants = {
        "handoff": (MAIN_PY, folder / "handoff" / "handoff_dags.py", model["task_id"], env_for(folder / "handoff")),
        "handoff_snapshot": (MAIN_PY, folder / "handoff_snapshot" / "handoff_dags.py", model["task_id"],
                             env_for(folder / "handoff_snapshot", {"HANDOFF_SNAPSHOT": str(snapshot)})),
        "cosmos_all": (BENCH_PY, folder / "cosmos_all" / "cosmos_dags.py", cosmos_task, env_for(folder / "cosmos_all")),
        "cosmos_one": (BENCH_PY, folder / "cosmos_one" / f"cosmos_{target_domain}.py", cosmos_task,
                       env_for(folder / "cosmos_one")),
    }
    clear_validation_cache(prepared.spec)
    python, dag_file, task_id, env = variants["handoff"]
    cold = run_worker("parse", {"dag_file": str(dag_file), "dag_id": dag_id, "task_id": task_id}, python=python,
                      env=env)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for i in range(repeats + 2):
        for name, (python, dag_file, task_id, env) in variants.items():
            if i >= repeats and name.startswith("cosmos"):
                continue  # the fast ones get two more repeats
            runs[name].append(run_worker("parse", {"dag_file": str(dag_file), "dag_id": dag_id, "task_id": task_id},
                                         python=python, env=env))
    report.raw["parse"] = {"handoff_cold": cold, **runs}
    p = {name: med(r, "parse_s") for name, r in runs.items()}
    n = {name: r[0]["dags_built"] for name, r in runs.items()}
    ratio_all = p["cosmos_all"] / p["handoff"]
    ratio_all_snap = p["cosmos_all"] / p["handoff_snapshot"]
    report.add(Row(
        "per-task parse", f"worker loads {dag_id} to run {model['task_id']} ({prepared.spec.label}; "
        f"CPU time, median of {repeats + 2} for handoff, {repeats} for Cosmos; the DAG file's imports included)",
        f"{secs(p['handoff'])} (built {n['handoff']} DAG); with registry snapshot {secs(p['handoff_snapshot'])}; "
        f"first parse of new plans {secs(cold['parse_s'])}",
        f"Cosmos all {len(domains)} DAGs in one file {secs(p['cosmos_all'])} (built {n['cosmos_all']}); "
        f"Cosmos one file per DAG {secs(p['cosmos_one'])}",
        f"Cosmos all-in-one {ratio_all:.0f}× slower ({ratio_all_snap:.0f}× with snapshot); "
        f"one-file-per-DAG {p['cosmos_one'] / p['handoff']:.1f}× slower",
        "Cosmos all-in-one ≥ 20× slower", met(ratio_all >= TARGETS["parse_vs_cosmos"])))


# --------------------------------------------------------------------------------------
# 3. Compile vs json.load
# --------------------------------------------------------------------------------------

def bench_compile(report: Report, prepared_all: list[Prepared], repeats: int) -> None:
    worst: tuple[float, str] = (0.0, "")
    for prepared in prepared_all:
        manifests = [str(p) for p in prepared.mesh.manifests()]
        runs = [run_worker("compile", {"manifests": manifests}) for _ in range(repeats)]
        report.raw[f"compile {prepared.spec.label}"] = runs
        per_run = [(sum(m["json_s"] for m in r["manifests"]), sum(m["load_s"] + m["compile_s"] for m in r["manifests"]),
                    sum(m["load_s"] for m in r["manifests"])) for r in runs]
        json_s = statistics.median(x[0] for x in per_run)
        total = statistics.median(x[1] for x in per_run)
        load_s = statistics.median(x[2] for x in per_run)
        size = sum(m["bytes"] for m in runs[0]["manifests"]) / 1e6
        ratio = total / json_s
        worst = max(worst, (ratio, manifests[0] if prepared.spec.domains == 1 else manifests[-1]))
        what = f"{len(manifests)} manifests, {size:.1f} MB" if len(manifests) > 1 else f"{size:.1f} MB manifest"
        report.add(Row(
            "compile", f"compile {prepared.spec.label} ({what}), CPU time, median of {repeats}",
            f"{secs(total)} (load_manifest {secs(load_s)} + compile_manifest {secs(total - load_s)})",
            f"json.load {secs(json_s)}", f"{ratio:.2f}× json.load", "≤ 2.0× json.load",
            met(ratio <= TARGETS["compile_vs_json"])))
    if worst[0] > TARGETS["compile_vs_json"]:
        profile_compile(report, worst[1])


def profile_compile(report: Report, manifest: str) -> None:
    """Where compile time goes (pyinstrument, bench venv); written to bench/results/."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "compile-profile.txt"
    code = (
        "import sys\nfrom pyinstrument import Profiler\n"
        "from handoff.manifest import load_manifest\nfrom handoff.plan import compile_manifest\n"
        "p = Profiler(interval=0.001)\np.start()\ncompile_manifest(load_manifest(sys.argv[1]))\np.stop()\n"
        "print(p.output_text(unicode=True, color=False, show_all=False))\n"
    )
    done = subprocess.run([str(BENCH_PY), "-c", code, manifest], cwd=REPO, env=base_env(),
                          capture_output=True, text=True, check=False)
    out.write_text(done.stdout + done.stderr)
    report.notes.append(f"compile profile of {manifest}: {out.relative_to(REPO)}")


# --------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------

VERSIONS_CODE = (
    "from importlib.metadata import version as v\n"
    "print('; '.join(f'{p} {v(p)}' for p in ('apache-airflow', 'apache-airflow-providers-standard', "
    "'dbt-core', 'dbt-duckdb', 'astronomer-cosmos', 'jsonschema')))"
)


def machine() -> dict[str, str]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    versions = subprocess.run(
        [str(BENCH_PY), "-c", VERSIONS_CODE], capture_output=True, text=True, env=base_env(),
        check=False).stdout.strip()
    return {"cpu": cpu, "nproc": str(os.cpu_count()), "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
            "loadavg": Path("/proc/loadavg").read_text().split(" ")[0],
            "python": sys.version.split()[0], "versions": versions}
