"""`handoff reconcile`: the sweep that satisfies sensors whose upstream completed but whose
completion callback never reached the Airflow API (or was never called: a fix by hand), and posts
the messages a callback could not post (docs/notifications.md). JSON output lists the sensor
actions only; message counts are logged."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from datetime import datetime, timedelta, timezone

from ..airflow_api import AirflowApi
from ..errors import HandoffError
from . import args as types
from .registry import REGISTRY_HELP

_SINCE = re.compile(r"([1-9][0-9]{0,6})(m|h|d)")
MAX_SINCE = timedelta(days=400)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reconcile = subparsers.add_parser(
        "reconcile", help="satisfy downstream sensors of every upstream task that succeeded recently "
                          "(Airflow API settings: HANDOFF_AIRFLOW_API_URL, _USERNAME, _PASSWORD)")
    reconcile.add_argument("--since", default="24h", type=types.nonempty,
                           help="how far back to look: 90m, 24h, 7d (default 24h)")
    reconcile.add_argument("--registry", type=types.registry_url, metavar="URL", help=REGISTRY_HELP)
    reconcile.add_argument("--format", choices=("text", "json"), default="text")
    reconcile.set_defaults(func=cmd_reconcile)


def parse_since(text: str) -> timedelta:
    match = _SINCE.fullmatch(text)
    if not match:
        raise HandoffError(f"--since {text!r} is not a duration", hint="write e.g. 90m, 24h or 7d")
    amount, unit = int(match.group(1)), match.group(2)
    window = (timedelta(minutes=amount) if unit == "m" else timedelta(hours=amount) if unit == "h"
              else timedelta(days=amount))
    if window > MAX_SINCE:
        raise HandoffError(f"--since {text!r} is longer than {MAX_SINCE.days} days",
                           hint="look back at most 400d; older runs are history, not recovery")
    return window


def cmd_reconcile(args: argparse.Namespace) -> int:
    from ..notify import sla_watch
    from ..notify.delivery import Delivery
    from ..notify.events import sweep as notify_sweep
    from ..recovery import sweep
    from ..registry import Registry

    window = parse_since(args.since)
    api = AirflowApi.from_env()
    since = datetime.now(timezone.utc) - window
    # stdout carries this command's document. Posting imports Airflow, whose logging writes to the
    # sys.stdout of the moment (its root handler, and every structlog logger made later): while the
    # sweeps run, that is stderr.
    with contextlib.redirect_stdout(sys.stderr), Registry(args.registry, must_exist=True) as registry:
        actions = sweep(registry, api, since=since)
        delivery = Delivery.from_env()
        messages = notify_sweep(registry, api, delivery, since=since)
        slas = sla_watch.check(registry, api, delivery, lookback=window)
        messages.merge(slas.messages)
    satisfied = [a for a in actions if a.action == "satisfied"]
    for error in messages.errors:  # stdout stays the document (JSON: the list of actions)
        print(f"handoff reconcile: a message was not posted: {error}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps([a.as_dict() for a in actions], indent=2))
        return 0
    for action in actions:
        print(f"{action.action:<18} {action.dag_id}.{action.sensor_task_id} in {action.run_id or '-'} "
              f"(was {action.previous_state}; upstream {action.upstream})"
              + (f": {action.detail}" if action.action == "left" else ""))
    print(f"handoff reconcile: {len(satisfied)} sensor(s) satisfied, "
          f"{len(actions) - len(satisfied)} already satisfied or left alone, over the last {args.since}")
    print(f"handoff reconcile: messages: {messages.added} added, {messages.sent} sent, {messages.dry_run} dry run, "
          f"{messages.muted} muted, {messages.failed} failed")
    return 0
