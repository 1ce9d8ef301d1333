"""Asset registry commands: publish, check, who-depends-on, explain, snapshot,
registry upgrade/status/history/transfer."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..errors import HandoffError
from ..plan import load_plans
from ..terminal import visible
from . import args as types

REGISTRY_HELP = ("registry database URL: sqlite:///path/registry.db or postgresql://user:password@host/db "
                 "(default: $HANDOFF_REGISTRY_URL, else sqlite:///.handoff/registry.db)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    publish = subparsers.add_parser("publish", help="publish plans to the registry (each domain replaced atomically)")
    publish.add_argument("plans", nargs="+", type=types.path, metavar="PLAN",
                         help="plan files, or folders of *.plan.json")
    publish.add_argument("--registry", type=types.registry_url, metavar="URL", help=REGISTRY_HELP)
    publish.add_argument("--label", type=types.nonempty,
                         help="a commit or other source label stored with the publication")
    publish.add_argument("--force", action="store_true", help="rewrite domains whose plan did not change")
    publish.add_argument("--takeover", action="store_true",
                         help="publish a domain bound to another dbt project from this plan's project (moves the "
                              "binding; recorded in the history with --reason)")
    publish.add_argument("--reason", type=types.nonempty, help="why (required with --takeover)")
    publish.set_defaults(func=cmd_publish)

    check = subparsers.add_parser(
        "check", help="check plans against the registry before merging (rules HO300-HO308)",
        description="Check plans against the registry with each plan substituted for its domain. "
                    "Errors exit 1; warnings (HO306, HO307, HO308) exit 0 unless --strict.")
    check.add_argument("plans", nargs="+", type=types.path, metavar="PLAN",
                       help="plan files, or folders of *.plan.json")
    check.add_argument("--registry", type=types.registry_url, metavar="URL", help=REGISTRY_HELP)
    check.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(func=cmd_check)

    who = subparsers.add_parser("who-depends-on", help="consumers of a model in other domains, grouped by domain")
    who.add_argument("target", type=types.nonempty, metavar="DOMAIN.MODEL")
    who.add_argument("--direct", action="store_true", help="only the models that read it directly")
    who.add_argument("--at", type=types.nonempty, metavar="DATE", help="also the model's run of that date (YYYY-MM-DD "
                     "or an ISO date-time, UTC): which runs of other DAGs read it, and whether the data they read "
                     "still stands or a later run of that date (a backfill, a rerun) replaced it")
    who.add_argument("--registry", type=types.registry_url, metavar="URL", help=REGISTRY_HELP)
    who.add_argument("--format", choices=("text", "json"), default="text")
    who.set_defaults(func=cmd_who_depends_on)

    explain = subparsers.add_parser("explain",
                                    help="a model's domain, DAG, SLA, owners, what it waits on, who reads it")
    explain.add_argument("target", type=types.nonempty, metavar="DOMAIN.MODEL")
    explain.add_argument("--registry", type=types.registry_url, metavar="URL", help=REGISTRY_HELP)
    explain.add_argument("--at", type=types.nonempty, metavar="DATE",
                         help="also the runs of that date: YYYY-MM-DD names the runs whose logical date falls on "
                              "that date in the pipeline's timezone (several are listed: pick one with a date-time), "
                              "an ISO date-time (UTC unless an offset is given) the run at or before it; was each "
                              "sensor satisfied, by what, what is still awaited")
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.set_defaults(func=cmd_explain)

    snapshot = subparsers.add_parser("snapshot", help="export the registry snapshot the Airflow DAG factory reads")
    snapshot.add_argument("--output", "-o", required=True, type=types.path, metavar="PATH",
                          help="file to write, a folder (then FOLDER/registry_snapshot.json), or '-' for "
                               "standard output")
    snapshot.add_argument("--registry", type=types.registry_url, metavar="URL", help=REGISTRY_HELP)
    snapshot.set_defaults(func=cmd_snapshot)

    registry = subparsers.add_parser("registry", help="registry maintenance: upgrade, status, history, transfer")
    actions = registry.add_subparsers(dest="action", metavar="ACTION", parser_class=type(registry))
    actions.required = True
    upgrade = actions.add_parser("upgrade", help="apply pending schema migrations (idempotent)")
    upgrade.add_argument("--registry", type=types.registry_url, metavar="URL", help=REGISTRY_HELP)
    upgrade.set_defaults(func=cmd_upgrade)
    status = actions.add_parser("status", help="schema version, domains and latest publications")
    status.add_argument("--registry", type=types.registry_url, metavar="URL", help=REGISTRY_HELP)
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.set_defaults(func=cmd_status)
    transfer = actions.add_parser(
        "transfer", help="bind a domain to another dbt project (logged with the reason; docs/registry.md)",
        description="Move a published domain to another dbt project, explicitly: after this, only that project "
                    "may publish the domain. The dbt project is taken from the domain holding it, if any. "
                    "Recorded in the history (`handoff registry history`).")
    transfer.add_argument("domain", type=types.nonempty, metavar="DOMAIN")
    transfer.add_argument("--to-project", required=True, type=types.nonempty, metavar="DBT_PROJECT")
    transfer.add_argument("--reason", required=True, type=types.nonempty, help="why the domain moves")
    transfer.add_argument("--registry", type=types.registry_url, metavar="URL", help=REGISTRY_HELP)
    transfer.set_defaults(func=cmd_transfer)
    history = actions.add_parser("history", help="publications and binding transfers, latest first")
    history.add_argument("domain", nargs="?", type=types.nonempty, metavar="DOMAIN")
    history.add_argument("--limit", type=_limit, default=20, help="how many of each (1-1000, default 20)")
    history.add_argument("--registry", type=types.registry_url, metavar="URL", help=REGISTRY_HELP)
    history.add_argument("--format", choices=("text", "json"), default="text")
    history.set_defaults(func=cmd_history)


def _open(url: str | None, *, must_exist: bool, read_only: bool = False) -> Any:
    from ..registry.store import Registry

    return Registry(url, must_exist=must_exist, read_only=read_only)


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 1000")
    return value


def _target(text: str) -> tuple[str, str]:
    domain, dot, model = text.partition(".")
    if not dot or not domain or not model:
        raise HandoffError(f"'{text}' is not DOMAIN.MODEL", hint="e.g. marketplace.mrt_orders")
    return domain, model


def cmd_publish(args: argparse.Namespace) -> int:
    from ..registry.publishing import plan_files

    if args.takeover and not args.reason:
        raise HandoffError("--takeover needs --reason", where="handoff publish",
                           hint="say why the domain changes dbt project; it is kept in the history")
    if args.reason and not args.takeover:
        raise HandoffError("--reason is only read with --takeover", where="handoff publish",
                           hint="add --takeover, or drop --reason")
    files = plan_files(args.plans)
    plans = load_plans(files)  # every plan is valid before the registry is touched
    started = time.perf_counter()
    with _open(args.registry, must_exist=False) as registry:
        results = registry.publish(plans, label=args.label, force=args.force, origins=[str(f) for f in files],
                                   validate=False, takeover_reason=args.reason if args.takeover else None)
        retries = registry.stats.retries
        shown = registry.shown_url
    elapsed = time.perf_counter() - started
    for r in results:
        state = "published" if r.changed else "unchanged"
        print(f"handoff: {state} {r.domain}: {r.pipelines} pipeline(s), {r.tasks} task(s), {r.sensors} sensor(s), "
              f"plan {r.plan_sha256[:12]}" + ("" if r.previous_sha256 else " (new domain)"))
    note = f", {retries} transient error(s) retried" if retries else ""
    print(f"handoff: {len(results)} domain(s) to {shown} in {elapsed:.2f}s{note}", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from ..registry.binding import findings as binding_findings
    from ..registry.checks import ERROR, WARNING, check_mesh, failing
    from ..registry.mesh import domain_from_plan
    from ..registry.publishing import plan_files

    files = plan_files(args.plans)
    plans = load_plans(files)
    candidates = [domain_from_plan(plan, str(path)) for plan, path in zip(plans, files, strict=True)]
    names = [d.name for d in candidates]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise HandoffError(f"domain(s) {', '.join(duplicates)} in several plans", hint="check one plan per domain")
    with _open(args.registry, must_exist=True, read_only=True) as registry:
        published = registry.mesh()
        shown = registry.shown_url
    mesh = published.with_domains(candidates)
    try:
        findings = [*binding_findings(published, candidates), *check_mesh(mesh, focus=names)]
    except HandoffError as exc:
        raise _named(exc, mesh, files) from None
    errors = [f for f in findings if f.severity == ERROR]
    warnings = [f for f in findings if f.severity == WARNING and f.accepted is None]
    accepted = [f for f in findings if f.accepted is not None]
    failed = bool(failing(findings, strict=args.strict))
    if args.format == "json":
        print(json.dumps({"ok": not failed, "domains": names, "registry": shown,
                          "findings": [f.as_dict() for f in findings]}, indent=2))
        return 1 if failed else 0
    for finding in findings:
        print(finding.line())
    sensors = sum(1 for d in candidates for t in d.tasks() if t.is_sensor)
    scope = (f"{', '.join(names)} ({sum(d.task_count for d in candidates)} tasks, {sensors} sensors) against "
             f"{len(published.domains)} published domain(s) in {shown}")
    if failed:
        print(f"handoff check: FAILED — {len(errors)} error(s), {len(warnings)} warning(s)"
              + (f", {len(accepted)} accepted" if accepted else "") + f": {scope}")
        return 1
    extra = f" with {len(warnings)} warning(s)" if warnings else ""
    extra += f"{' and' if warnings else ' with'} {len(accepted)} accepted warning(s)" if accepted else ""
    print(f"handoff check: OK{extra} — {scope}")
    return 0


def _named(exc: HandoffError, mesh: Any, files: list[Any]) -> HandoffError:
    """A check that failed on a schedule or timezone: name the domain, plan and pipeline it belongs to."""
    from ..ticks import to_cron, zone

    for domain in mesh.domains.values():
        for pipeline in domain.pipelines:
            for key, check in (("schedule", lambda p: to_cron(p.schedule)), ("timezone", lambda p: zone(p.timezone))):
                try:
                    check(pipeline)
                except HandoffError as bad:
                    origin = domain.origin if domain.origin != "registry" else f"the registry's {domain.name}"
                    return HandoffError(f"pipeline {pipeline.name} ({pipeline.dag_id}): {bad.problem}", where=origin,
                                        hint=f"fix handoff_pipeline.{key} in {domain.name}'s project and re-publish")
    return HandoffError(f"checking {', '.join(str(f) for f in files)}: {exc.problem}", where=exc.where, hint=exc.hint)


def cmd_who_depends_on(args: argparse.Namespace) -> int:
    from ..registry.render import consumers_text

    domain, model = _target(args.target)
    at = _moment(args.at) if args.at is not None else None
    readers = None
    with _open(args.registry, must_exist=True, read_only=True) as registry:
        found = registry.consumers(domain, model, transitive=not args.direct)
        mesh_teams = {}
        if found:
            mesh_teams = registry.teams({c.domain for c in found})
        if at is not None:
            readers = _reader_runs(registry, domain, model, at)
    if args.format == "json":
        groups: dict[str, Any] = {}
        for c in found:
            owner, slack = mesh_teams.get(c.domain, ("", ""))
            groups.setdefault(c.domain, {"domain": c.domain, "owner": owner, "slack": slack, "consumers": []})
            groups[c.domain]["consumers"].append(c.as_dict())
        document = {"model": f"{domain}.{model}", "transitive": not args.direct, "count": len(found),
                    "domains": [groups[k] for k in sorted(groups)]}
        if readers is not None:
            document["readers"] = readers
        print(json.dumps(document, indent=2))
    else:
        sys.stdout.write(consumers_text(f"{domain}.{model}", found, mesh_teams, transitive=not args.direct))
        if readers is not None:
            from ..reader_runs import reader_runs_text

            sys.stdout.write(reader_runs_text(readers))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from ..registry.render import explain_text

    domain, model = _target(args.target)
    from .. import run_dates

    asked = run_dates.parse(args.at) if args.at is not None else None
    with _open(args.registry, must_exist=True, read_only=True) as registry:
        info = registry.explain(domain, model)
        if asked is not None:
            from ..explain_run import run_state
            from ..recovery import api_if_configured

            pipeline = info["pipeline"]
            runs = run_dates.runs_asked(asked, pipeline["schedule"], pipeline.get("timezone"))
            if len(runs) == 1:
                info["run"] = run_state(registry, info, runs[0], api_if_configured())
                info["readers"] = _reader_runs(registry, domain, model, runs[0])
            else:
                info["runs_on_date"] = run_dates.choices(asked, pipeline["schedule"], pipeline.get("timezone"),
                                                         pipeline["dag_id"], runs)
    if args.format == "json":
        print(json.dumps(info, indent=2, sort_keys=True, default=str))
    else:
        run = info.pop("run", None)
        readers = info.pop("readers", None)
        choices = info.pop("runs_on_date", None)
        sys.stdout.write(visible(explain_text(info), newlines=True))
        if run is not None:
            from ..explain_run import run_state_text

            sys.stdout.write(run_state_text(run))
        if readers is not None:
            from ..reader_runs import reader_runs_text

            sys.stdout.write(reader_runs_text(readers))
        if choices is not None:
            sys.stdout.write(run_dates.choices_text(choices))
    return 0


def _reader_runs(registry: Any, domain: str, model: str, at: Any) -> dict[str, Any]:
    """Which runs of other DAGs read the model's run at ``at`` (handoff.reader_runs: re-runs of past dates)."""
    from ..reader_runs import reader_runs

    return reader_runs(registry, domain, model, at)


