"""Callbacks the factory attaches to tasks of public models (late-completion recovery)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def on_model_success(context: Any) -> None:
    """Record the completion and reconcile downstream sensors; never fails the task."""
    try:
        from ..recovery import handle_completion  # noqa: PLC0415 - optional until configured
    except ImportError:
        return
    try:
        handle_completion(context)
    except Exception:  # noqa: BLE001 - a callback must never fail the upstream task
        log.exception("handoff: completion callback failed; `handoff reconcile` will catch up")
