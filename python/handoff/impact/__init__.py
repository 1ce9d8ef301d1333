"""The PR impact report: what changed between two manifests of one domain, and who it reaches.

One concept per module (docs/impact.md documents the behaviour):

- ``classes``: every change class and whether it breaks a consumer (``CLASSES``);
- ``report``: the report's frozen data (``Change``, ``Consumer``, ``ModelImpact``, ``Team``, ``Report``);
- ``diff``: two ``Manifest`` objects -> a classified ``Report`` (``diff_manifests``);
- ``consumers``: what a lookup (the registry, at the CLI's edge) says about consumers in other domains
  (``attach_consumers``) and the verdicts that depend on them;
- ``policy``: ``--fail-on`` -> exit code;
- ``render`` (markdown) and ``json_report`` (JSON): formatting.

Everything here is pure; the CLI (``handoff.commands.impact``) reads files and the registry.
"""

from __future__ import annotations

from .classes import CLASS, CLASSES, ChangeClass, classes_table
from .consumers import ConsumerLookup, attach_consumers
from .diff import RESOURCE_TYPES, check_comparable, diff_manifests
from .json_report import IMPACT_VERSION, dumps_json, to_json
from .policy import FAIL_ON, exit_code
from .render import render_markdown, summary_line
from .report import Change, Consumer, ModelImpact, Report, Team

__all__ = [
    "CLASS", "CLASSES", "FAIL_ON", "IMPACT_VERSION", "RESOURCE_TYPES", "Change", "ChangeClass", "Consumer",
    "ConsumerLookup", "ModelImpact", "Report", "Team", "attach_consumers", "check_comparable", "classes_table",
    "diff_manifests", "dumps_json", "exit_code", "render_markdown", "summary_line", "to_json",
]
