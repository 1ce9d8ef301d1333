"""`handoff impact`: base vs head manifest of one domain (+ the registry) -> a PR impact report."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from ..columns import ColumnList, Demand, demand_from_json, load_catalog
from ..columns.catalog import check_catalog_of
from ..errors import HandoffError
from ..files import STDOUT, output_target, write_atomically
from ..impact import (
    FAIL_ON,
    Consumer,
    ModelImpact,
    Report,
    attach_consumers,
    check_comparable,
    diff_manifests,
    dumps_json,
    exit_code,
    render_markdown,
)
from ..impact.policy import UNKNOWN_COLUMNS
from ..manifest import load_manifest
from . import args as types

if TYPE_CHECKING:
    from ..registry import Registry
    from ..registry.mesh import Mesh


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    impact = subparsers.add_parser(
        "impact", help="report what a PR changes in a domain's models and which other domains it reaches",
        description="Compare the deployed manifest (--base) with the PR's (--head), classify every changed "
                    "model, seed and snapshot (breaking or not), and list the consumers in other domains "
                    "from the registry. Markdown for a PR comment, or JSON. See docs/impact.md.")
    impact.add_argument("--base", required=True, type=types.path, metavar="MANIFEST", help="the deployed manifest.json")
    impact.add_argument("--head", required=True, type=types.path, metavar="MANIFEST",
                        help="the PR's target/manifest.json")
    impact.add_argument("--registry", type=types.registry_url, metavar="URL",
                        help="registry database URL: sqlite:///path/registry.db or postgresql://user:password@host/db "
                             "(default: $HANDOFF_REGISTRY_URL, else sqlite:///.handoff/registry.db if it exists; "
                             "with none, consumers are not looked up)")
    impact.add_argument("--format", choices=("markdown", "json"), default="markdown")
    impact.add_argument("--fail-on", choices=FAIL_ON, default="never",
                        help="exit 1 when a breaking change (breaking) or any change (any) reaches another "
                             "domain; default never")
    impact.add_argument("--unknown-columns", choices=UNKNOWN_COLUMNS, default="breaking",
                        help="what --fail-on breaking makes of a change that may break a consumer because columns "
                             "are unknown (default: breaking)")
    impact.add_argument("--base-catalog", type=types.path, metavar="CATALOG",
                        help="catalog.json of the deployed project (`dbt docs generate`): real columns and types")
    impact.add_argument("--head-catalog", type=types.path, metavar="CATALOG",
                        help="catalog.json of the PR's project (`dbt docs generate` after building it in CI)")
    impact.add_argument("-o", "--output", type=types.path, metavar="FILE",
                        help="write the report here ('-' or default: standard output)")
    impact.add_argument("--map", action="store_true",
                        help="markdown: end with a Mermaid map of the domains the change reaches (needs the registry)")
    impact.set_defaults(func=cmd_impact)


def cmd_impact(args: argparse.Namespace) -> int:
    if args.output is not None and args.output != STDOUT:
        output_target(args.output)  # a FIFO, a device or a missing folder: refused before any work
    base = load_manifest(args.base)
    head = load_manifest(args.head)
    base_catalog = load_catalog(args.base_catalog) if args.base_catalog else None
    head_catalog = load_catalog(args.head_catalog) if args.head_catalog else None
    if base_catalog is not None:
        check_catalog_of(base_catalog, base.path, base.invocation_id, "--base-catalog")
    if head_catalog is not None:
        check_catalog_of(head_catalog, head.path, head.invocation_id, "--head-catalog")
    domain = check_comparable(base, head)
    url = registry_url(args.registry)
    if url is None:
        report = diff_manifests(base, head, base_catalog=base_catalog, head_catalog=head_catalog)
    else:
        with open_registry(url, domain) as registry:
            mesh = registry.mesh()
            report = diff_manifests(base, head, base_catalog=base_catalog, head_catalog=head_catalog,
                                    deployed=deployed_columns(mesh, domain))
            report = consumers_from_registry(report, registry, mesh)
    text = dumps_json(report) if args.format == "json" else render_markdown(report)
    if args.map and args.format == "markdown":
        text += affected_map_markdown(report, url)
    if args.output is not None and args.output != STDOUT:
        write_atomically(args.output, text)
    else:
        sys.stdout.write(text)
    return exit_code(report, args.fail_on, args.unknown_columns)


def deployed_columns(mesh: Mesh, domain: str) -> dict[str, ColumnList]:
    """Task id -> the column list the registry holds for that model (source marked ``registry:``)."""
    found = {}
    for task in mesh.domains[domain].tasks():
        if task.columns_json:
            found[task.task_id] = ColumnList.from_json(json.loads(task.columns_json), prefix="registry:")
    return found


def registry_url(given: str | None) -> str | None:
    """--registry, else $HANDOFF_REGISTRY_URL, else the default local registry if it exists, else None
    (consumers not looked up)."""
    from ..registry.engine import DEFAULT_URL, ENV_VAR

    if given or os.environ.get(ENV_VAR):
        return given or os.environ[ENV_VAR]
    return DEFAULT_URL if Path(DEFAULT_URL.removeprefix("sqlite:///")).is_file() else None


def open_registry(url: str, domain: str) -> Registry:
    """The registry at ``url``, which must exist, be a handoff registry and hold ``domain``; only read."""
    from ..registry import Registry, migrations
    from ..registry import engine as engines

    # Opening a Registry migrates its schema; an existing file that is no registry at all (a wrong
    # path) must not be turned into an empty one that reports "no consumers".
    engine = engines.open_engine(url, must_exist=True, read_only=True)
    shown = engines.mask(url)
    try:
        version = engines.run(engine, migrations.current_version, write=False, what="reading the schema version",
                              shown_url=shown)
    finally:
        engine.dispose()
    if version == 0:
        raise HandoffError(f"{shown} is not a handoff registry (it has no registry tables)",
                           hint="point --registry / $HANDOFF_REGISTRY_URL at the registry `handoff publish` writes to")
    registry = Registry(url, must_exist=True, read_only=True)
    try:
        if domain not in registry.domain_names():
            raise HandoffError(f"domain '{domain}' is not published in registry {shown}, so its consumers "
                               "are unknown", hint="point --registry at the registry the deployed plan was "
                               "published to (`handoff publish`)")
    except BaseException:
        registry.close()
        raise
    return registry


def consumers_from_registry(report: Report, registry: Registry, mesh: Mesh) -> Report:
    """``report`` with every changed model's consumers, and what each reads of it, from the registry."""
    published = set(mesh.model_keys(report.domain))
    waited_on = {t.upstream_model for t in mesh.tasks() if t.is_sensor and t.upstream_model
                 and t.upstream_domain == report.domain and t.domain != report.domain}

    def lookup(model: ModelImpact) -> list[Consumer]:
        # A node never published (ephemeral, or new since the last deploy) has no consumers.
        key = model.task_id if model.task_id in published else model.lookup_name
        if key not in published:
            return []
        # Who reads it through their own sensor, under any of its keys (name or task id), and what.
        direct = {(c.dag_id, c.task_id): _reads(mesh, c.dag_id, c.sensor_task_id, c.task_id)
                  for c in registry.consumers(report.domain, key, transitive=False)}
        return [Consumer(domain=c.domain, dag_id=c.dag_id, task_id=c.task_id, model=c.model, owner=c.owner,
                         slack=c.slack, depth=c.depth, via=tuple(c.via), direct=(c.dag_id, c.task_id) in direct,
                         available_by=c.available_by, reads=direct.get((c.dag_id, c.task_id)),
                         readers=_readers_above(mesh, c.dag_id, c.task_id, {t for d, t in direct if d == c.dag_id}))
                for c in registry.consumers(report.domain, key, transitive=True)]

    return attach_consumers(report, lookup, waited_on)


