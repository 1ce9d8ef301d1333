"""`handoff impact`: base vs head manifest of one domain (+ the registry) -> a PR impact report."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import HandoffError
from ..impact import (
    FAIL_ON,
    Consumer,
    ModelImpact,
    Report,
    attach_consumers,
    diff_manifests,
    dumps_json,
    exit_code,
    render_markdown,
)
from ..manifest import load_manifest
from ..plan import write_atomically


def register(subparsers: argparse._SubParsersAction) -> None:
    impact = subparsers.add_parser(
        "impact", help="report what a PR changes in a domain's models and which other domains it reaches",
        description="Compare the deployed manifest (--base) with the PR's (--head), classify every changed "
                    "model, seed and snapshot (breaking or not), and list the consumers in other domains "
                    "from the registry. Markdown for a PR comment, or JSON. See docs/impact.md.")
    impact.add_argument("--base", required=True, metavar="MANIFEST", help="the deployed manifest.json")
    impact.add_argument("--head", required=True, metavar="MANIFEST", help="the PR's target/manifest.json")
    impact.add_argument("--registry", metavar="URL",
                        help="registry database URL: sqlite:///path/registry.db or postgresql://user:password@host/db "
                             "(default: $HANDOFF_REGISTRY_URL, else sqlite:///.handoff/registry.db if it exists; "
                             "with none, consumers are not looked up)")
    impact.add_argument("--format", choices=("markdown", "json"), default="markdown")
    impact.add_argument("--fail-on", choices=FAIL_ON, default="never",
                        help="exit 1 when a breaking change (breaking) or any change (any) reaches another "
                             "domain; default never")
    impact.add_argument("-o", "--output", metavar="FILE", help="write the report here (default: standard output)")
    impact.set_defaults(func=cmd_impact)


def cmd_impact(args: argparse.Namespace) -> int:
    base = load_manifest(args.base)
    head = load_manifest(args.head)
    report = diff_manifests(base, head)
    url = registry_url(args.registry)
    if url is not None:
        report = consumers_from_registry(report, url)
    text = dumps_json(report) if args.format == "json" else render_markdown(report)
    if args.output:
        write_atomically(args.output, text)
    else:
        sys.stdout.write(text)
    return exit_code(report, args.fail_on)


def registry_url(given: str | None) -> str | None:
    """--registry, else $HANDOFF_REGISTRY_URL, else the default local registry if it exists, else None
    (consumers not looked up)."""
    from ..registry.engine import DEFAULT_URL, ENV_VAR

    if given or os.environ.get(ENV_VAR):
        return given or os.environ[ENV_VAR]
    return DEFAULT_URL if Path(DEFAULT_URL.removeprefix("sqlite:///")).is_file() else None


def consumers_from_registry(report: Report, url: str) -> Report:
    """``report`` with every changed model's consumers, read from the registry at ``url``.
    The registry must exist and hold the domain; it is only read."""
    from ..registry import Registry, migrations
    from ..registry import engine as engines

    # Opening a Registry migrates its schema; an existing file that is no registry at all (a wrong
    # path) must not be turned into an empty one that reports "no consumers".
    engine = engines.open_engine(url, must_exist=True)
    shown = engines.mask(url)
    try:
        version = engines.run(engine, migrations.current_version, write=False, what="reading the schema version",
                              shown_url=shown)
    finally:
        engine.dispose()
    if version == 0:
        raise HandoffError(f"{shown} is not a handoff registry (it has no registry tables)",
                           hint="point --registry / $HANDOFF_REGISTRY_URL at the registry `handoff publish` writes to")
    with Registry(url, must_exist=True) as registry:
        mesh = registry.mesh()
        if report.domain not in mesh.domains:
            raise HandoffError(f"domain '{report.domain}' is not published in registry {shown}, so its consumers "
                               "are unknown", hint="point --registry at the registry the deployed plan was "
                               "published to (`handoff publish`)")
        published = set(mesh.model_keys(report.domain))
        waited_on = {t.upstream_model for t in mesh.tasks() if t.is_sensor and t.upstream_model
                     and t.upstream_domain == report.domain and t.domain != report.domain}

        def lookup(model: ModelImpact) -> list[Consumer]:
            # A node never published (ephemeral, or new since the last deploy) has no consumers.
            key = model.task_id if model.task_id in published else model.lookup_name
            if key not in published:
                return []
            # Who reads it through their own sensor, under any of its keys (name or task id).
            readers = {(c.dag_id, c.task_id) for c in registry.consumers(report.domain, key, transitive=False)}
            return [Consumer(domain=c.domain, dag_id=c.dag_id, task_id=c.task_id, model=c.model, owner=c.owner,
                             slack=c.slack, depth=c.depth, via=tuple(c.via), direct=(c.dag_id, c.task_id) in readers,
                             available_by=c.available_by)
                    for c in registry.consumers(report.domain, key, transitive=True)]

        return attach_consumers(report, lookup, waited_on)
