"""The deployed mesh for the impact tests: the three example domains parsed by real dbt, compiled
and published into a temporary SQLite registry through the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from handoff.cli import main
from impact_mesh import DOMAINS, build


@dataclass(frozen=True)
class Deployed:
    root: Path
    manifests: dict[str, Path]
    registry: str


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    root = tmp_path_factory.mktemp("impact")
    manifests = {domain: build(domain, root / "deployed" / domain) for domain in DOMAINS}
    plans = root / "plans"
    for manifest in manifests.values():
        assert main(["compile", str(manifest), "-o", f"{plans}/"]) == 0
    registry = f"sqlite:///{root / 'registry.db'}"
    assert main(["publish", "--registry", registry, str(plans)]) == 0
    return Deployed(root, manifests, registry)


@pytest.fixture(autouse=True)
def no_ambient_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No $HANDOFF_REGISTRY_URL and no ./.handoff/registry.db: a test names its registry or has none."""
    monkeypatch.delenv("HANDOFF_REGISTRY_URL", raising=False)
    monkeypatch.chdir(tmp_path)
