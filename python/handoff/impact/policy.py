"""When `handoff impact` fails the CI job: the ``--fail-on`` policy."""

from __future__ import annotations

from .report import Report

FAIL_ON = ("never", "breaking", "any")


def exit_code(report: Report, fail_on: str) -> int:
    """1 when --fail-on's condition holds: ``breaking`` — a breaking change reaches a consumer;
    ``any`` — any change reaches a consumer. Without a registry every public model counts as consumed."""
    if fail_on == "never":
        return 0
    if fail_on == "breaking":
        return 1 if report.breaking_changes else 0
    if fail_on == "any":
        return 1 if report.cross_domain_impact else 0
    raise ValueError(f"unknown fail_on {fail_on!r}")

