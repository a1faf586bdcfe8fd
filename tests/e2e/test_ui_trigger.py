"""End to end through the real Airflow UI (api-server + scheduler + dag-processor, headless
chromium), all tests on ONE Airflow started for the module (≈1 min on 2 cores):

* the graph and grid views of ``feature_pipeline`` show the chaos groups (compared with the
  task list of the REST API; screenshots kept next to the test's tmp dir);
* the trigger form refuses an out-of-range intensity with a visible message, nothing runs;
* an unknown target DAG runs the experiment DAG, which fails in its first task with the reason
  in the run note;
* an experiment triggered from the form: its verdict is in the notes of the experiment run and
  of the target run, whose links lead from one to the other (trigger-to-verdict time measured);
* the dry-run toggle: both notes list what would be touched, nothing is;
* the Resilience view links to the Airflow run and to the published report; it is served behind
  Airflow's auth; it aborts an active fault (with confirmation).

Tests run in file order and share the stack; each opens a fresh, logged-in browser page.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from mlchaos_orchestration.airflow.verdicts import ledger_run_for
from mlchaos_orchestration.core.ledger import Ledger

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DAG_ID = "mlchaos_experiment"
TARGET_DAG = "feature_pipeline"
EXPERIMENT = "ui-upstream_outage"
VIEW = "/mlchaos/"


def STACK_ENV(root: Path) -> dict[str, str]:  # noqa: N802 - read by conftest's airflow_stack
    return {"MLCHAOS_REPORTS_LOCATION": str(root / "published")}


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots the tests take are kept (printed at the end)."""
    return tmp_path_factory.mktemp("ui_screenshots")


def login(page: Any, stack: Any, path: str) -> None:
    """Open ``path``; Airflow redirects to its login page; log in as the generated admin."""
    page.goto(f"{stack.base_url}{path}", wait_until="domcontentloaded")
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(stack.admin_password())
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/auth/login" not in url)


def open_form(page: Any) -> Any:
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.locator("[role=dialog][data-state=open]")
    dialog.wait_for()
    return dialog


def pick(page: Any, combo: Any, text: str) -> None:
    combo.click()
    combo.fill(text)
    page.keyboard.press("Enter")


def runs_of(stack: Any, dag_id: str) -> list[dict[str, Any]]:
    return stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns").json()["dag_runs"]


def wait_note(stack: Any, dag_id: str, run_id: str, word: str, timeout_s: float) -> str:
    """The run's note once it contains ``word``."""
    deadline, note = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline:
        run = stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}").json()
        note = run.get("note") or ""
        if word in note:
            return note
        time.sleep(0.5)
    raise TimeoutError(f"note of {dag_id}/{run_id} lacks {word!r}: {note!r}\n{stack.logs()}")


def test_graph_and_grid_show_the_chaos_groups(airflow_stack: Any, page: Any, shots: Path) -> None:
    stack = airflow_stack
    t0 = time.monotonic()
    stack.wait_dag(DAG_ID, timeout_s=90)
    stack.wait_dag(TARGET_DAG, timeout_s=30)
    stack.timings["dags_loaded_s"] = time.monotonic() - t0
    tasks = stack.api("GET", f"/api/v2/dags/{TARGET_DAG}/tasks").json()["tasks"]
    top_level = {t["task_id"].split(".")[0] for t in tasks}
    assert {"mlchaos_setup", "mlchaos_teardown", "mlchaos_inject_data"} <= top_level

    login(page, stack, f"/dags/{TARGET_DAG}")
    page.get_by_role("button", name="Show Graph (Press g)").click()
    page.locator(".react-flow__node").first.wait_for()
    nodes = {n.get_attribute("data-id") for n in page.locator(".react-flow__node").all()}
    page.screenshot(path=str(shots / "graph.png"))
    assert nodes == top_level  # every task / group of the task list, nothing else

    page.get_by_role("button", name="Show Grid (Press g)").click()
    for name in sorted(top_level):
        page.get_by_text(name, exact=True).first.wait_for()
    page.screenshot(path=str(shots / "grid.png"))


