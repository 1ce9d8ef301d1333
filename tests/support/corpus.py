"""The corpus domains of integration_tests/corpus (retail, orbit, ledger): copied, `dbt deps` +
`handoff package` (one dbt parse and the artefact workers run from; nothing built: the warehouse
stays fresh), compiled into plans — the deploy of docs/deployment.md.

    corpus = prepare_corpus(tmp_path)           # or the session fixture `corpus`
    corpus.plans["retail"]                       # the compiled plan (handoff.plan_model.Plan)
    corpus.project_dirs["orbit"]                 # the copy of the project (deps installed, parsed)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from handoff.manifest import load_manifest
from handoff.plan import compile_manifest, dumps
from handoff.plan_model import Plan

from .examples import _DBT_LOCK, _environ, check, copy_examples, run_dbt

CORPUS_DOMAINS = ("retail", "orbit", "ledger")  # build order: each reads the ones before it


@dataclass
class Corpus:
    root: Path  # the copy of integration_tests/corpus: <root>/<dbt project name>, profiles.yml
    duckdb_path: Path
    project_dirs: dict[str, Path]
    manifests: dict[str, Path]
    plans: dict[str, Plan]

    @property
    def env(self) -> dict[str, str]:
        return {"HANDOFF_DUCKDB_PATH": str(self.duckdb_path)}

    def write_plans(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for domain, plan in self.plans.items():
            (folder / f"{domain}.plan.json").write_text(dumps(plan))
        return folder


def prepare_corpus(tmp_path: Path) -> Corpus:
    integration = copy_examples(Path(tmp_path) / "corpus-copy")
    root = integration / "corpus"
    corpus = Corpus(root=root, duckdb_path=Path(tmp_path) / "corpus.duckdb",
                    project_dirs={d: root / d for d in CORPUS_DOMAINS},
                    manifests={d: root / d / "target" / "manifest.json" for d in CORPUS_DOMAINS}, plans={})
    from handoff.packaging import package_project

    for domain in CORPUS_DOMAINS:
        check(run_dbt(["deps"], corpus.project_dirs[domain], corpus.env))
        with _DBT_LOCK, _environ({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", **corpus.env}):
            package_project(corpus.project_dirs[domain], profiles_dir=root)
        corpus.plans[domain] = compile_manifest(load_manifest(corpus.manifests[domain]))
    return corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The corpus domains, parsed (not built) and compiled, once per session."""
    return prepare_corpus(tmp_path_factory.mktemp("corpus"))
