"""Plans that passed validation, remembered across DAG parses (an empty marker file per plan).

Validating a plan against its JSON Schema costs ~0.2 ms per task (jsonschema), more than
building the task: 60% of a 20-domain parse (docs/benchmarks.md). A plan's verdict depends only
on its bytes, the schemas, the validator's code and handoff's version, and Airflow re-parses the
same bytes every 30 s and before every task, so a plan that passed is remembered as an empty
marker file named by the hash of all of them. Invalid plans are never remembered: they are
re-checked (and warned about) at every parse. Any problem with the cache just means validating.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from ..plan import PLAN_VERSION, VALIDATION_RULES


@functools.lru_cache(maxsize=1)
def _schema_digest() -> bytes:
    from importlib import resources

    from .. import __version__, plan_model
    from .. import plan as plan_package

    digest = hashlib.sha256(f"handoff {__version__} plan v{PLAN_VERSION} {VALIDATION_RULES}\0".encode())
    # the validator's own code too (the plan package and the typed model): a rule added without a
    # version change must not trust old verdicts
    code = [*sorted(Path(plan_package.__file__).parent.glob("*.py")), Path(plan_model.__file__)]
    for path in code:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    folder = resources.files("handoff").joinpath("schemas")
    for name in sorted(p.name for p in folder.iterdir() if p.name.endswith(".schema.json")):
        digest.update(name.encode() + b"\0" + folder.joinpath(name).read_bytes() + b"\0")
    return digest.digest()


def _cache_dir() -> Path:
    explicit = os.environ.get("HANDOFF_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "handoff"


def validity_marker(raw: bytes) -> Path | None:
    try:
        key = hashlib.sha256(_schema_digest() + raw).hexdigest()
        return _cache_dir() / "valid-plans" / key
    except (OSError, ValueError):
        return None


def remember(marker: Path | None) -> None:
    if marker is None:
        return
    try:
        marker.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(marker, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError:
        pass
