"""README's "Use it on your pipeline" walkthroughs, run exactly as written.

Blocks marked ``<!-- walkthrough: NAME... [file=PATH] -->`` belong to the walkthroughs named:
with ``file=`` the block is that file's content, without it a shell block run in order. Each
walkthrough runs in an empty folder: its files written, its shell blocks run by one ``bash -eu``
with the console scripts on ``PATH``; the README's Slack URL placeholder is the only thing
replaced (by a local webhook receiver).

Console scripts: the installed wheel's (``MLCHAOS_WHEEL_VENV``, set by ``make install-check``);
without it the test is skipped (each walkthrough takes about a minute of real Airflow / Dagster).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from user_pipeline import read_report, run_verdicts

from mlchaos_orchestration.testing import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

README = Path(__file__).resolve().parents[2] / "README.md"
SLACK_PLACEHOLDER = "https://hooks.slack.com/services/YOUR/WEBHOOK/URL"
BLOCK = re.compile(
    r"<!-- walkthrough: (?P<names>[a-z ]+?)(?: file=(?P<file>\S+))? -->\n"
    r"```[a-z]*\n(?P<body>.*?)```",
    re.DOTALL,
)
EXPECTED = {"control": "clean", "nulls-in-amount": "caught", "orders-missing": "caught"}


@dataclass
class Walkthrough:
    files: dict[str, str] = field(default_factory=dict)
    shell: list[str] = field(default_factory=list)


def walkthroughs(text: str) -> dict[str, Walkthrough]:
    """The README's walkthroughs by name, blocks in the README's order."""
    found: dict[str, Walkthrough] = {}
    for match in BLOCK.finditer(text):
        for name in match["names"].split():
            walk = found.setdefault(name, Walkthrough())
            if match["file"]:
                walk.files[match["file"]] = match["body"]
            else:
                walk.shell.append(match["body"])
    return found


def test_the_readme_holds_both_walkthroughs() -> None:
    found = walkthroughs(README.read_text())
    assert set(found) == {"airflow", "dagster"}
    assert set(found["airflow"].files) == {"experiments.yaml", "dags/orders_features.py"}
    assert set(found["dagster"].files) == {"experiments.yaml", "orders_assets.py"}
    assert "--airflow-dag orders_features" in found["airflow"].shell[-1]
    assert "--dagster-defs orders_assets:defs" in found["dagster"].shell[-1]
    assert all(SLACK_PLACEHOLDER in walk.shell[0] for walk in found.values())


@pytest.mark.skipif(
    not os.environ.get("MLCHAOS_WHEEL_VENV"), reason="runs through `make install-check`"
)
@pytest.mark.parametrize("name", ["airflow", "dagster"])
def test_walkthrough_runs_as_written(name: str, tmp_path: Path) -> None:
    """The walkthrough's command exits 0 with the verdicts the README announces, a report,
    alerts delivered, the control run trained and the orders file back in place."""
    walk = walkthroughs(README.read_text())[name]
    for rel, body in walk.files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body)
    bin_dir = Path(os.environ["MLCHAOS_WHEEL_VENV"]) / "bin"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLCHAOS_", "AIRFLOW", "DAGSTER_", "VIRTUAL_ENV"))
        and k != "PYTHONPATH"
    }
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '')}",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    with WebhookReceiver() as slack:
        script = "\n".join(walk.shell).replace(SLACK_PLACEHOLDER, slack.url)
        t0 = time.monotonic()
        out = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=800,
        )
        print(f"walkthrough {name}: {time.monotonic() - t0:.1f} s")
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        alerts = len(slack.requests)
    journal, junit, _ = read_report(tmp_path / "reports")
    assert run_verdicts(journal) == {(name, k): v for k, v in EXPECTED.items()}, [
        (r["experiment"], r["verdict"], r["reason"]) for r in journal["runs"]
    ]
    assert junit.get("tests") == "3" and junit.get("failures") == "0"
    assert alerts >= 2  # one per caught experiment, at least
    assert (tmp_path / "data" / "model.txt").read_text().startswith("trained on 60 rows")
    assert (tmp_path / "data" / "orders.csv").read_text().count("\n") == 61  # restored
