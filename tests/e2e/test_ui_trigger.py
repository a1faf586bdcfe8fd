"""End to end through the real Airflow UI: log in with headless chromium, trigger
``mlchaos_experiment`` through its Params form, wait for the chaos run against
``feature_pipeline``, then check the verdict in the ledger, the alert at the webhook and the
Resilience view (inside Airflow's nav, and its auth). One test function, so that pytest-xdist
never starts a second Airflow for it.

The fault chosen in the form is an *empty upstream partition* with its target typed in. As of
this writing the form's Trigger button stays disabled while "Where the fault acts" is empty (a
non-nullable string param), so a data fault on the features table (a SQL target, which that
string field cannot express) cannot be triggered from the browser.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlchaos_orchestration.airflow.ui import resilience_view
from mlchaos_orchestration.core.control import run_id_for
from mlchaos_orchestration.core.ledger import Ledger

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

DAG_ID = "mlchaos_experiment"
TARGET_DAG = "feature_pipeline"
EXPERIMENT = "ui-upstream_outage"
OUTAGE_TARGET = "${MLCHAOS_RAW_ROOT}/ds={ds}"
VIEW_ROUTE = resilience_view()["url_route"]


def login(page: Any, stack: Any, path: str) -> None:
    """Open ``path``; Airflow redirects to its login page; log in as the generated admin."""
    page.goto(f"{stack.base_url}{path}", wait_until="domcontentloaded")
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(stack.admin_password())
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/auth/login" not in url)


def trigger_outage_from_form(page: Any) -> None:
    """Fill the ``mlchaos_experiment`` Params form (empty upstream partition) and submit."""
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.locator("[role=dialog][data-state=open]")
    dialog.locator("#element_target_dag").fill(TARGET_DAG)
    combos = dialog.locator("input[role=combobox]")  # react-select: fault, then outage mode
    fault, mode = combos.nth(0), combos.nth(1)
    fault.click()
    fault.fill("Upstream outage")
    page.keyboard.press("Enter")
    mode.click()
    mode.fill("empty")
    page.keyboard.press("Enter")
    dialog.locator("#element_target").fill(OUTAGE_TARGET)
    assert dialog.locator("input[name=element_fault]").input_value() == "upstream_outage"
    assert dialog.locator("input[name=element_mode]").input_value() == "empty"
    dialog.get_by_test_id("trigger-dag-submit").click()
    dialog.wait_for(state="detached")


def test_ui_trigger_records_verdict_and_resilience_view_shows_it(
    airflow_stack: Any, webhook_module: Any, page: Any
) -> None:
    stack = airflow_stack
    timings = stack.timings  # printed when the stack stops
    start = time.monotonic()
    stack.wait_dag(DAG_ID, timeout_s=60)
    stack.wait_dag(TARGET_DAG, timeout_s=30)
    timings["dags_loaded_s"] = time.monotonic() - start

    t0 = time.monotonic()
    login(page, stack, f"/dags/{DAG_ID}")
    trigger_outage_from_form(page)
    timings["login_and_trigger_s"] = time.monotonic() - t0

    t0 = time.monotonic()
    run_id = stack.wait_first_run(DAG_ID)
    page.goto(f"{stack.base_url}/plugin/{VIEW_ROUTE}")  # the run page's live grid is heavy
    check_view_auth(stack)  # while the run goes on
    run = stack.wait_run(DAG_ID, run_id, timeout_s=150)
    timings["run_s"] = time.monotonic() - t0
    assert run["conf"]["fault"] == "upstream_outage" and run["conf"]["mode"] == "empty"
    target_run = f"mlchaos__{run_id}"
    tasks = stack.task_states(TARGET_DAG, target_run)
    assert run["state"] == "success", (stack.task_states(DAG_ID, run_id), tasks)
    assert tasks["validate_features"] == "failed" and tasks["train_model"] == "upstream_failed"

    ledger = Ledger(stack.env["MLCHAOS_LEDGER_URL"])
    ledger_run = ledger.get_run(run_id_for(target_run, EXPERIMENT))
    assert ledger_run is not None, [r["experiment"] for r in ledger.list_runs()]
    assert ledger_run["verdict"] == "caught", ledger_run["verdict_detail"]
    fault = ledger_run["meta"]["experiment"]["faults"][0]
    assert fault["fault"] == "upstream_outage" and fault["mode"] == "empty"
    alerts = [r.json for r in webhook_module.requests if r.json]
    assert any(target_run in str(a.get("text")) for a in alerts), alerts
    assert not ledger.live_leases(), "a fault lease is still active after the run"

    t0 = time.monotonic()
    page.goto(f"{stack.base_url}/dags")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Resilience").click()
    view = page.frame_locator("iframe").first
    row = view.locator("[data-testid=runs] tbody tr", has_text=ledger_run["id"])
    assert row.locator("td").nth(1).inner_text() == EXPERIMENT
    assert row.locator("[data-verdict]").get_attribute("data-verdict") == "caught"
    assert view.get_by_test_id("report-link").get_attribute("href") == "report"
    timings["view_s"] = time.monotonic() - t0


def check_view_auth(stack: Any) -> None:
    """The Resilience app answers only to Airflow-authenticated callers (plain HTTP)."""
    url = f"{stack.base_url}/mlchaos"
    with httpx.Client(timeout=60, trust_env=False) as http:
        assert http.get(f"{url}/api/runs").status_code == 401
        assert http.get(f"{url}/report").status_code == 401
        forged = {"Authorization": "Bearer not-a-jwt"}
        assert http.get(f"{url}/api/runs", headers=forged).status_code == 403
        assert http.get(f"{url}/", cookies={"_token": "not-a-jwt"}).status_code == 403
        page = http.get(f"{url}/", headers={"Accept": "text/html"})
        assert page.status_code == 303 and "/auth/login" in page.headers["location"]

        auth = {"Authorization": f"Bearer {stack.token()}"}
        runs = http.get(f"{url}/api/runs", headers=auth)
        assert runs.status_code == 200 and isinstance(runs.json()["runs"], list)
        html = http.get(f"{url}/", headers=auth)
        assert html.status_code == 200 and "<h1>Resilience</h1>" in html.text
        assert "default-src 'none'" in html.headers["content-security-policy"]
        assert http.get(f"{url}/report", headers=auth).status_code == 404  # no report yet

        latest = Path(stack.env["MLCHAOS_REPORTS_DIR"]) / "latest"
        latest.mkdir(parents=True)
        (latest / "report.html").write_text("<html><body>scorecard</body></html>")
        report = http.get(f"{url}/report", headers=auth)
        assert report.status_code == 200 and "scorecard" in report.text
        assert "sandbox" in report.headers["content-security-policy"]
        assert 'href="report"' in http.get(f"{url}/", headers=auth).text
