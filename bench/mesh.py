"""A deterministic synthetic dbt mesh: D domains x M models, real dbt projects on DuckDB, parsed by real dbt.

Each domain is one dbt project (one domain, one `daily` pipeline = one Airflow DAG) holding one
seed and M models in three layers:

- staging (30%): reads the domain's seed; about 5% of all models instead read another domain's
  public mart through a dbt source marked `handoff_upstream` (domain i only reads domains < i, so
  the mesh is acyclic across domains);
- intermediate (40%): refs 1-3 earlier staging/intermediate models;
- marts (30%): refs 1-3 earlier intermediate/mart models; every other mart is `access: public`
  with an `available_by` SLA.

Half the models carry a `not_null` test, every mart a `unique` test (what Cosmos's AFTER_EACH
turns into extra tasks). The same parameters always give the same bytes. Parsed manifests are
cached under bench/.cache/ keyed by the parameters, this file's text and the dbt versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".cache"
SCHEDULE = "0 3 * * *"
CROSS_DOMAIN_SHARE = 0.05
SEED_ROWS = 20


@dataclass(frozen=True)
class MeshSpec:
    domains: int
    models: int
    seed: int = 7

    @property
    def label(self) -> str:
        return f"{self.domains}x{self.models}"

    def domain_name(self, i: int) -> str:
        return f"dom{i:02d}" if self.domains > 1 else f"solo{self.models}"


@dataclass(frozen=True)
class Mesh:
    spec: MeshSpec
    root: Path  # holds projects/<domain>/, profiles.yml

    @property
    def projects_dir(self) -> Path:
        return self.root / "projects"

    @property
    def profiles_dir(self) -> Path:
        return self.root

    def domains(self) -> list[str]:
        return [self.spec.domain_name(i) for i in range(self.spec.domains)]

    def project_dir(self, domain: str) -> Path:
        return self.projects_dir / domain

    def manifest(self, domain: str) -> Path:
        return self.project_dir(domain) / "target" / "manifest.json"

    def manifests(self) -> list[Path]:
        return [self.manifest(d) for d in self.domains()]


def _versions() -> str:
    from importlib.metadata import version

    return f"dbt-core {version('dbt-core')}, dbt-duckdb {version('dbt-duckdb')}"


def cache_key(spec: MeshSpec) -> str:
    text = json.dumps([spec.domains, spec.models, spec.seed, _versions(), Path(__file__).read_text("utf-8")])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------
# Generating the projects (pure text)
# --------------------------------------------------------------------------------------

@dataclass
class _Model:
    name: str
    layer: str
    refs: list[str]
    source: tuple[str, str] | None = None  # (upstream domain, upstream mart)
    public: bool = False
    available_by: str | None = None
    not_null: bool = False


def _layer_sizes(m: int) -> tuple[int, int, int]:
    staging = max(1, round(m * 0.3))
    intermediate = max(1, round(m * 0.4)) if m > 2 else 0
    return staging, intermediate, m - staging - intermediate


def _domain_models(spec: MeshSpec, i: int, rng: random.Random,
                   public_marts: dict[str, list[str]]) -> list[_Model]:
    n_stg, n_int, n_mrt = _layer_sizes(spec.models)
    models: list[_Model] = []
    upstream_domains = [spec.domain_name(j) for j in range(i)]
    n_cross = round(spec.models * CROSS_DOMAIN_SHARE) if upstream_domains else 0
    cross_at = set(rng.sample(range(n_stg), min(n_cross, n_stg)))
    for k in range(n_stg):
        model = _Model(f"stg_{k:04d}", "staging", [], not_null=rng.random() < 0.5)
        if k in cross_at:
            up = rng.choice(upstream_domains)
            model.source = (up, rng.choice(public_marts[up]))
        models.append(model)
    for k in range(n_int):
        pool = [m.name for m in models]
        window = pool[-max(20, len(pool) // 3):]  # prefer recent models: gives the DAG depth
        refs = sorted(set(rng.sample(window, min(len(window), rng.randint(1, 3)))))
        models.append(_Model(f"int_{k:04d}", "intermediate", refs, not_null=rng.random() < 0.5))
    for k in range(n_mrt):
        pool = [m.name for m in models if m.layer != "staging"] or [m.name for m in models]
        window = pool[-max(20, len(pool) // 3):]
        refs = sorted(set(rng.sample(window, min(len(window), rng.randint(1, 3)))))
        public = k % 2 == 0
        models.append(_Model(f"mrt_{k:04d}", "marts", refs, public=public,
                             available_by=f"{5 + k % 3:02d}:30" if public else None,
                             not_null=rng.random() < 0.5))
    return models


def _sql(domain: str, model: _Model) -> str:
    if model.layer == "staging":
        if model.source:
            up, mart = model.source
            return f"select id, value from {{{{ source('{up}', '{mart}') }}}}\n"
        return f"select id, value from {{{{ ref('raw_{domain}') }}}}\n"
    parts = "\n    union all\n".join(f"    select id, value from {{{{ ref('{r}') }}}}" for r in model.refs)
    return f"select id, sum(value) as value\nfrom (\n{parts}\n) as inputs\ngroup by id\n"


def _yaml_models(models: list[_Model]) -> list[dict]:
    out = []
    for m in models:
        entry: dict = {"name": m.name}
        if m.public:
            entry["access"] = "public"
            entry["config"] = {"meta": {"handoff": {"available_by": m.available_by}}}
        tests = (["not_null"] if m.not_null else []) + (["unique"] if m.layer == "marts" else [])
        if tests:
            entry["columns"] = [{"name": "id", "data_type": "integer", "data_tests": tests}]
        out.append(entry)
    return out


def write_mesh(spec: MeshSpec, root: Path) -> None:
    """Write the dbt projects and one profiles.yml of the mesh under ``root``."""
    import yaml

    rng = random.Random(spec.seed)
    public_marts: dict[str, list[str]] = {}
    profiles: dict = {}
    for i in range(spec.domains):
        domain = spec.domain_name(i)
        project = root / "projects" / domain
        models = _domain_models(spec, i, rng, public_marts)
        public_marts[domain] = [m.name for m in models if m.public] or [models[-1].name]
        meta = {
            "handoff_domain": {"name": domain, "owner": f"team-{domain}", "slack": f"#{domain}"},
            "handoff_pipeline": {"name": "daily", "schedule": SCHEDULE},
        }
        dbt_project = {
            "name": domain, "version": "1.0", "config-version": 2, "profile": domain,
            "models": {domain: {"+meta": {**meta, "handoff_defaults": {"retries": 1, "retry_delay": "5m"}},
                                "staging": {"+materialized": "view"},
                                "intermediate": {"+materialized": "view"},
                                "marts": {"+materialized": "table"}}},
            "seeds": {domain: {"+meta": meta}},
        }
        _write(project / "dbt_project.yml", yaml.safe_dump(dbt_project, sort_keys=False))
        _write(project / "seeds" / f"raw_{domain}.csv",
               "id,value\n" + "".join(f"{r},{(r * 7 + i) % 100}\n" for r in range(SEED_ROWS)))
        for layer in ("staging", "intermediate", "marts"):
            layer_models = [m for m in models if m.layer == layer]
            for m in layer_models:
                _write(project / "models" / layer / f"{m.name}.sql", _sql(domain, m))
            doc: dict = {"version": 2, "models": _yaml_models(layer_models)}
            if layer == "staging":
                sources = sorted({m.source for m in layer_models if m.source})
                by_domain: dict[str, list[str]] = {}
                for up, mart in sources:
                    by_domain.setdefault(up, []).append(mart)
                if by_domain:
                    doc["sources"] = [
                        {"name": up, "schema": up, "meta": {"handoff_upstream": {"domain": up}},
                         "tables": [{"name": mart, "meta": {"handoff_upstream": {"model": mart}}}
                                    for mart in marts]}
                        for up, marts in sorted(by_domain.items())
                    ]
            _write(project / "models" / layer / f"_{layer}.yml", yaml.safe_dump(doc, sort_keys=False))
        profiles[domain] = {"target": "dev", "outputs": {"dev": {
            "type": "duckdb", "path": "{{ env_var('HANDOFF_DUCKDB_PATH') }}", "schema": domain, "threads": 1}}}
    _write(root / "profiles.yml", yaml.safe_dump(profiles, sort_keys=True))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")


# --------------------------------------------------------------------------------------
# Parsing with real dbt, cached
# --------------------------------------------------------------------------------------

def dbt_env(root: Path) -> dict[str, str]:
    """Environment dbt needs for a mesh (absolute DuckDB path, no telemetry)."""
    return {"HANDOFF_DUCKDB_PATH": str(root / "mesh.duckdb"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "DO_NOT_TRACK": "1"}


def parse_mesh(mesh: Mesh, log=print) -> None:
    """`dbt parse` every project in-process (one dbtRunner per project, sequentially: dbt is
    not safe to run concurrently in one process)."""
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_env(mesh.root))
    for domain in mesh.domains():
        project = mesh.project_dir(domain)
        started = time.perf_counter()
        result = dbtRunner().invoke(["--quiet", "parse", "--project-dir", str(project),
                                     "--profiles-dir", str(mesh.profiles_dir),
                                     "--target-path", str(project / "target"),
                                     "--log-path", str(project / "logs")])
        if not result.success:
            raise RuntimeError(f"dbt parse of {project} failed: {result.exception}")
        log(f"  parsed {domain} in {time.perf_counter() - started:.1f}s")


def get_mesh(spec: MeshSpec, log=print) -> Mesh:
    """The mesh of ``spec``, generated and parsed on first use, then read from the cache."""
    root = CACHE / f"mesh-{spec.label}-{cache_key(spec)}"
    mesh = Mesh(spec, root)
    if (root / "DONE").is_file():
        return mesh
    if root.exists():
        shutil.rmtree(root)
    started = time.perf_counter()
    log(f"generating mesh {spec.label} in {root}")
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_mesh(spec, tmp)
    tmp.rename(root)
    parse_mesh(mesh, log)
    (root / "DONE").write_text(f"{time.perf_counter() - started:.1f}\n")
    log(f"mesh {spec.label} ready in {time.perf_counter() - started:.1f}s")
    return mesh


def main(argv: list[str]) -> int:
    """python -m bench.mesh D M ...: generate and parse meshes (prints their folders)."""
    args = [int(a) for a in argv]
    for d, m in zip(args[::2], args[1::2]):
        print(get_mesh(MeshSpec(d, m)).root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
