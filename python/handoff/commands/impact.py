"""`handoff impact`: base vs head manifest of one domain (+ the registry) -> a PR impact report."""

from __future__ import annotations

import argparse
import sys

from ..errors import HandoffError
from ..impact import FAIL_ON, ConsumerLookup, attach_consumers, diff_manifests, dumps_json, exit_code, render_markdown
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
                        help="registry database URL (sqlite:///path or postgresql://...); "
                             "without it consumers are not looked up")
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
    if args.registry:
        report = attach_consumers(report, registry_lookup(args.registry, report.domain))
    text = dumps_json(report) if args.format == "json" else render_markdown(report)
    if args.output:
        write_atomically(args.output, text)
    else:
        sys.stdout.write(text)
    return exit_code(report, args.fail_on)


def registry_lookup(url: str, domain: str) -> ConsumerLookup:
    """Consumers of one changed model, read from the registry at ``url``."""
    raise HandoffError("the registry is not available in this build", where=url)