def test_out_of_range_intensity_is_refused_with_a_message(
    airflow_stack: Any, page: Any, shots: Path
) -> None:
    stack = airflow_stack
    login(page, stack, f"/dags/{DAG_ID}")
    dialog = open_form(page)
    dialog.locator("#element_target_dag").fill(TARGET_DAG)
    dialog.get_by_role("button", name="Intensity - data faults and connector failure").click()
    dialog.locator("input[name=element_fraction]").fill("1.5")
    dialog.get_by_test_id("trigger-dag-submit").click()
    message = dialog.get_by_text("1.5 is greater than the maximum of 1")
    message.wait_for()
    page.screenshot(path=str(shots / "form_out_of_range.png"))
    assert dialog.locator("input[name=element_fraction]").input_value() == "1.5"  # not clamped
    assert runs_of(stack, DAG_ID) == []  # nothing triggered


def test_unknown_target_dag_fails_first_task_with_the_reason(
    airflow_stack: Any, page: Any, shots: Path
) -> None:
    stack = airflow_stack
    login(page, stack, f"/dags/{DAG_ID}")
    dialog = open_form(page)
    dialog.locator("#element_target_dag").fill("no_such_dag")
    dialog.get_by_test_id("trigger-dag-submit").click()
    dialog.wait_for(state="detached")
    page.wait_for_url(lambda url: f"/dags/{DAG_ID}/runs/" in url)
    run_id = stack.wait_first_run(DAG_ID)
    run = stack.wait_run(DAG_ID, run_id, timeout_s=120)
    assert run["state"] == "failed"
    states = stack.task_states(DAG_ID, run_id)
    assert states["build_experiment"] == "failed" and states["run_target"] == "upstream_failed"
    wait_note(stack, DAG_ID, run_id, "does not exist", timeout_s=30)
    page.reload()
    page.get_by_text("target DAG 'no_such_dag' does not exist").first.wait_for()
    page.screenshot(path=str(shots / "unknown_target_run.png"))
    assert "feature_pipeline" in page.get_by_text("DAGs with add_chaos").first.inner_text()


def trigger_outage(page: Any) -> None:
    """Fill the form: empty upstream partition of ``feature_pipeline``, where the example's raw
    events are (the default of "Where the fault acts"), and submit."""
    dialog = open_form(page)
    dialog.locator("#element_target_dag").fill(TARGET_DAG)
    pick(page, dialog.locator("input[role=combobox]").nth(0), "Upstream outage")
    dialog.get_by_role("button", name="Outage mode - upstream outage only").click()
    pick(page, dialog.locator("input[role=combobox]").last, "empty")
    assert dialog.locator("input[name=element_fault]").input_value() == "upstream_outage"
    assert dialog.locator("input[name=element_mode]").input_value() == "empty"
    dialog.get_by_test_id("trigger-dag-submit").click()
    dialog.wait_for(state="detached")


def follow_note_link(page: Any, name: str) -> Any:
    """Click a link of a run note (Airflow opens markdown links in a new tab); that tab."""
    with page.context.expect_page() as tab:
        page.get_by_role("link", name=name).first.click()
    return tab.value


def test_verdict_on_both_run_pages_and_links_both_ways(
    airflow_stack: Any, webhook_module: Any, page: Any, shots: Path
) -> None:
    stack = airflow_stack
    login(page, stack, f"/dags/{DAG_ID}")
    before = {r["dag_run_id"] for r in runs_of(stack, DAG_ID)}
    t0 = time.monotonic()
    trigger_outage(page)
    page.wait_for_url(lambda url: f"/dags/{DAG_ID}/runs/" in url)
    run_id = next(r["dag_run_id"] for r in runs_of(stack, DAG_ID) if r["dag_run_id"] not in before)
    note = wait_note(stack, DAG_ID, run_id, "verdict", timeout_s=180)
    stack.timings["trigger_to_verdict_s"] = time.monotonic() - t0
    run = stack.wait_run(DAG_ID, run_id, timeout_s=30)
    target_run = f"mlchaos__{run_id}"
    assert run["state"] == "success", (stack.task_states(DAG_ID, run_id), note)
    assert "verdict **caught**: halted by gate validate_features" in note
    assert "mode=empty" in note
    tasks = stack.task_states(TARGET_DAG, target_run)
    assert tasks["validate_features"] == "failed" and tasks["train_model"] == "upstream_failed"
    assert any(target_run in str(r.json) for r in webhook_module.requests if r.json)
    assert not Ledger(stack.env["MLCHAOS_LEDGER_URL"]).live_leases()

    page.reload()  # the experiment run page: verdict in the note, link to the target run
    page.get_by_text("halted by gate validate_features").first.wait_for()
    page.screenshot(path=str(shots / "experiment_run.png"))
    target = follow_note_link(page, f"target run of {TARGET_DAG}")  # note links open a tab
    target.wait_for_url(lambda url: f"/dags/{TARGET_DAG}/runs/{target_run}" in url)
    target.get_by_text("chaos run, verdict").first.wait_for()
    assert "caught" in target.get_by_text("chaos run, verdict").first.inner_text()
    target.screenshot(path=str(shots / "target_run.png"))
    back = follow_note_link(target, "experiment run")
    back.wait_for_url(lambda url: url.endswith(f"/dags/{DAG_ID}/runs/{run_id}"))
    back.get_by_text("halted by gate validate_features").first.wait_for()

    page.goto(f"{stack.base_url}/dags/{TARGET_DAG}/runs")  # chaos runs stand out in the list
    page.get_by_text(target_run).first.wait_for()
    page.screenshot(path=str(shots / "target_runs_list.png"))

    logs = stack.api(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id)}/taskInstances/verdict/logs/1"
    ).json()["content"]
    events = [e.get("event", "") for e in logs if isinstance(e, dict)]
    mine = [e for e in events if "mlchaos verdict" in e]
    assert mine and "caught - halted by gate validate_features" in mine[-1], events[-8:]
    assert not any(e.startswith(("{", "[")) for e in mine)  # a sentence, not a dict


