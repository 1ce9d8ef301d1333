"""Plan documents in tests: handoff passes plans around typed (handoff.plan_model.Plan); a test that
edits a plan (a bad value, a test-sized timeout, a renamed domain) edits its JSON document and
writes it with ``plan_text`` (the bytes `handoff compile` writes for that document)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from handoff.plan_model import Plan


def plan_text(plan: Plan | Mapping[str, Any]) -> str:
    """Canonical plan text (sorted keys, two-space indent, UTF-8, trailing newline) of a typed plan
    or of a document a test built or edited (which may be invalid on purpose)."""
    document = plan.to_json() if isinstance(plan, Plan) else plan
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def editable(plan: Plan | Mapping[str, Any]) -> dict[str, Any]:
    """A fresh JSON copy of a plan, to edit."""
    result: dict[str, Any] = json.loads(plan_text(plan))
    return result
