"""When `handoff impact` fails the CI job: the ``--fail-on`` policy."""

from __future__ import annotations

from .report import Report

FAIL_ON = ("never", "breaking", "any")
UNKNOWN_COLUMNS = ("breaking", "non-breaking")  # what --fail-on breaking makes of "columns unknown"


def exit_code(report: Report, fail_on: str, unknown_columns: str = "breaking") -> int:
    """1 when --fail-on's condition holds: ``breaking`` — a breaking change reaches a consumer (and, with
    ``unknown_columns="breaking"``, the default, a change that may break one because columns are unknown);
    ``any`` — any change reaches a consumer. Without a registry every public model counts as consumed."""
    if unknown_columns not in UNKNOWN_COLUMNS:
        raise ValueError(f"unknown unknown_columns {unknown_columns!r}")
    if fail_on == "never":
        return 0
    if fail_on == "breaking":
        uncertain = report.uncertain_changes if unknown_columns == "breaking" else 0
        return 1 if report.breaking_changes or uncertain else 0
    if fail_on == "any":
        return 1 if report.cross_domain_impact else 0
    raise ValueError(f"unknown fail_on {fail_on!r}")