def test_dry_run_toggle_lists_what_would_be_touched(
    airflow_stack: Any, page: Any, shots: Path
) -> None:
    stack = airflow_stack
    login(page, stack, f"/dags/{DAG_ID}")
    before = {r["dag_run_id"] for r in runs_of(stack, DAG_ID)}
    dialog = open_form(page)
    dialog.locator("#element_target_dag").fill(TARGET_DAG)  # default fault: nulls in amount
    dialog.locator("label", has=page.locator("input[name=element_dry_run]")).first.click()
    assert dialog.locator("input[name=element_dry_run]").is_checked()
    dialog.get_by_test_id("trigger-dag-submit").click()
    dialog.wait_for(state="detached")
    run_id = next(
        r["dag_run_id"]
        for r in wait_new_runs(stack, DAG_ID, before)
        if r["dag_run_id"] not in before
    )
    note = wait_note(stack, DAG_ID, run_id, "dry run", timeout_s=180)
    assert "nothing touched; would apply:" in note and "amount" in note, note
    target_note = wait_note(stack, TARGET_DAG, f"mlchaos__{run_id}", "dry run", timeout_s=30)
    assert "would apply:" in target_note
    assert stack.wait_run(DAG_ID, run_id, timeout_s=30)["state"] == "success"
    ledger = Ledger(stack.env["MLCHAOS_LEDGER_URL"])  # the pipeline ran; no fault touched it
    chaos = ledger_run_for(TARGET_DAG, f"mlchaos__{run_id}", ledger)
    assert chaos is not None and chaos["verdict"] == "not_applied"
    assert "fault_applied" not in {e.kind for e in ledger.events(chaos["id"])}
    page.goto(f"{stack.base_url}/dags/{DAG_ID}/runs/{run_id}")
    page.get_by_text("would apply:").first.wait_for()
    page.screenshot(path=str(shots / "dry_run.png"))


def wait_new_runs(stack: Any, dag_id: str, before: set[str], timeout_s: float = 30) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = runs_of(stack, dag_id)
        if {r["dag_run_id"] for r in runs} - before:
            return runs
        time.sleep(0.5)
    raise TimeoutError(f"no new run of {dag_id}")


def check_view_auth(stack: Any) -> None:
    """The Resilience app answers only to Airflow-authenticated callers (plain HTTP)."""
    url = f"{stack.base_url}/mlchaos"
    with httpx.Client(timeout=60, trust_env=False) as http:
        assert http.get(f"{url}/api/runs").status_code == 401
        assert http.get(f"{url}/reports/x/report.html").status_code == 401
        assert http.post(f"{url}/abort", content="run=x").status_code == 401
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
        cross_site = {**auth, "Cookie": f"_token={stack.token()}", "Origin": "http://evil.test"}
        assert http.post(f"{url}/abort", content="run=x", headers=cross_site).status_code == 403