def _reads(mesh: Mesh, dag_id: str, sensor_task_id: str, task_id: str) -> Demand | None:
    """What task ``task_id`` reads of the model its sensor waits on (published with its plan), or None."""
    sensor = mesh.task(dag_id, sensor_task_id)
    if sensor is None or not sensor.reads_json:
        return None
    return demand_from_json(json.loads(sensor.reads_json).get(task_id))


def _readers_above(mesh: Mesh, dag_id: str, task_id: str, readers: set[str]) -> tuple[str, ...]:
    """The direct readers among a task's ancestors in its DAG (what a downstream consumer depends on)."""
    if task_id in readers:
        return ()
    seen, queue, found = {task_id}, deque([task_id]), set()
    while queue:
        task = mesh.task(dag_id, queue.popleft())
        for upstream in task.upstream if task is not None else ():
            if upstream in readers:
                found.add(upstream)
            if upstream not in seen:
                seen.add(upstream)
                queue.append(upstream)
    return tuple(sorted(found))


def affected_map_markdown(report: Report, url: str | None) -> str:
    """The "domains reached" Mermaid sub-map (handoff.ui.mapview.affected_submap) as a markdown section."""
    if url is None:
        raise HandoffError("--map needs the registry", hint="pass --registry URL or set $HANDOFF_REGISTRY_URL")
    from ..registry import Registry
    from ..ui.mapview import affected_submap

    reached = {c.domain for m in report.models for c in (m.consumers or ())}
    with Registry(url, must_exist=True, read_only=True) as registry:
        chart = affected_submap(registry.domain_map(), report.domain, reached)
    if not chart:
        return ""
    return f"\n### Domains reached\n\n```mermaid\n{chart}```\n"
