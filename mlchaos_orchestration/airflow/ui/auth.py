"""Airflow authentication for the plugin app (Airflow does not protect plugin endpoints itself).

The caller must present a valid Airflow JWT (``Authorization: Bearer`` or the UI's ``_token``
session cookie), checked by Airflow's own ``get_user`` dependency, and be allowed to read DAG runs
by the configured auth manager. Unauthenticated -> 401 (the HTML page redirects to the login page
instead), authenticated but not allowed -> 403.
"""

from __future__ import annotations

from typing import Annotated

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


def wants_html(request: Request) -> bool:
    """A browser navigation (not an API client)."""
    return "text/html" in request.headers.get("accept", "")


async def login_redirect_handler(request: Request, exc: StarletteHTTPException) -> Response:
    """Send browsers without a session to Airflow's login page; everyone else gets the error."""
    if exc.status_code == status.HTTP_401_UNAUTHORIZED and wants_html(request):
        login = get_auth_manager().get_url_login(next_url=str(request.url))
        return RedirectResponse(login, status_code=status.HTTP_303_SEE_OTHER)
    return await http_exception_handler(request, exc)
