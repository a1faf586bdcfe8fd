"""``mlchaos suite``: a worker that crashes (exits non-zero, experiments without a verdict) makes
the suite exit 3 with ``error`` rows in journal, JUnit and HTML; ``--orchestrator plain`` runs the
file's own ``pipeline:`` and refuses a file without one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

MLCHAOS = [sys.executable, "-m", "mlchaos_orchestration.cli"]

PIPELINE = """
import os
from mlchaos_orchestration.core.pipeline import Pipeline, Step


def build():
    if os.environ.get("CRASH_ON_BUILD"):
        os._exit(13)  # a worker that dies hard: no exception, no cleanup

    def load():
        import pandas as pd
        return pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0]})

    def check(load):
        assert load["amount"].notna().all(), "nulls in amount"
        return load

    def fit(check):
        marker = os.environ.get("CRASH_IN_FIT_MARKER")
        if marker and os.path.exists(marker):
            os._exit(5)  # dies in the middle of the second run
        if marker:
            open(marker, "w").close()
        return len(check)

    return Pipeline(
        "own_pipeline",
        [Step("load", load), Step("check", check, ("load",)), Step("fit", fit, ("check",))],
        gate="check",
        consumer="fit",
    )
"""

EXPERIMENTS = """
version: 1
pipeline: own_pipe:build
defaults: {gate: check, consumer: fit, alert: {expected: false}}
experiments:
  - {name: control, control: true}
  - name: dups
    faults: [{fault: duplicate_rows, fraction: 0.5, at: check}]
"""


def _suite(tmp_path: Path, text: str, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "own_pipe.py").write_text(textwrap.dedent(PIPELINE))
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    home = tmp_path / "home"
    full_env = {
        **os.environ,
        "MLCHAOS_HOME": str(home),
        "MLCHAOS_LEDGER_URL": f"sqlite:///{home / 'ledger.db'}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
        **env,
    }
    for key in ("MLCHAOS_RAW_ROOT", "MLCHAOS_FEATURES_URL", "MLCHAOS_MODEL_DIR", "MLCHAOS_DS"):
        full_env.pop(key, None)
    return subprocess.run(
        [
            *MLCHAOS,
            "suite",
            str(path),
            "--orchestrator",
            "plain",
            "--fail-on",
            "silent",
            "--reports-dir",
            str(tmp_path / "reports"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=full_env,
    )


def _reports(tmp_path: Path) -> tuple[dict, ET.Element, str]:
    latest = tmp_path / "reports" / "latest"
    journal = json.loads((latest / "journal.json").read_text())
    return journal, ET.parse(latest / "junit.xml").getroot(), (latest / "report.html").read_text()


def test_worker_crash_exits_3_with_error_rows(tmp_path: Path) -> None:
    out = _suite(tmp_path, EXPERIMENTS, CRASH_ON_BUILD="1")
    assert out.returncode == 3, out.stderr
    assert "without a verdict" in out.stderr and "plain exited 13" in out.stderr
    log = Path(out.stderr.split("(worker log: ")[1].split(")")[0])
    assert log.is_file() and log.is_relative_to(tmp_path / "home")
    journal, junit, html = _reports(tmp_path)
    rows = {r["experiment"]: r for r in journal["runs"]}
    assert set(rows) == {"control", "dups"}
    for row in rows.values():
        assert row["verdict"] == "error"
        assert row["reason"] == "no verdict: worker plain exited 13"
    errors = {c.get("name"): c.find("error") for c in junit.iter("testcase")}
    assert all(
        e is not None and "worker plain exited 13" in e.get("message", "") for e in errors.values()
    )
    assert junit.get("errors") == "2"
    assert html.count("no verdict: worker plain exited 13") >= 2


def test_crash_in_the_middle_of_a_run_is_an_error_row_and_faults_are_judged(
    tmp_path: Path,
) -> None:
    out = _suite(tmp_path, EXPERIMENTS, CRASH_IN_FIT_MARKER=str(tmp_path / "fit-ran"))
    assert out.returncode == 3, out.stderr
    journal, junit, _ = _reports(tmp_path)
    rows = {r["experiment"]: r for r in journal["runs"]}
    assert rows["control"]["verdict"] == "clean"  # the file's own pipeline ran (gate 'check')
    assert rows["control"]["evidence"]["gate"]["task"] == "check"
    assert rows["dups"]["verdict"] == "error"
    assert rows["dups"]["reason"] == "no verdict: worker plain exited 5 during this run"
    assert journal["meta"]["worker_exit_codes"] == {"plain": 5}


def test_plain_runs_the_files_pipeline_and_a_clean_suite_exits_0(tmp_path: Path) -> None:
    out = _suite(tmp_path, EXPERIMENTS)
    journal, _, _ = _reports(tmp_path)
    rows = {r["experiment"]: r for r in journal["runs"]}
    assert rows["control"]["pipeline"] == "own_pipeline"
    # duplicates pass an assert-only gate: in-memory at the gate's load, so it reached 'fit'
    assert rows["dups"]["verdict"] == "silent"
    assert out.returncode == 1, out.stderr  # --fail-on silent


def test_plain_refuses_a_file_without_pipeline(tmp_path: Path) -> None:
    text = EXPERIMENTS.replace("pipeline: own_pipe:build\n", "")
    out = _suite(tmp_path, text)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs the file's 'pipeline: module:attribute'" in lines[0]
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("bad", ["silnet", "unalerted?"])
def test_misspelled_fail_on_is_refused(tmp_path: Path, bad: str) -> None:
    out = subprocess.run(
        [*MLCHAOS, "suite", str(tmp_path / "x.yaml"), "--fail-on", bad],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "unknown verdict" in out.stderr
