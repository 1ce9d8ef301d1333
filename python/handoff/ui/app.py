"""The web app Airflow's API server mounts at /handoff (``handoff.airflow.plugin``): map, model, run status.

Routes (all behind Airflow's own authentication, given as ``Auth``):

    GET /                               the domain map (?domain=NAME opens on it)
    GET /models/{domain}/{model}        a model's page (explain + consumers)
    GET /runs?domain=&model=&dag_id=&date=   run status for a date
    GET /tasks/{dag_id}/{task_id}       from Airflow's task view: that model's page (a sensor: its upstream's)
    GET /dags/{dag_id}                  from Airflow's DAG view: the map on its domain
    GET /dag-runs/{dag_id}/{run_id}     from Airflow's DAG-run view: run status of that run
    GET /static/{name}                  CSS, map.js, the vendored graph library (a fixed list of files)
    GET /api/map | /api/models/{domain}/{model} | /api/search?q= | /api/runs?...   the same as JSON

Pages without a session redirect to Airflow's login; /api/* and /static/* answer 401. A path or
query parameter holding a control character (NUL...) is refused with one line and 400 before any
query (``_refuse_control``: a page for pages, ``{"error": ...}`` for the API). Every query
is the registry's (``Registry``) and explain_run's (``run_state``); nothing is re-implemented.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ..errors import HandoffError, has_control_character, shorten
from .mapview import static_text
from .pages import Urls, error_page, map_page, model_page
from .run_pages import run_section, runs_choice, runs_page

STATIC = {
    "ui.css": "text/css; charset=utf-8",
    "map.js": "text/javascript; charset=utf-8",
    "vendor/cytoscape.min.js": "text/javascript; charset=utf-8",
    "vendor/cytoscape-dagre.min.js": "text/javascript; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


#: handoff's own tasks in a domain's DAG (not models: the "handoff model" view goes to the DAG's
#: domain): the batch that builds a batched pipeline's models, and the project's hooks
#: (``batching.BATCH_TASK_ID``, ``plan.naming.HOOK_TYPES``; tests/ui/test_app_routes.py checks them).
HELPER_TASKS = frozenset({"handoff__batch", "on-run-start", "on-run-end"})
#: handoff's own DAGs (``airflow.factory``): no domain's pipeline, so their "handoff" views say what they are.
OWN_DAGS = {
    "handoff_reconcile": "handoff_reconcile is handoff's own maintenance DAG (it satisfies sensors whose upstream "
                         "completed late; docs/recovery.md): it belongs to no domain",
    "handoff_sla_watch": "handoff_sla_watch is handoff's own DAG that checks the SLAs of every published model "
                         "(docs/notifications.md): it belongs to no domain",
}


@dataclass(frozen=True)
class Auth:
    """Airflow's authentication, as FastAPI dependencies: ``page`` redirects to the login page when
    there is no session, ``api`` answers 401; ``token(request)`` is the user's JWT (for live states
    from Airflow's API, with the user's own permissions)."""

    page: Callable[[Request], Awaitable[Any]]
    api: Callable[[Request], Awaitable[Any]]
    token: Callable[[Request], str | None]


@dataclass(frozen=True)
class Settings:
    registry_url: str | None  # None: $HANDOFF_REGISTRY_URL, else the default
    urls: Urls
    airflow_api_url: str | None  # Airflow's API for live states (None: registry only)


def create_app(settings: Settings, auth: Auth) -> FastAPI:  # noqa: C901 - every route is a closure over one app state; each branch is one route
    """The app; the registry is opened at the first request (a missing registry is a page, not a crash)."""
    app = FastAPI(title="handoff", docs_url=None, redoc_url=None, openapi_url=None)
    state = _State(settings)
    urls = settings.urls
    pages = APIRouter(dependencies=[Depends(auth.page), Depends(_refuse_control)], default_response_class=HTMLResponse)
    api = APIRouter(dependencies=[Depends(auth.api), Depends(_refuse_control_json)])

    @app.exception_handler(BadParameter)
    async def bad_parameter(request: Request, exc: BadParameter) -> Response:
        if exc.json:
            return JSONResponse({"error": exc.message}, status_code=400)
        return HTMLResponse(error_page("Bad request", exc.message, urls), status_code=400)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    # -- pages -------------------------------------------------------------------------
    @pages.get("/")
    def home(domain: str | None = None) -> Response:
        def render() -> Response:
            found = state.registry().domain_map()
            known = [d["name"] for d in found["domains"]]
            if domain is not None and domain not in known:
                import difflib

                near = difflib.get_close_matches(domain, known, n=1)
                hint = f"did you mean '{near[0]}'?" if near else "the map shows every published domain"
                message = f"no domain '{domain}' is published (URL parameter domain=) — {hint}"
                return HTMLResponse(map_page(found, urls, message=message), status_code=404)
            return HTMLResponse(map_page(found, urls, focus=domain))
        return _respond(render, "Domain map", urls)

    @pages.get("/models/{domain}/{model}")
    def model(domain: str, model: str) -> Response:
        def render() -> str:
            info, found, teams = state.registry().model_view(domain, model)
            return model_page(info, found, teams, urls)
        return _page(render, f"{domain}.{model}", urls)

    @pages.get("/runs")
    def runs(request: Request, domain: str = "", model: str = "", dag_id: str = "", date: str = "") -> Response:
        missing = _missing_run_parameter(domain=domain, model=model, dag_id=dag_id, date=date)
        if missing:
            return HTMLResponse(runs_page("Run status", [], urls, domain=domain, model=model, dag_id=dag_id,
                                          date=date, message=missing), status_code=400)
        if not date:  # nothing asked yet, or a domain without a date: the form (prefilled), said so
            note = "Choose a date." if domain or dag_id else ""
            return HTMLResponse(runs_page("Run status", [], urls, domain=domain, model=model, dag_id=dag_id,
                                          notice=note))
        def refused(exc: HandoffError, status: int) -> Response:
            return HTMLResponse(runs_page("Run status", [], urls, domain=domain, model=model, dag_id=dag_id,
                                          date=date, message=exc.one_line()), status_code=status)

        try:
            _asked(date)
        except HandoffError as exc:
            return refused(exc, 400)
        try:
            heading, sections, note = _run_sections(state, auth, request, domain=domain, model=model,
                                                     dag_id=dag_id, date=date)
        except HandoffError as exc:
            return refused(exc, _status(exc))
        return HTMLResponse(runs_page(heading, sections, urls, domain=domain, model=model, dag_id=dag_id, date=date,
                                      notice=note))

    @pages.get("/tasks/{dag_id}/{task_id}")
    def from_task(dag_id: str, task_id: str) -> Response:
        if dag_id in OWN_DAGS:
            return HTMLResponse(error_page(dag_id, OWN_DAGS[dag_id], urls, notice=True))
        try:
            if task_id in HELPER_TASKS:  # handoff's own task in a domain's DAG: the DAG's page
                return RedirectResponse(urls.home(state.registry().locate(dag_id)["domain"]), status_code=303)
            found = state.registry().locate(dag_id, task_id)
        except HandoffError as exc:
            return HTMLResponse(error_page("Not published", exc.one_line(), urls), status_code=_status(exc))
        target = found.get("upstream") or {"domain": found["domain"], "model": found["model"]}
        return RedirectResponse(urls.model(target["domain"], target["model"]), status_code=303)

    @pages.get("/dags/{dag_id}")
    def from_dag(dag_id: str) -> Response:
        if dag_id in OWN_DAGS:
            return HTMLResponse(error_page(dag_id, OWN_DAGS[dag_id], urls, notice=True))
        try:
            found = state.registry().locate(dag_id)
        except HandoffError as exc:
            return HTMLResponse(error_page("Not published", exc.one_line(), urls), status_code=_status(exc))
        return RedirectResponse(urls.home(found["domain"]), status_code=303)

    @pages.get("/dag-runs/{dag_id}/{run_id}")
    def from_dag_run(request: Request, dag_id: str, run_id: str) -> Response:
        if dag_id in OWN_DAGS:
            return HTMLResponse(error_page(dag_id, OWN_DAGS[dag_id], urls, notice=True))
        api_client = state.api(auth.token(request))
        if api_client is None:
            return HTMLResponse(error_page("Run status", "no Airflow API URL is configured for handoff", urls), 404)
        from ..recovery import run_reference_date

        try:
            moment = run_reference_date(api_client.get_dag_run(dag_id, run_id))
        except HandoffError as exc:
            return HTMLResponse(error_page("Run status", exc.one_line(), urls), status_code=404)
        if moment is None:
            return HTMLResponse(error_page("Run status", f"run {run_id} has no logical date", urls), 404)
        return RedirectResponse(urls.runs(dag_id=dag_id, date=moment.isoformat()), status_code=303)

    # -- static files and JSON ---------------------------------------------------------------
    @api.get("/static/{name:path}")
    def static(name: str) -> Response:
        media = STATIC.get(name)
        if media is None:
            raise HTTPException(404, "no such file")
        return Response(state.static(name), media_type=media,
                        headers={"Cache-Control": "private, max-age=3600"})

    @api.get("/api/map")
    def api_map() -> Any:
        return _json(lambda: state.registry().domain_map())

    @api.get("/api/models/{domain}/{model}")
    def api_model(domain: str, model: str) -> Any:
        def answer() -> Any:
            info, found, _ = state.registry().model_view(domain, model)
            info["all_consumers"] = [c.as_dict() for c in found]
            return info
        return _json(answer)

    @api.get("/api/search")
    def api_search(q: str = "", limit: int = 20) -> Any:
        return _json(lambda: state.registry().search_models(q[:200], limit))

    @api.get("/api/runs")
    def api_runs(request: Request, domain: str = "", model: str = "", dag_id: str = "", date: str = "") -> Any:
        missing = _missing_run_parameter(domain=domain, model=model, dag_id=dag_id, date=date or "?")
        if missing:
            return JSONResponse({"error": missing}, status_code=400)
        try:
            _asked(date)
        except HandoffError as exc:
            return JSONResponse({"error": exc.one_line()}, status_code=400)
        return _json(lambda: _run_states(state, auth, request, domain=domain, model=model, dag_id=dag_id,
                                         date=date)[0])

    app.include_router(pages)
    app.include_router(api)
    return app


# --------------------------------------------------------------------------------------
# Shared state and helpers
# --------------------------------------------------------------------------------------

class BadParameter(Exception):
    """A URL parameter refused before any query (answered 400 with ``message``)."""

    def __init__(self, message: str, *, json: bool) -> None:
        super().__init__(message)
        self.message = message
        self.json = json


def _control_message(request: Request) -> str | None:
    """The one line for the first path or query parameter holding a control character, else None."""
    params = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in params:
        if has_control_character(str(name)) or has_control_character(str(value)):
            shown = shorten(repr(str(name)))
            return (f"the URL parameter {shown} holds a control character (such as %00): no name, search term "
                    "or date has one — remove it")
    return None


async def _refuse_control(request: Request) -> None:
    message = _control_message(request)
    if message is not None:
        raise BadParameter(message, json=False)


async def _refuse_control_json(request: Request) -> None:
    message = _control_message(request)
    if message is not None:
        raise BadParameter(message, json=True)


class _State:
    """The registry (opened once, at first use) and the static files (read once)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._registry: Any = None
        self._static: dict[str, str] = {}
        self._lock = threading.Lock()

    def registry(self) -> Any:
        with self._lock:
            if self._registry is None:
                from ..registry.store import Registry

                self._registry = Registry(self.settings.registry_url, must_exist=True)
            return self._registry

    def static(self, name: str) -> str:
        if name not in self._static:
            self._static[name] = static_text(name)
        return self._static[name]

    def api(self, token: str | None) -> Any:
        if not self.settings.airflow_api_url or not token:
            return None
        from ..airflow_api import AirflowApi

        return AirflowApi.with_token(self.settings.airflow_api_url, token)


