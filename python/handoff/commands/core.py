"""`handoff validate` and `handoff compile`: a domain's manifest in, violations or a plan out."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..convention import resolve
from ..errors import HandoffError
from ..files import STDOUT, folder_output, write_atomically
from ..manifest import Manifest, load_manifest
from ..plan import compile_manifest, dumps, load_plan, validate_plan
from . import args as types


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validate = subparsers.add_parser(
        "validate", help="check a manifest against the meta convention (the Python twin of handoff_validate)")
    validate.add_argument("manifest", type=types.path, help="path to target/manifest.json")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.set_defaults(func=cmd_validate)

    compile_ = subparsers.add_parser("compile",
                                     help="compile a manifest into a plan (JSON) for Airflow and the registry")
    compile_.add_argument("manifest", type=types.path, help="path to target/manifest.json")
    compile_.add_argument("-o", "--output", type=types.path,
                          help="plan file to write ('-' or default: standard output); "
                          "a folder (DIR/) means <folder>/<domain>.plan.json")
    compile_.add_argument("--catalog", type=types.path, metavar="CATALOG",
                          help="the project's catalog.json (`dbt docs generate`): public models' real columns and "
                               "types for the plan (else contracts, then compiled SQL; see docs/impact.md)")
    compile_.add_argument("--registry", type=types.registry_url, metavar="URL",
                          help="registry database URL, read only when the manifest has cross-project refs (dbt "
                               "Mesh, docs/mesh.md): the domain bound to each referenced dbt project (default: "
                               "$HANDOFF_REGISTRY_URL, else sqlite:///.handoff/registry.db)")
    compile_.set_defaults(func=cmd_compile)

    inspect = subparsers.add_parser("inspect", help="check a plan file and print its pipelines, tasks and sensors")
    inspect.add_argument("plan", type=types.path, help="a <domain>.plan.json written by `handoff compile`")
    inspect.set_defaults(func=cmd_inspect)


def cmd_validate(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest)
    resolved = resolve(manifest)
    # every node checked, those with violations included (resolved.nodes holds only the ones that passed)
    checked = {n.unique_id for n in manifest.own_nodes()}
    failing = len(checked & {v.unique_id for v in resolved.violations})
    nodes = f"{len(checked)} nodes" + (f" ({failing} with violations)" if failing else "")
    if args.format == "json":
        print(json.dumps({
            "project": manifest.project_name,
            "nodes": len(checked),
            "nodes_with_violations": failing,
            "cross_domain_sources": len(resolved.upstreams),
            "cross_project_refs": len(resolved.refs),
            "violations": [v.__dict__ for v in resolved.violations],
        }, indent=2))
    else:
        for violation in resolved.violations:
            print(violation)
        refs = f"{len(resolved.refs)} cross-project refs, " if resolved.refs else ""
        print(f"handoff: {manifest.project_name}: {nodes}, "
              f"{len(resolved.upstreams)} cross-domain sources, {refs}{len(resolved.violations)} violations")
    return 1 if resolved.violations else 0


def cmd_compile(args: argparse.Namespace) -> int:
    from ..artifact import check_packaged_manifest
    from ..columns import load_catalog

    # a manifest rewritten after `handoff package` would compile to a plan whose every task fails as stale
    check_packaged_manifest(args.manifest)
    manifest = load_manifest(args.manifest)
    projects, registry = _project_domains(manifest, args.registry)
    plan = compile_manifest(manifest, load_catalog(args.catalog) if args.catalog else None,
                            projects=projects, registry=registry)
    # What compile writes must be what every reader accepts (issue #12): validate the plan before
    # writing it, so a manifest value the plan rules refuse fails here (naming the pipeline, task
    # and key), not at publish or in Airflow.
    try:
        validate_plan(plan.to_json(), f"{args.manifest} (the plan compiled from it)")
    except HandoffError as exc:  # "re-compile it" would be circular advice here: say what to fix
        raise HandoffError(exc.problem, where=exc.where,
                           hint="fix that node's value in the dbt project (its YAML or dbt_project.yml), then "
                                "`handoff package` and compile again") from None
    text = dumps(plan)
    if args.output is None or args.output == STDOUT:
        sys.stdout.write(text)
        return 0
    target = Path(args.output)
    if target.is_dir() or args.output.endswith(("/", "\\")):
        target = folder_output(args.output, f"{plan.domain.name}.plan.json")
    write_atomically(target, text)
    tasks = sum(len(p.tasks) for p in plan.pipelines)
    print(f"handoff: wrote {target} ({len(plan.pipelines)} pipeline(s), {tasks} task(s))", file=sys.stderr)
    return 0


def _project_domains(manifest: Manifest, url: str | None) -> tuple[dict[str, str] | None, str]:
    """The domain bound to each dbt project the manifest's cross-project refs read (the registry's
    binding, handoff.registry.binding), and how to name the registry; (None, ...) without such refs."""
    from ..cross_project import find_refs

    refs = find_refs(manifest)
    if not refs:
        return None, "the registry"
    from ..registry.store import Registry

    try:
        with Registry(url, must_exist=True, read_only=True) as registry:
            found = {}
            for project in sorted({r.project for r in refs}):
                domain = registry.domain_of_project(project)
                if domain is not None:
                    found[project] = domain
            return found, registry.shown_url
    except HandoffError as exc:
        first = refs[0]
        raise HandoffError(
            f"{first.reader} ({first.file}): {first.call()} is a cross-project ref; handoff finds the domain of dbt "
            f"project '{first.project}' in the registry, and {exc.problem}", where=exc.where or manifest.path,
            hint=exc.hint) from None


def cmd_inspect(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    domain = plan.domain
    print(f"domain {domain.name} (owner {domain.owner}, {domain.slack}), "
          f"dbt project {plan.dbt.project_name}, plan v{plan.plan_version}")
    for pipeline in plan.pipelines:
        sensors = pipeline.sensors()
        print(f"  {pipeline.dag_id}  schedule {pipeline.schedule}  "
              f"{len(pipeline.tasks) - len(sensors)} dbt task(s), {len(sensors)} sensor(s)")
        for sensor in sensors:
            readers = sorted(t.task_id for t in pipeline.tasks if sensor.task_id in t.upstream)
            declared = f" (cross-project ref to {', '.join(sensor.refs)})" if sensor.refs else ""
            print(f"    {sensor.task_id}: waits on {sensor.upstream_domain}.{sensor.upstream_model}"
                  f"{declared}, read by {', '.join(readers) or 'nothing'}")
    for note in plan.notes:
        print(f"  note: {note}")
    return 0
