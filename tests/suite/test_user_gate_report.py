"""The mutation score of the user's own gate through the real ``mlchaos`` command: a plain
``pipeline:`` module and its hand-written gate written here, ``mlchaos suite FILE --orchestrator
plain``, then ``mlchaos report`` re-rendering the suite from the ledger with the details the
suite run stored (targets, run date, worker exit codes and logs, duration)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MLCHAOS = str(Path(sys.executable).with_name("mlchaos"))

USER_PIPELINE = '''
"""The user's plain pipeline: load a CSV, their own gate (nulls only), train."""
import os
from pathlib import Path

from mlchaos_orchestration.core.pipeline import Pipeline, Step

DATA = Path(os.environ["USER_DATA"])


def build() -> Pipeline:
    def load():
        import pandas as pd

        return pd.read_csv(DATA / "orders.csv")

    def check(load):
        assert load["amount"].notna().all(), "null amounts"
        return load

    def train(check):
        (DATA / "trained.txt").write_text(str(len(check)))

    steps = [Step("load", load), Step("check", check, ("load",)), Step("train", train, ("check",))]
    hints = {"profile": {"key": "id"}}
    return Pipeline("orders", steps, gate="check", consumer="train", params=hints)
'''

EXPERIMENTS = """
version: 1
pipeline: userpipe:build
defaults: {seed: 5, alert: {expected: false}}
experiments:
  - {name: control, control: true, expect: clean}
  - name: nulls
    faults: [{fault: nulls, columns: [amount], fraction: 0.3}]
  - name: out-of-range
    faults: [{fault: out_of_range, columns: [amount], fraction: 0.3}]
  - name: dupes
    faults: [{fault: duplicate_rows, fraction: 0.2}]
"""


def _mlchaos(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MLCHAOS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.timeout(600)
def test_user_gate_mutation_score_and_report_rerender(tmp_path: Path) -> None:
    project, data, elsewhere = tmp_path / "project", tmp_path / "data", tmp_path / "elsewhere"
    for folder in (project, data, elsewhere):
        folder.mkdir()
    rows = "\n".join(f"{i},{10 + i % 50}.5" for i in range(120))
    (data / "orders.csv").write_text("id,amount\n" + rows + "\n")
    clean = (data / "orders.csv").read_bytes()
    (project / "userpipe.py").write_text(USER_PIPELINE.lstrip())
    exp = project / "experiments.yaml"
    exp.write_text(textwrap.dedent(EXPERIMENTS).lstrip())
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCHAOS_")}
    env.pop("PYTHONPATH", None)  # the module next to the file imports without it
    env.update(
        MLCHAOS_HOME=str(tmp_path / "home"),
        MLCHAOS_LEDGER_URL=f"sqlite:///{tmp_path / 'ledger.db'}",
        USER_DATA=str(data),
    )
    reports = tmp_path / "reports"
    out = _mlchaos(
        env,
        elsewhere,
        "suite",
        str(exp),
        "--orchestrator",
        "plain",
        "--ds",
        "2026-11-20",
        "--reports-dir",
        str(reports),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (data / "orders.csv").read_bytes() == clean  # the user's data is untouched
    assert "resilience score: 16.7  gate mutation score: 1/3" in out.stdout, out.stdout
    journal = json.loads((reports / "latest" / "journal.json").read_text())
    verdicts = {r["experiment"]: r["verdict"] for r in journal["runs"]}
    assert verdicts == {
        "control": "clean",
        "nulls": "unalerted",
        "out-of-range": "silent",
        "dupes": "silent",
    }
    survivors = {s["experiment"]: s["expectation"] for s in journal["mutation"]["survivors"]}
    # bounds from the clean data the user's gate saw; the key from the pipeline's profile hints
    assert survivors == {
        "out-of-range": 'ExpectColumnValuesToBeBetween(column="amount", min_value=10.5, '
        "max_value=59.5)",
        "dupes": 'ExpectColumnValuesToBeUnique(column="id")',
    }
    for expectation in survivors.values():
        assert f"-> add {expectation}" in out.stdout
    meta = journal["meta"]
    assert meta["ds"] == "2026-11-20" and meta["worker_exit_codes"] == {"plain": 0}
    assert [t["describe"] for t in meta["targets"]] == ["pipeline userpipe:build"]

    # the reports are gone; the ledger re-renders the same suite with the same details
    shutil.rmtree(reports)
    again = _mlchaos(
        env, elsewhere, "report", "--suite-id", journal["suite_id"], "--reports-dir", str(reports)
    )
    assert again.returncode == 0, again.stdout + again.stderr
    rerendered = json.loads((reports / "latest" / "journal.json").read_text())
    for key in ("targets", "ds", "worker_exit_codes", "worker_logs", "duration_s"):
        assert rerendered["meta"][key] == meta[key], key
    assert rerendered["mutation"] == journal["mutation"]
    assert "gate mutation score: 1/3" in again.stdout and "target plain: pipeline" in again.stdout
    html = (reports / "latest" / "report.html").read_text()
    assert "<h2>Suite</h2>" in html and "run date 2026-11-20" in html
    assert "worker plain exited 0" in html and meta["worker_logs"]["plain"] in html
