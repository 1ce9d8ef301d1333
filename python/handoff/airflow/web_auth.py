"""Airflow's own authentication for handoff's web app (``handoff.airflow.plugin``), as FastAPI dependencies.

``user``: the request's Airflow user, resolved by Airflow's ``get_user`` dependency (a ``Bearer``
JWT, else the ``_token`` session cookie the UI sets at login), who must be allowed to read DAGs;
401 without a session, 403 without the permission. ``page_user``: the same, but a request without
a session is redirected (303) to Airflow's login page, which comes back here. ``token``: the JWT
the request carries (live states are read from Airflow's API with it: the user's own rights).
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.core_api.security import get_user
from fastapi import HTTPException, Request
from fastapi.security import HTTPBearer


async def user(request: Request) -> Any:
    """Airflow's user for this request (its own ``get_user`` dependency), authorised to read DAGs."""
    bearer = await HTTPBearer(auto_error=False)(request)
    found = await get_user(request, None, bearer)
    if not get_auth_manager().is_authorized_dag(method="GET", user=found):
        raise HTTPException(403, "this Airflow user may not read DAGs")
    return found


async def page_user(request: Request) -> Any:
    """``user``, or a redirect to Airflow's login page (coming back here) when there is no session."""
    try:
        return await user(request)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        login = get_auth_manager().get_url_login(next_url=str(request.url))
        raise HTTPException(303, "sign in to Airflow first", headers={"Location": login}) from None


def token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return str(header[7:].strip()) or None
    found = request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    return str(found) if found else None
