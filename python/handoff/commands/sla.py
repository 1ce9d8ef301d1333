"""`handoff sla [DOMAIN[.MODEL]] [--days 30] [--format text|json]`: the SLO history — when each
model's data really arrived against its promise, per model, per domain and per cross-domain edge
(docs/notifications.md, "SLO history"). Reads the registry only (read-only); the arithmetic is
``handoff.slo``."""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import HandoffError
from ..sla_runs import models_of
from ..slo import (
    EdgeSlo,
    ModelSlo,
    SloReport,
    domain_slos,
    edge_slo,
    model_slo,
    render,
)
from . import args as types
from .registry import REGISTRY_HELP

_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_MODEL = re.compile(r"[A-Za-z0-9_]{1,250}")
MAX_DAYS = 400


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sla = subparsers.add_parser(
        "sla", help="SLO history: when each model's data arrived against its SLA (on-time rate, median, p95)",
        description="Per model: its promise (available_by / available_within), the runs due in the window, "
                    "the on-time rate, median and p95 completion after the run's scheduled time, the worst "
                    "miss, and a promise the history supports; per domain and per cross-domain edge a "
                    "summary. Reads the completions the callbacks recorded (docs/notifications.md).")
    sla.add_argument("target", nargs="?", type=types.nonempty, metavar="DOMAIN[.MODEL]",
                     help="one domain, or one model (default: every domain)")
    sla.add_argument("--days", type=_days, default=30, help=f"how many days back (1-{MAX_DAYS}, default 30)")
    sla.add_argument("--registry", type=types.registry_url, metavar="URL", help=REGISTRY_HELP)
    sla.add_argument("--format", choices=("text", "json"), default="text")
    sla.set_defaults(func=cmd_sla)


def _days(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,4}", text):
        raise argparse.ArgumentTypeError(f"--days {text[:40]!r} is not a whole number of days")
    value = int(text)
    if not 1 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"--days {value} is not between 1 and {MAX_DAYS}")
    return value


def parse_target(text: str | None) -> tuple[str | None, str | None]:
    """'finance' -> ('finance', None); 'finance.mrt_revenue' -> both; None -> (None, None)."""
    if text is None:
        return None, None
    domain, dot, model = text.partition(".")
    if not _NAME.fullmatch(domain) or (dot and not _MODEL.fullmatch(model)):
        raise HandoffError(f"'{text[:80]}' is not DOMAIN or DOMAIN.MODEL",
                           hint="e.g. `handoff sla finance` or `handoff sla finance.mrt_revenue`")
    return domain, (model if dot else None)


def history(registry: Any, *, domain: str | None, model: str | None, days: int,
            now: datetime | None = None) -> SloReport:
    """The SLO history of the window [now - days, now] from ``registry`` (a ``Registry``)."""
    until = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    since = until - timedelta(days=days)
    rows = registry.history_models(domain=domain, model=model, since=since)
    models = models_of(rows)
    done = registry.first_successes({m.dag_id for m in models}, since - timedelta(days=1), until)
    by_task: dict[tuple[str, str], dict[datetime, datetime]] = {}
    for (dag_id, task_id, logical_date), ended in done.items():
        by_task.setdefault((dag_id, task_id), {})[logical_date] = ended
    report = SloReport(since=since, until=until)
    slos: list[ModelSlo] = []
    for m in models:
        slos.append(model_slo(m, by_task.get((m.dag_id, m.task_id), {}), since, until))
    report.models = slos
    report.domains = domain_slos(slos)
    keyed = {(m.dag_id, m.task_id): m for m in models}
    edges: list[EdgeSlo] = []
    for e in registry.reading_dags(keyed):
        upstream = keyed[(e["upstream_dag_id"], e["upstream_task_id"])]
        edges.append(edge_slo(upstream, by_task.get((upstream.dag_id, upstream.task_id), {}), e["domain"],
                              e["dag_id"], e["schedule"], e["timezone"], since, until))
    report.edges = sorted(edges, key=lambda e: (e.upstream, e.consumer_dag_id))
    return report


def cmd_sla(args: argparse.Namespace) -> int:
    from ..registry import Registry

    domain, model = parse_target(args.target)
    with Registry(args.registry, must_exist=True, read_only=True) as registry:
        report = history(registry, domain=domain, model=model, days=args.days)
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(render(report))
    return 0
