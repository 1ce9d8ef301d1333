"""The report as JSON (``--format json``): stable keys, no timestamps or paths."""

from __future__ import annotations

import json
from typing import Any

from .render import summary_line
from .report import ModelImpact, Report

IMPACT_VERSION = 1

def to_json(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data (stable keys, no timestamps or paths)."""
    return {
        "impact_version": IMPACT_VERSION,
        "domain": report.domain,
        "project": report.project,
        "summary": summary_line(report),
        "consumers_checked": report.consumers_checked,
        "cross_domain_impact": report.cross_domain_impact,
        "breaking_changes": report.breaking_changes,
        "may_break_changes": report.uncertain_changes,
        "teams": [{"slack": t.slack, "owners": list(t.owners), "domains": list(t.domains),
                   "models": list(t.models), "indirect": list(t.indirect), "breaking": t.breaking,
                   "may_break": t.uncertain}
                  for t in report.teams()],
        "models": [_model_json(m) for m in report.models],
    }


def _model_json(model: ModelImpact) -> dict[str, Any]:
    return {
        "resource_type": model.resource_type,
        "name": model.name,
        "version": model.version,
        "unique_id": model.unique_id,
        "task_id": model.task_id,
        "known_as": model.lookup_name,
        "access": {"base": model.access_base, "head": model.access_head},
        "public": model.public,
        "breaking": model.breaking,
        "may_break": model.uncertain,
        "columns_from": {"base": model.columns_from[0], "head": model.columns_from[1]},
        "changes": [{"kind": c.kind, "breaking": c.breaking and model.exposed, "breaking_class": c.breaking,
                     "may_break": c.uncertain and model.exposed, "columns": list(c.columns),
                     "detail": c.detail} for c in model.changes],
        "consumers": None if model.consumers is None else [
            {"domain": c.domain, "dag_id": c.dag_id, "task_id": c.task_id, "model": c.model, "owner": c.owner,
             "slack": c.slack, "depth": c.depth, "direct": c.direct, "via": list(c.via),
             "reads": None if c.reads is None else {"all": c.reads.all, "columns": sorted(c.reads.names)},
             "breaks": model.breaks(c), "may_break": model.may_break(c)} for c in model.consumers],
    }


def dumps_json(report: Report) -> str:
    return json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"

