"""`handoff package`: a domain's dbt project parsed once at deploy into the artefact workers run from."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import HandoffError
from ..files import STDOUT, output_target
from . import args as types


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    package = subparsers.add_parser(
        "package", help="dbt parse a project and write the artefact its Airflow tasks run from (deploy step)")
    package.add_argument("project_dir", type=types.path, help="the domain's dbt project (after `dbt deps`)")
    package.add_argument("--profiles-dir", type=types.path, help="folder of profiles.yml (default: dbt's own default)")
    package.add_argument("--target", type=types.nonempty, help="profile target (default: the profile's own default)")
    package.add_argument("--vars", type=types.nonempty, help="dbt vars for the parse, as a JSON object")
    package.add_argument("--compile", action="store_true", dest="compile_sql",
                         help="run `dbt compile` instead of `dbt parse`: the manifest then holds every model's "
                              "compiled SQL, so the published plan carries columns and read columns for "
                              "column-level impact (connects to the target's warehouse)")
    package.add_argument("-o", "--output", type=types.path,
                         help="artefact file to write (default: <project>/target/handoff-artifact.sqlite)")
    package.set_defaults(func=cmd_package)


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def cmd_package(args: argparse.Namespace) -> int:
    from ..packaging import package_project

    dbt_vars = None
    if args.vars is not None:
        try:
            dbt_vars = json.loads(args.vars, parse_constant=_not_json)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            raise HandoffError(f"--vars is not JSON ({getattr(exc, 'msg', exc)})", where="--vars",
                               hint='pass a JSON object, e.g. {"day": "2026-01-01"}') from None
        if not isinstance(dbt_vars, dict):
            raise HandoffError("--vars must be a JSON object", where="--vars",
                               hint='pass a JSON object, e.g. {"day": "2026-01-01"}')
    if args.output is not None:
        if args.output == STDOUT:
            raise HandoffError("--output - is refused: the artefact is a binary SQLite file, not text for "
                               "standard output", where="--output", hint="give a file name ending in .sqlite")
        output_target(args.output)  # before dbt runs: a FIFO, a device or a missing folder is refused
    path, info = package_project(args.project_dir, profiles_dir=args.profiles_dir, target=args.target,
                                 dbt_vars=dbt_vars, output=args.output, compile_sql=args.compile_sql)
    size = path.stat().st_size / 1e6
    print(f"handoff: wrote {path} ({info.nodes} nodes, {size:.1f} MB; {info.target.describe()}; "
          f"manifest sha256 {info.manifest_sha256[:12]}…) — now `handoff compile` its target/manifest.json",
          file=sys.stderr)
    return 0