def _missing_run_parameter(*, domain: str, model: str, dag_id: str, date: str) -> str:
    """The one line for a run-status request that cannot mean anything as asked ('' when it can)."""
    if model and not domain:
        return "a model needs its domain: give the URL parameters domain= and model= (model alone matches nothing)"
    if date and not (domain or dag_id):
        return "a date needs a domain (or a DAG): give the URL parameter domain= (or dag_id=)"
    return ""


def _asked(date: str) -> Any:
    """The date= parameter parsed (``run_dates``); HandoffError naming the URL parameter."""
    from ..run_dates import parse

    return parse(date, what="the URL parameter date=")


def _status(exc: HandoffError) -> int:
    """404 for what the request named and is not there; 503 when the registry cannot answer."""
    from ..registry.engine import RegistryUnavailable

    return 503 if isinstance(exc, RegistryUnavailable) else 404


def _respond(render: Callable[[], Response], title: str, urls: Urls) -> Response:
    try:
        return render()
    except HandoffError as exc:
        return HTMLResponse(error_page(title, exc.one_line(), urls), status_code=_status(exc))


def _page(render: Callable[[], str], title: str, urls: Urls) -> Response:
    try:
        return HTMLResponse(render())
    except HandoffError as exc:
        return HTMLResponse(error_page(title, exc.one_line(), urls), status_code=_status(exc))


