"""`handoff map`: the domain map from the registry — one self-contained HTML file, Mermaid, JSON or text."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

from ..errors import HandoffError
from . import args as types
from .registry import REGISTRY_HELP


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser(
        "map", help="the domain map: who reads which models from whom (HTML file, Mermaid, JSON, text)",
        description="Draw the published mesh at domain level: domains (owner, Slack, models) and the models "
                    "each domain reads from another. --html writes one self-contained file that opens with no "
                    "network; --format mermaid prints a flowchart for a PR comment or docs. See docs/ui.md.")
    cmd.add_argument("--html", type=types.path, metavar="FILE", help="write the map as one self-contained HTML file")
    cmd.add_argument("--format", choices=("text", "mermaid", "json"), default=None,
                     help="print the map (default text); with --html it needs -o FILE (or -o - for stdout)")
    cmd.add_argument("--domain", action="append", default=[], type=types.nonempty, metavar="DOMAIN",
                     help="only this domain and its neighbours (repeatable)")
    cmd.add_argument("--hops", type=int, default=None, metavar="N",
                     help="with --domain: how many hand-overs upstream and downstream to include (default 1)")
    cmd.add_argument("-o", "--output", type=types.path, metavar="FILE",
                     help="write the --format output here instead of stdout ('-': stdout)")
    cmd.add_argument("--registry", type=types.registry_url, metavar="URL", help=REGISTRY_HELP)
    cmd.set_defaults(func=cmd_map)


def cmd_map(args: argparse.Namespace) -> int:
    from ..files import STDOUT, output_target
    from ..plan import write_atomically
    from ..registry.store import Registry
    from ..ui.mapview import mermaid, neighbourhood, static_html

    _refuse_conflicts(args)
    for output in (args.html, args.output if args.output != STDOUT else None):
        if output:
            output_target(output)  # a FIFO, a device or a missing folder: refused before any work
    with Registry(args.registry, must_exist=True, read_only=True) as registry:
        found = registry.domain_map()
        shown = registry.shown_url
    known = {d["name"] for d in found["domains"]}
    unknown = [d for d in args.domain if d not in known]
    if unknown:
        import difflib

        near = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        raise HandoffError(f"no domain '{unknown[0]}' is published in {shown}",
                           hint=f"did you mean '{near[0]}'?" if near else "see `handoff registry status`")
    view = neighbourhood(found, args.domain, args.hops if args.hops is not None else 1) if args.domain else found
    if args.html:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        write_atomically(args.html, static_html(view, generated=f"from {shown} at {stamp}",
                                                focus=args.domain[0] if args.domain else None))
        print(f"handoff: wrote {args.html} ({len(view['domains'])} domain(s), {len(view['edges'])} hand-over(s))",
              file=sys.stderr)
    if args.format or not args.html:
        fmt = args.format or "text"
        text = (mermaid(view, highlight=args.domain) if fmt == "mermaid"
                else json.dumps(view, indent=2, sort_keys=True) + "\n" if fmt == "json" else map_text(view))
        if args.output and args.output != STDOUT:
            write_atomically(args.output, text)
        else:
            sys.stdout.write(text)
    return 0


def _refuse_conflicts(args: argparse.Namespace) -> None:
    """Options that contradict each other or mean nothing are one line (exit 2), before any work."""
    import os

    from ..files import STDOUT

    if args.hops is not None and not args.domain:
        raise HandoffError(f"--hops {args.hops} means nothing without --domain",
                           hint="add --domain D (the hops are counted from it), or drop --hops")
    if args.hops is not None and not 0 <= args.hops <= 10:
        raise HandoffError(f"--hops {args.hops} is out of range", hint="use 0 to 10")
    if args.output and not args.format:
        raise HandoffError("--output needs --format", hint="e.g. --format mermaid -o map.mmd; for HTML use --html FILE")
    if args.html and args.format and not args.output:
        raise HandoffError(f"--format {args.format} with --html {args.html}: --html prints nothing, so the "
                           f"{args.format} output needs a place",
                           hint="add -o FILE (or -o - for stdout), or drop --format")
    if (args.html and args.output and args.output != STDOUT
            and os.path.realpath(args.html) == os.path.realpath(args.output)):
        raise HandoffError(f"--html and --output name the same file {args.html}: one would overwrite the other",
                           hint="give two different files")


def map_text(view: dict[str, Any]) -> str:
    """The map as two tables: domains, then hand-overs."""
    from ..registry.render import table

    out = [f"{len(view['domains'])} domain(s), {len(view['edges'])} hand-over(s) between domains", ""]
    out += table(["domain", "owner", "slack", "models", "public", "pipelines"],
                 [[d["name"], d["owner"], d["slack"], d["models"], d["public"],
                   ", ".join(p["dag_id"] for p in d["pipelines"])] for d in view["domains"]])
    if view["edges"]:
        out.append("")
        out += table(["upstream", "downstream", "models read", "sensors"],
                     [[e["upstream"], e["downstream"], ", ".join(e["models"]), e["sensors"]] for e in view["edges"]])
    return "\n".join(out) + "\n"
