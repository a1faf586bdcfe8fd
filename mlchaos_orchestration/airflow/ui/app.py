"""The Resilience FastAPI app mounted by the Airflow plugin (see :func:`..resilience_app`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlchaos_orchestration.airflow.ui.auth import RunEditor, RunReader, login_redirect_handler
from mlchaos_orchestration.airflow.ui.data import Filters, latest_report, report_store, snapshot
from mlchaos_orchestration.airflow.ui.render import render_abort_confirm, render_page
from mlchaos_orchestration.core.ledger import Ledger

#: The page and the report are shown in Airflow's iframe (same origin) and never run scripts.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "form-action 'self'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
REPORT_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"] + "; sandbox",
}
MEDIA_TYPES = {"report.html": "text/html", "journal.json": "application/json"}


def ui_base() -> str:
    """The path of Airflow's UI (``[api] base_url``), where run pages live."""
    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="/") or "/").path or "/"


def create_app(ledger_url: str | None = None) -> FastAPI:
    """A FastAPI app serving ``/`` (HTML view, filters in the query string), ``/api/runs``
    (JSON), ``/report`` (legacy latest report), ``/reports/<name>/<file>`` (published reports),
    and ``/abort`` (GET: confirmation page; POST: restore every active fault of a run).

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
    def page(
        _: RunReader, dag: str = "", verdict: str = "", since: str = "all", notice: str = ""
    ) -> HTMLResponse:
        snap = snapshot(ledger(), filters=Filters.parse(dag, verdict, since))
        html = render_page(snap, ui_base=ui_base(), notice=notice[:300] or None)
        return HTMLResponse(html, headers=PAGE_HEADERS)

    @app.get("/api/runs")
    def runs(
        _: RunReader, limit: int = 50, dag: str = "", verdict: str = "", since: str = "all"
    ) -> dict[str, Any]:
        filters = Filters.parse(dag, verdict, since)
        return snapshot(ledger(), limit=max(1, min(limit, 500)), filters=filters).as_json()

    @app.get("/report")
    def report(_: RunReader) -> FileResponse:
        path = latest_report()
        if path is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no report yet")
        return FileResponse(path, media_type="text/html", headers=REPORT_HEADERS)

    @app.get("/reports/{name}/{file}")
    def published(_: RunReader, name: str, file: str) -> Response:
        try:
            data = report_store().read(name, file)
        except ValueError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        except FileNotFoundError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such report") from None
        media = MEDIA_TYPES.get(file, "application/xml")
        return Response(data, media_type=media, headers=REPORT_HEADERS)

    @app.get("/abort", response_class=HTMLResponse)
    def abort_confirm(_: RunEditor, run: str) -> HTMLResponse:
        leases = snapshot(ledger(), limit=1).leases
        return HTMLResponse(render_abort_confirm(run, leases), headers=PAGE_HEADERS)

    @app.post("/abort")
    async def abort(_: RunEditor, request: Request) -> RedirectResponse:
        from mlchaos_orchestration.core.session import abort as do_abort

        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        run_id = (form.get("run") or [""])[0].strip()
        if not run_id:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "which run? (form field run)")
        outcomes = do_abort(ledger(), run_id=run_id)
        failed = [o for o in outcomes if not o.restored]
        notice = (
            f"Aborted run {run_id}: {len(outcomes)} fault(s) restored."
            if not failed
            else f"Abort of run {run_id}: {len(failed)} fault(s) NOT restored: {failed[0].error}"
        )
        return RedirectResponse(f"./?notice={quote(notice)}", status.HTTP_303_SEE_OTHER)

    return app