def publish_report(stack: Any) -> str:
    """A weekly report in the reports location (as the weekly DAG would publish it)."""
    from mlchaos_orchestration.reporting.location import ReportsLocation

    written = stack.root / "written" / "20261130T060000Z"
    written.mkdir(parents=True)
    journal = {"suite_id": "weekly-1", "runs": [{"pipeline": TARGET_DAG, "verdict": "caught"}]}
    (written / "journal.json").write_text(json.dumps(journal))
    (written / "report.html").write_text("<html><body><h1>Weekly scorecard</h1></body></html>")
    return ReportsLocation(stack.env["MLCHAOS_REPORTS_LOCATION"]).publish(written).name


def open_view(page: Any, stack: Any) -> Any:
    """Browse > Resilience (opens in its own tab); returns that tab."""
    page.goto(f"{stack.base_url}/dags")
    page.get_by_role("button", name="Browse").click()
    with page.context.expect_page() as new_tab:
        page.get_by_role("menuitem", name="Resilience").click()
    view = new_tab.value
    view.locator("h1", has_text="Resilience").wait_for()
    return view


def test_resilience_view_links_to_the_run_and_the_report(
    airflow_stack: Any, page: Any, shots: Path
) -> None:
    stack = airflow_stack
    check_view_auth(stack)
    name = publish_report(stack)
    login(page, stack, "/dags")
    view = open_view(page, stack)
    view.screenshot(path=str(shots / "resilience_view.png"), full_page=True)
    background = "getComputedStyle(document.body).backgroundColor"
    assert view.evaluate(background) == "rgb(255, 255, 255)"
    view.emulate_media(color_scheme="dark")  # follows the OS / browser setting
    assert view.evaluate(background) == "rgb(9, 9, 11)"
    view.screenshot(path=str(shots / "resilience_view_dark.png"), full_page=True)
    view.emulate_media(color_scheme="light")
    row = view.locator("[data-testid=runs] tbody tr", has_text=EXPERIMENT).first
    assert row.locator("[data-verdict]").get_attribute("data-verdict") == "caught"
    assert "mode=empty" in row.get_by_test_id("fault").inner_text()

    link = view.get_by_test_id("report-link")
    assert name in link.inner_text()
    with view.context.expect_page() as report_tab:
        link.click()
    report = report_tab.value
    report.get_by_text("Weekly scorecard").wait_for()
    report.close()

    row.get_by_test_id("airflow-run").click()
    view.wait_for_url(lambda url: f"/dags/{TARGET_DAG}/runs/mlchaos__" in url)
    view.get_by_text("chaos run, verdict").first.wait_for()


def test_abort_an_active_fault_from_the_view(airflow_stack: Any, page: Any, shots: Path) -> None:
    stack = airflow_stack
    partition = stack.root / "held" / "ds=2026-11-30"
    partition.mkdir(parents=True)
    (partition / "part-0.csv").write_text("a\n1\n")
    code = (
        "from mlchaos_orchestration.core import control\n"
        "from mlchaos_orchestration.core.experiment import parse_experiment\n"
        "exp = parse_experiment({'name': 'held-outage', 'faults': [{'fault': 'upstream_outage',"
        f" 'target': {str(partition)!r}}}]}})\n"
        "run = control.begin_run(exp, run_key='held', orchestrator='airflow',"
        f" pipeline={TARGET_DAG!r})\n"
        "control.inject(run, exp, exp.faults[0], seed=1)\n"
        "print(run)\n"
    )
    held = subprocess.run(
        [sys.executable, "-c", code], env=stack.env, capture_output=True, text=True, timeout=120
    )
    assert held.returncode == 0, held.stderr[-2000:]
    run_id = held.stdout.split()[-1]
    assert not partition.exists()  # the fault is active

    login(page, stack, VIEW)
    lease = page.locator("[data-testid=leases] tbody tr", has_text="held-outage")
    lease.get_by_test_id("abort").click()
    page.get_by_text("Abort this chaos run?").wait_for()
    page.screenshot(path=str(shots / "abort_confirm.png"))
    assert partition.exists() is False  # nothing happens before the confirmation
    page.get_by_test_id("abort-confirm").click()
    notice = page.get_by_test_id("notice")
    notice.wait_for()
    assert notice.inner_text() == f"Aborted run {run_id}: 1 fault(s) restored."
    assert (partition / "part-0.csv").read_text() == "a\n1\n"
    assert not Ledger(stack.env["MLCHAOS_LEDGER_URL"]).live_leases()
    assert page.get_by_test_id("leases-empty").is_visible()
    print(f"\nscreenshots: {shots}")
