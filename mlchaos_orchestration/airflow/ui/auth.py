"""Airflow authentication for the plugin app (Airflow does not protect plugin endpoints itself).

The caller must present a valid Airflow JWT (``Authorization: Bearer`` or the UI's ``_token``
session cookie), checked by Airflow's own ``get_user`` dependency, and be allowed to read DAG runs
by the configured auth manager (to change them, for an abort, which must also come from this
origin). Unauthenticated -> 401 (the HTML page redirects to the login page instead),
authenticated but not allowed -> 403.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException


def require_run_reader(user: Annotated[BaseUser, Depends(get_user)]) -> BaseUser:
    """FastAPI dependency: an authenticated user allowed to read DAG runs."""
    allowed = get_auth_manager().is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, user=user
    )
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")
    return user


RunReader = Annotated[BaseUser, Depends(require_run_reader)]


def require_run_editor(request: Request, user: Annotated[BaseUser, Depends(get_user)]) -> BaseUser:
    """FastAPI dependency: an authenticated user allowed to change DAG runs (abort), on a
    same-origin request (a browser form of this app; API clients authenticate with a bearer
    token and send no Origin)."""
    allowed = get_auth_manager().is_authorized_dag(
        method="PUT", access_entity=DagAccessEntity.RUN, user=user
    )
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: you may not change DAG runs")
    if request.method == "POST" and not same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: cross-site request")
    return user


RunEditor = Annotated[BaseUser, Depends(require_run_editor)]


def same_origin(request: Request) -> bool:
    """The request comes from a page of this server (``Origin`` matches ``Host``), or from an
    API client using a bearer token (no cookies, so no cross-site forgery)."""
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("authorization", "").lower().startswith("bearer ")
    return urlsplit(origin).netloc == request.headers.get("host")


def wants_html(request: Request) -> bool:
    """A browser navigation (not an API client)."""
    return "text/html" in request.headers.get("accept", "")


async def login_redirect_handler(request: Request, exc: StarletteHTTPException) -> Response:
    """Send browsers without a session to Airflow's login page; everyone else gets the error."""
    if exc.status_code == status.HTTP_401_UNAUTHORIZED and wants_html(request):
        login = get_auth_manager().get_url_login(next_url=str(request.url))
        return RedirectResponse(login, status_code=status.HTTP_303_SEE_OTHER)
    return await http_exception_handler(request, exc)
