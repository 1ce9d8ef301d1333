"""handoff's Airflow 3 plugin: the web pages (``handoff.ui.app``) served by Airflow's own API server.

Registered through the ``airflow.plugins`` entry point of the handoff package (pyproject.toml):
installing handoff next to Airflow is all it takes. It adds

- a FastAPI app mounted at ``/handoff`` (``fastapi_apps``), built the first time Airflow asks for
  it (the scheduler and the workers load plugins too and never build it);
- the batch's state write (``/handoff/api/batch``, ``handoff.airflow.batch_api``): a batched
  pipeline's models settled in one transaction per flush;
- views in Airflow's UI (``external_views``): "Domain map" in the navigation, rendered inside
  Airflow's page (``url_route``); "handoff" tabs on a DAG, a DAG run and a task.

Authentication and authorisation are Airflow's: a request must carry the user's Airflow session
(the ``_token`` cookie the UI sets at login, or a ``Bearer`` JWT), resolved by Airflow's own
``get_user`` dependency; the user must be allowed to read DAGs (``is_authorized_dag``). Pages
without a session redirect to Airflow's login page; the JSON routes and static files answer 401.

Settings: the registry is ``$HANDOFF_REGISTRY_URL`` (as for the callbacks); live task states are
read from Airflow's API at ``[api] base_url`` with the user's own token.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from airflow.plugins_manager import AirflowPlugin

PREFIX = "/handoff"


def create_app() -> Any:
    """The app Airflow mounts at /handoff, configured from Airflow's [api] base_url and $HANDOFF_REGISTRY_URL."""
    from airflow.configuration import conf

    from ..ui.app import Auth, Settings
    from ..ui.app import create_app as build
    from ..ui.pages import Urls
    from .batch_api import router as batch_router
    from .web_auth import page_user, token, user

    base_url = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    parts = urlsplit(base_url)
    absolute = parts.scheme in ("http", "https") and bool(parts.netloc)
    root = parts.path.rstrip("/") if absolute else base_url if base_url.startswith("/") else ""
    api_url = base_url if absolute else os.environ.get("HANDOFF_AIRFLOW_API_URL") or None
    settings = Settings(registry_url=os.environ.get("HANDOFF_REGISTRY_URL") or None,
                        urls=Urls(prefix=f"{root}{PREFIX}", airflow=root), airflow_api_url=api_url)
    app = build(settings, Auth(page=page_user, api=user, token=token))
    app.include_router(batch_router())  # the batch's state write (handoff.airflow.batch_api)
    return app


class HandoffPlugin(AirflowPlugin):
    """The domain map, model pages and run status inside Airflow's UI (docs/ui.md)."""

    name = "handoff"
    external_views = [  # noqa: RUF012 - Airflow's plugin API is class attributes
        {"name": "Domain map", "href": f"{PREFIX}/", "url_route": "handoff", "destination": "nav",
         "category": "browse"},
        {"name": "handoff", "href": f"{PREFIX}/dags/{{DAG_ID}}", "destination": "dag"},
        {"name": "handoff run status", "href": f"{PREFIX}/dag-runs/{{DAG_ID}}/{{RUN_ID}}", "destination": "dag_run"},
        {"name": "handoff model", "href": f"{PREFIX}/tasks/{{DAG_ID}}/{{TASK_ID}}", "destination": "task"},
    ]

    @cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [{"app": create_app(), "url_prefix": PREFIX, "name": "handoff"}]
