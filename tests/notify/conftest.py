"""Fixtures of the notification suite: a registry holding the three example domains (SQLite and
PostgreSQL), a Slack-compatible receiver on 127.0.0.1, and Airflow connections pointing at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from handoff.plan_model import Plan
from support.slack_receiver import SlackReceiver

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
DOMAINS = ("marketplace", "finance", "marketing")


@pytest.fixture(scope="session")
def example_plans(example_manifests: Any) -> list[Plan]:
    """The plans `handoff compile` makes of the three example domains."""
    from handoff.manifest import load_manifest
    from handoff.plan import compile_manifest

    return [compile_manifest(load_manifest(example_manifests.manifests[d])) for d in DOMAINS]


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Any, example_plans: list[Plan]) -> Iterator[Any]:
    """A registry with the example domains published, on a new SQLite file or PostgreSQL database."""
    from handoff.registry import Registry

    url = (f"sqlite:///{tmp_path}/registry.db" if request.param == "sqlite"
           else str(request.getfixturevalue("postgres_database")))
    with Registry(url) as opened:
        opened.publish(example_plans)
        yield opened


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackReceiver]:
    """A receiver; ``handoff_slack`` (shared) and ``handoff_slack_finance_data`` (finance's own
    webhook) point at it, as Airflow connections in the environment."""
    with SlackReceiver() as receiver:
        monkeypatch.setenv("AIRFLOW_CONN_HANDOFF_SLACK", json.dumps(
            {"conn_type": "slackwebhook", "password": receiver.url("T0TEST/B0SHARED/shared")}))
        monkeypatch.setenv("AIRFLOW_CONN_HANDOFF_SLACK_FINANCE_DATA", json.dumps(
            {"conn_type": "slackwebhook", "password": receiver.url("T0TEST/B0FINANCE/finance")}))
        yield receiver
