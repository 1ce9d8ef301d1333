"""A Slack webhook's token never leaves handoff's delivery path: not in the Slack client's own
log lines (retries), not in a DeliveryError when the server echoes the path or the URL is
malformed, and a webhook URL that is not https:// (but for 127.0.0.1/localhost) is refused.
Real posts through Airflow's Slack provider to the receiver on 127.0.0.1 (tests/support)."""

from __future__ import annotations

import json
import logging

import pytest
from support.slack_receiver import SlackReceiver

from handoff.notify.delivery import Delivery, DeliveryError

TOKEN = "xq7ZsecretTOKEN42abc"


@pytest.fixture(scope="module", autouse=True)
def _airflow_configured() -> None:
    """Airflow configures logging on its first connection lookup: done before caplog installs its handler."""
    Delivery("slack")._exists("handoff_slack_warm_up")


def _use(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HANDOFF_SLACK", json.dumps({"conn_type": "slackwebhook", "password": url}))


def _leaks(*texts: str) -> list[str]:
    return [t for t in texts if TOKEN in t or "T0LEAK" in t or "B0LEAK" in t]


def test_the_clients_retry_lines_and_the_error_of_a_refused_connection_hide_the_token(monkeypatch, caplog) -> None:
    with SlackReceiver() as closed:
        url = closed.url(f"T0LEAK/B0LEAK/{TOKEN}")
    _use(monkeypatch, url)  # nothing listens there any more: the client retries, then fails
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DeliveryError) as failed:
        Delivery("slack", timeout_s=2).post("#finance-data", "hello", [])
    retried = [r.getMessage() for r in caplog.records if "Going to retry the same request" in r.getMessage()]
    assert retried, caplog.text  # the provider's own line is there ...
    assert _leaks(str(failed.value), caplog.text) == []  # ... without the token
    assert "***" in retried[0] and len(str(failed.value).splitlines()) == 1


def test_a_server_echoing_the_path_and_a_malformed_url_never_put_the_token_in_the_error(monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with SlackReceiver() as slack:
        _use(monkeypatch, slack.url(f"T0/B0/{TOKEN}"))  # short team/bot ids: not the generic T.../B... shape
        slack.fail_next(1, 404, answer="no_service for {path}")
        with pytest.raises(DeliveryError) as echoed:
            Delivery("slack", timeout_s=5).post("#finance-data", "hello", [])
        assert slack.requests[0].path.endswith(TOKEN)  # the server did receive (and echo) it
        _use(monkeypatch, slack.url(f"T0/B0/{TOKEN} x"))  # a space: http.client's InvalidURL
        with pytest.raises(DeliveryError) as malformed:
            Delivery("slack", timeout_s=5).post("#finance-data", "hello", [])
    assert "no_service for" in str(echoed.value) and "can't contain control characters" in str(malformed.value)
    assert _leaks(str(echoed.value), str(malformed.value), caplog.text) == []


@pytest.mark.parametrize("url", [f"http://hooks.example.com/services/T0LEAK/B0LEAK/{TOKEN}",
                                 f"ftp://hooks.example.com/services/T0LEAK/B0LEAK/{TOKEN}",
                                 f"http://127.0.0.2:9/services/T0LEAK/B0LEAK/{TOKEN}"])
def test_a_webhook_url_that_is_not_https_is_refused_with_one_line(monkeypatch, caplog, url) -> None:
    caplog.set_level(logging.DEBUG)
    _use(monkeypatch, url)
    with pytest.raises(DeliveryError) as refused:
        Delivery("slack", timeout_s=2).post("#finance-data", "hello", [])
    message = str(refused.value)
    assert "not https://" in message or "not a valid URL" in message, message
    assert len(message.splitlines()) == 1 and _leaks(message, caplog.text) == []


def test_http_to_localhost_still_posts(monkeypatch) -> None:
    with SlackReceiver() as slack:
        _use(monkeypatch, slack.url("T0TEST/B0SHARED/shared").replace("127.0.0.1", "localhost"))
        assert Delivery("slack", timeout_s=5).post("#finance-data", "hello", []) == "sent"
        assert slack.wait_for(1, timeout=10)[0].body["text"] == "hello"