def _moment(text: str) -> Any:
    """who-depends-on --at: one instant (a date-time, or a date's last moment in UTC; ``run_dates``)."""
    from .. import run_dates

    return run_dates.parse(text).end()


def cmd_snapshot(args: argparse.Namespace) -> int:
    from ..registry.snapshot import snapshot_text, write_snapshot

    with _open(args.registry, must_exist=True, read_only=True) as registry:
        snapshot = registry.snapshot()
        shown = registry.shown_url
    from ..files import STDOUT

    if args.output == STDOUT:
        sys.stdout.write(snapshot_text(snapshot, "the registry snapshot"))
        return 0
    target = write_snapshot(snapshot, args.output)
    print(f"handoff: wrote {target} ({len(snapshot.domains)} domain(s), {len(snapshot.models)} model(s)) "
          f"from {shown}", file=sys.stderr)
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    with _open(args.registry, must_exist=True) as registry:
        row = registry.transfer(args.domain, args.to_project, reason=args.reason)
        shown = registry.shown_url
    print(f"handoff: domain {row['domain']} is now bound to dbt project '{row['to_project']}' "
          f"(was {repr(row['from_project']) if row['from_project'] else 'unbound'}); recorded in {shown} "
          f"by {row['actor']}: {row['reason']}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with _open(args.registry, must_exist=True, read_only=True) as registry:
        published = registry.history(args.domain, limit=args.limit)
        moved = registry.transfers(args.domain, limit=args.limit)
    events = [{"at": p["published_at"], "event": "publish" if p["changed"] else "publish (unchanged)",
               "domain": p["domain"], "detail": f"plan {p['plan_sha256'][:12]}, {p['task_count']} task(s)"
               + (f", label {p['label']}" if p["label"] else "")} for p in published]
    events += [{"at": t["transferred_at"], "event": t["how"], "domain": t["domain"],
                "detail": f"{t['from_project'] or '(unbound)'} -> {t['to_project']} by {t['actor']}: {t['reason']}"}
               for t in moved]
    events.sort(key=lambda e: e["at"] or "", reverse=True)
    if args.format == "json":
        print(json.dumps({"publications": published, "transfers": moved}, indent=2, default=str))
        return 0
    from ..registry.render import table

    if not events:
        print("no publications")
        return 0
    print("\n".join(table(["at", "event", "domain", "detail"],
                          [[e["at"], e["event"], e["domain"], e["detail"]] for e in events])))
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    from ..registry import engine as engines
    from ..registry import migrations

    url = engines.resolve_url(args.registry)
    shown = engines.mask(url)
    engine = engines.open_engine(url)
    try:
        applied = migrations.upgrade(engine, shown)
    finally:
        engine.dispose()
    if applied:
        print(f"handoff: registry {shown} upgraded to schema version {applied[-1]} "
              f"(applied {', '.join(map(str, applied))})")
    else:
        print(f"handoff: registry {shown} is at schema version {migrations.LATEST}; nothing to do")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _open(args.registry, must_exist=True, read_only=True) as registry:
        version = registry.schema_version()
        mesh = registry.mesh()
        latest = registry.history(limit=10)
        shown = registry.shown_url
    domains = [{"name": d.name, "dbt_project": d.bound_project, "owner": d.owner, "slack": d.slack,
                "pipelines": len(d.pipelines),
                "tasks": d.task_count, "plan_sha256": d.plan_sha256, "label": d.label,
                "published_at": d.published_at.isoformat() if d.published_at else None}
               for d in mesh.domains.values()]
    if args.format == "json":
        print(json.dumps({"registry": shown, "schema_version": version, "domains": domains,
                          "latest_publications": latest}, indent=2, default=str))
        return 0
    from ..registry.render import table

    print(f"registry {shown}: schema version {version}, {len(domains)} domain(s), "
          f"{sum(d['tasks'] for d in domains)} task(s)")
    if domains:
        print("\n".join(table(["domain", "dbt project", "owner", "slack", "pipelines", "tasks", "plan", "label",
                               "published_at"],
                              [[d["name"], d["dbt_project"] or "(unbound)", d["owner"], d["slack"], d["pipelines"],
                                d["tasks"], d["plan_sha256"][:12], d["label"], d["published_at"]] for d in domains])))
    return 0
