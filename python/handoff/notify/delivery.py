"""Posting messages: Airflow's Slack provider, or a log line instead (docs/notifications.md).

``HANDOFF_NOTIFY`` chooses how (read where the callback or the sweep runs):

* ``slack`` (default) — post through ``apache-airflow-providers-slack``'s ``SlackWebhookHook``
  (``slack_sdk`` underneath). The incoming-webhook URL is an Airflow connection: the channel's own
  ``handoff_slack_<channel>`` (``#finance-data`` -> ``handoff_slack_finance_data``) if defined,
  else ``handoff_slack`` (the message then also names its ``channel``: legacy and Slack-compatible
  webhooks route by it, Slack's app webhooks post to the channel they were made for);
* ``dry-run`` — log each message (redacted) instead of posting, and record it as ``dry_run``;
* ``off`` — send and record nothing.

Posting never raises into a task: ``post`` raises ``DeliveryError`` (one redacted line), which the
caller records on the message for the sweep to retry. Webhook URLs are secrets: they never appear
in a message, an error or a log line. Each post registers the URL, its path and its path segments
(the token) as literal secrets (``webhook_secrets``) for ``handoff.redact``, both on the error and
on every log record of the Slack client while it posts (its logger is handoff's, with a
``SecretFilter``). A webhook URL must be ``https://`` (``http://`` only to 127.0.0.1 or
localhost, for a local receiver): anything else is refused with one line before any request.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import HandoffError
from ..redact import get_logger, redact

log = get_logger(__name__)
# The Slack client's logger (passed to SlackWebhookHook): its records ("Going to retry the same
# request: POST <url>") go through a SecretFilter holding the webhook's secrets while it posts.
client_log = get_logger(f"{__name__}.slack_client")
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
_ROUTE_WORDS = frozenset({"services", "workflows", "triggers"})

ENV_MODE = "HANDOFF_NOTIFY"
MODES = ("slack", "dry-run", "off")
DEFAULT_CONNECTION = "handoff_slack"
POST_TIMEOUT_S = 5  # a callback's post waits at most this long (the sweep retries failures)
_SLUG = re.compile(r"[^a-z0-9]+")


class DeliveryError(RuntimeError):
    """A message could not be posted; the text is one redacted line saying why and what to check."""


def mode_from_env() -> str:
    """The delivery mode (``HANDOFF_NOTIFY``); an unknown value is an error, never a silent default."""
    value = os.environ.get(ENV_MODE, "").strip().lower() or "slack"
    if value not in MODES:
        raise HandoffError(f"{ENV_MODE}={redact(repr(value))} is not a delivery mode", where=ENV_MODE,
                           hint=f"use one of {', '.join(MODES)} (docs/notifications.md)")
    return value


class SecretFilter(logging.Filter):
    """Redacts ``secrets`` (literal strings) and every credential shape from a logger's records."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - keep the record, as logging itself would
            return True
        record.msg, record.args = redact(message, secrets=self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets=self.secrets)
        return True


def webhook_secrets(url: str) -> list[str]:
    """What of a webhook URL is secret: the URL, everything after its host, and each path segment
    but the route word (``services``): ``https://hooks.slack.com/services/T0/B0/tok`` ->
    the URL, ``/services/T0/B0/tok``, ``T0``, ``B0``, ``tok`` (``redact`` ignores pieces under 3
    characters). A malformed URL is secret as a whole and by its ``/``-separated pieces."""
    text = url.strip()
    found = [url, text]
    _, sep, rest = text.partition("://")
    after_host = rest.partition("/")[2] if sep else text
    if after_host:
        found.append("/" + after_host)
        found.append(after_host)
    found.extend(p for piece in re.split(r"[/?#&=]", after_host) if (p := piece.strip()) and p not in _ROUTE_WORDS)
    return [s for s in found if s]


