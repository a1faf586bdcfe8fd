"""The Resilience FastAPI app mounted by the Airflow plugin (see :func:`..resilience_app`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, status
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlchaos_orchestration.airflow.ui.auth import RunReader, login_redirect_handler
from mlchaos_orchestration.airflow.ui.data import latest_report, snapshot
from mlchaos_orchestration.airflow.ui.render import render_page
from mlchaos_orchestration.core.ledger import Ledger

#: The page and the report are shown in Airflow's iframe (same origin) and never run scripts.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
REPORT_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"] + "; sandbox",
}


def create_app(ledger_url: str | None = None) -> FastAPI:
    """A FastAPI app serving ``/`` (HTML view), ``/api/runs`` (JSON) and ``/report``.

    The ledger is opened on first use (``ledger_url`` or the configured ``MLCHAOS_LEDGER_URL``).
    """
    app = FastAPI(title="mlchaos resilience", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(StarletteHTTPException, login_redirect_handler)
    ledgers: list[Ledger] = []

    def ledger() -> Ledger:
        if not ledgers:
            ledgers.append(Ledger(ledger_url))
        return ledgers[0]

    @app.get("/", response_class=HTMLResponse)
    def page(_: RunReader) -> HTMLResponse:
        return HTMLResponse(render_page(snapshot(ledger())), headers=PAGE_HEADERS)

    @app.get("/api/runs")
    def runs(_: RunReader, limit: int = 50) -> dict[str, Any]:
        return snapshot(ledger(), limit=max(1, min(limit, 500))).as_json()

    @app.get("/report")
    def report(_: RunReader) -> FileResponse:
        path = latest_report()
        if path is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no report yet")
        return FileResponse(path, media_type="text/html", headers=REPORT_HEADERS)

    return app
