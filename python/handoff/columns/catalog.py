"""Reads dbt's catalog.json (`dbt docs generate`): every built relation's real columns and warehouse types."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HandoffError
from ..files import read_regular_bytes
from ..manifest import Column

_SCHEMA_VERSION = re.compile(r"https?://schemas\.getdbt\.com/dbt/catalog/v(\d+)\.json")


@dataclass(frozen=True)
class Catalog:
    """Columns (in the warehouse's order) of each node and source dbt found in the warehouse, by unique_id."""

    path: str
    nodes: Mapping[str, tuple[Column, ...]]
    invocation_id: str | None = None  # metadata.invocation_id: `dbt docs generate` writes its manifest with the same


def check_catalog_of(catalog: Catalog, manifest_path: str, manifest_invocation: str | None, option: str) -> None:
    """Refuse a catalog that another dbt invocation wrote than the manifest it is passed with: its
    columns would describe another state of the project (a base catalog passed as the head's, a
    catalog of an older build) and override the compiled SQL. ``dbt docs generate`` writes both
    target/manifest.json and target/catalog.json with one invocation_id. Raise HandoffError."""
    if catalog.invocation_id and manifest_invocation and catalog.invocation_id != manifest_invocation:
        raise HandoffError(f"written by dbt invocation {catalog.invocation_id[:36]}, the manifest {manifest_path} by "
                           f"{manifest_invocation[:36]}: this catalog is not of that manifest", where=catalog.path,
                           hint=f"pass as {option} the catalog.json that the same `dbt docs generate` wrote next to "
                                "the manifest")


def load_catalog(path: str | Path) -> Catalog:
    """Read and check a catalog.json; any problem is a one-line HandoffError naming the file."""
    where = str(path)
    hint = "pass the target/catalog.json that `dbt docs generate` wrote"
    try:
        data = json.loads(read_regular_bytes(path))  # a FIFO is refused, never read
    except FileNotFoundError:
        raise HandoffError("file not found", where=where, hint=hint) from None
    except OSError as exc:
        raise HandoffError(f"cannot read: {exc.strerror}", where=where, hint=hint) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HandoffError("not valid JSON", where=where, hint=hint) from None
    return parse_catalog(data, where)


def parse_catalog(data: Any, where: str) -> Catalog:
    hint = "pass the target/catalog.json that `dbt docs generate` wrote"
    metadata = data.get("metadata") if isinstance(data, dict) else None
    version = metadata.get("dbt_schema_version") if isinstance(metadata, dict) else None
    if not isinstance(version, str) or not _SCHEMA_VERSION.fullmatch(version):
        raise HandoffError(f"metadata.dbt_schema_version is {version!r}, not a dbt catalog schema URL",
                           where=where, hint=hint)
    nodes: dict[str, tuple[Column, ...]] = {}
    for section in ("nodes", "sources"):
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            raise HandoffError(f"'{section}' is not an object", where=where, hint=hint)
        for uid, entry in entries.items():
            columns = entry.get("columns") if isinstance(entry, dict) else None
            if not isinstance(columns, dict):
                raise HandoffError(f"{section}.{uid}: 'columns' is not an object", where=where, hint=hint)
            found = []
            for key, column in columns.items():
                if not isinstance(column, dict):
                    raise HandoffError(f"{section}.{uid}: column {key!r} is not an object", where=where, hint=hint)
                index = column.get("index")
                found.append((index if isinstance(index, int) else 0, str(column.get("name") or key),
                              column["type"] if isinstance(column.get("type"), str) else None))
            nodes[str(uid)] = tuple(Column(name, data_type) for _, name, data_type in sorted(found, key=lambda c: c[0]))
    invocation = metadata.get("invocation_id") if isinstance(metadata, dict) else None
    return Catalog(where, nodes, invocation if isinstance(invocation, str) else None)