def _json(answer: Callable[[], Any]) -> Any:
    try:
        return answer()
    except HandoffError as exc:
        return JSONResponse({"error": exc.one_line()}, status_code=_status(exc))


def _run_states(state: _State, auth: Auth, request: Request, *, domain: str, model: str, dag_id: str,
                date: str) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    """[(title, run_state)] for a model, a DAG, or every DAG of a domain, and a note (live states off).

    ``date`` names runs as ``run_dates`` says (one implementation with ``handoff explain --at``): a
    date-time one run; a date the runs whose logical date falls on it in the DAG's timezone. A DAG
    with none or several runs on that date gives ``{"dag_id", "date", "timezone", "runs_on_date":
    [ISO], "latest_before"?}`` instead of a run state (the page lists links to each run)."""
    from ..explain_run import run_state
    from ..run_dates import latest_before, runs_asked

    asked = _asked(date)
    registry = state.registry()
    api_client = state.api(auth.token(request))
    note = "" if api_client is not None else "Live task states are not shown: no Airflow API URL is configured."
    if model:
        if not domain:
            raise HandoffError("a model needs its domain", hint="give domain= and model=")
        subjects = [(f"{domain}.{model}", registry.explain(domain, model))]
    elif dag_id:
        subjects = [(dag_id, registry.pipeline_waits(dag_id))]
    else:
        subjects = [(p["dag_id"], registry.pipeline_waits(p["dag_id"])) for p in registry.domain_pipelines(domain)]
    results: list[tuple[str, dict[str, Any]]] = []
    for title, explained in subjects:
        pipeline = explained["pipeline"]
        runs = runs_asked(asked, pipeline["schedule"], pipeline.get("timezone"))
        if len(runs) != 1:
            choices: dict[str, Any] = {"dag_id": pipeline["dag_id"], "date": date,
                                       "timezone": pipeline.get("timezone") or "UTC",
                                       "runs_on_date": [r.isoformat() for r in runs]}
            if not runs:
                choices["latest_before"] = latest_before(asked, pipeline["schedule"],
                                                         pipeline.get("timezone")).isoformat()
            results.append((title, choices))
            continue
        try:
            results.append((title, run_state(registry, explained, runs[0], api_client)))
        except HandoffError as exc:  # Airflow's API failed: the registry's view alone, said so
            note = f"Live states unavailable: {exc.one_line()}"
            results.append((title, run_state(registry, explained, runs[0], None)))
    return results, note


def _run_sections(state: _State, auth: Auth, request: Request, *, domain: str, model: str, dag_id: str,
                  date: str) -> tuple[str, list[str], str]:
    results, note = _run_states(state, auth, request, domain=domain, model=model, dag_id=dag_id, date=date)
    urls = state.settings.urls
    subject = f"{domain}.{model}" if model else dag_id or domain

    def section(title: str, found: dict[str, Any]) -> str:
        if "runs_on_date" not in found:
            return run_section(title, found, urls)
        params = {"domain": domain, "model": model} if model else {"dag_id": found["dag_id"]}
        return runs_choice(title, found, urls, params)

    return (f"Run status of {subject} for {date}", [section(t, s) for t, s in results], note)