def refusal(url: str) -> str | None:
    """Why handoff will not post to this webhook URL (without the URL: it is a secret), or None.

    Only ``https://`` carries the token safely; ``http://`` is allowed to 127.0.0.1 and localhost
    (a local receiver, as the tests use)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return "its webhook URL is not a valid URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host in _LOCAL_HOSTS:
        return None
    scheme = parts.scheme if re.fullmatch(r"[a-z][a-z0-9+.-]{0,15}", parts.scheme) else "?"
    return (f"its webhook URL is {scheme}://, not https:// — the token would travel in clear text; "
            f"use the https:// URL Slack gave (http:// only to 127.0.0.1 or localhost)")


def connection_id_for(channel: str) -> str:
    """The Airflow connection a channel's own webhook lives in: ``#finance-data`` -> ``handoff_slack_finance_data``."""
    slug = _SLUG.sub("_", channel.lstrip("#").lower()).strip("_")
    return f"{DEFAULT_CONNECTION}_{slug}" if slug else DEFAULT_CONNECTION


@dataclass
class Delivery:
    """Posts messages in one mode; remembers which connections exist (one lookup per channel)."""

    mode: str = "slack"
    timeout_s: int = POST_TIMEOUT_S
    _known: dict[str, bool] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, *, timeout_s: int = POST_TIMEOUT_S) -> Delivery:
        return cls(mode_from_env(), timeout_s)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> str:
        """Post one message to ``channel``; returns the status to record ("sent" or "dry_run")."""
        if self.mode == "dry-run":
            log.info("handoff: dry run (%s=dry-run): would post to %s: %s", ENV_MODE, channel,
                     " | ".join(text.splitlines()))
            return "dry_run"
        if self.mode != "slack":
            raise DeliveryError(f"delivery is {self.mode}")
        conn_id = connection_id_for(channel) if self._exists(connection_id_for(channel)) else DEFAULT_CONNECTION
        body: dict[str, Any] = {"text": text, "blocks": blocks}
        if conn_id == DEFAULT_CONNECTION:
            body["channel"] = channel
        self._send(conn_id, channel, body)
        return "sent"

    def _send(self, conn_id: str, channel: str, body: dict[str, Any]) -> None:
        try:
            from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook
        except ImportError:
            raise DeliveryError("apache-airflow-providers-slack is not installed: pip install "
                                "'handoff[airflow]'") from None
        secrets = SecretFilter(())
        client_log.addFilter(secrets)  # the client's records, while it posts (the hook's own say no URL)
        try:
            hook = SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=self.timeout_s, logger=client_log)
            url = str(getattr(hook.client, "url", "") or "")
            secrets.secrets = tuple(webhook_secrets(url))
            problem = refusal(url)
            if problem is not None:
                raise DeliveryError(f"not posting to {channel} through connection {conn_id}: {problem}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "channel" in the body: see the module doc
                try:
                    hook.send_dict(body)
                except Exception as exc:
                    if "invalid_blocks" not in str(exc) or "blocks" not in body:
                        raise
                    log.warning("handoff: %s rejected the blocks of a message; posting its plain text",
                                channel)
                    hook.send_dict({k: v for k, v in body.items() if k != "blocks"})
        except DeliveryError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the hook: one redacted line, never a traceback
            detail = " ".join(redact(f"{type(exc).__name__}: {exc}", secrets=secrets.secrets).split())[:500]
            raise DeliveryError(f"posting to {channel} through connection {conn_id} failed: {detail} — check the "
                                f"connection (docs/notifications.md)") from None
        finally:
            client_log.removeFilter(secrets)

    def _exists(self, conn_id: str) -> bool:
        if conn_id not in self._known:
            try:
                from airflow.sdk import BaseHook

                BaseHook.get_connection(conn_id)
                self._known[conn_id] = True
            except Exception:  # noqa: BLE001 - Airflow raises several types for a missing connection
                self._known[conn_id] = False
        return self._known[conn_id]
