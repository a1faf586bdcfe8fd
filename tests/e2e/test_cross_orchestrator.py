"""The same experiments YAML gives the same verdict kinds on Airflow and Dagster (real
``dag.test()`` and real Dagster, run concurrently by the suite), and the report agrees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlchaos_orchestration.suite.demo import EXPERIMENTS_PATH
from mlchaos_orchestration.suite.run import run_suite

SUBSET = (
    "control",
    "outage-missing",
    "outage-empty",
    "stale-replay",
    "connector-failure",
    "nulls-amount",
    "duplicates",
)


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_airflow_and_dagster_agree(mlchaos_home: Path, tmp_path: Path) -> None:
    spec = yaml.safe_load(EXPERIMENTS_PATH.read_text())
    spec["experiments"] = [e for e in spec["experiments"] if e["name"] in SUBSET]
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump(spec, sort_keys=False))

    result = run_suite(
        matrix, orchestrators=["airflow", "dagster"], reports_dir=tmp_path / "reports"
    )
    runs = result.journal["runs"]
    by = {(r["orchestrator"], r["experiment"]): r for r in runs}
    assert len(by) == 2 * len(SUBSET), sorted(by)
    expected = {e["name"]: e.get("expect") for e in spec["experiments"]}
    for name in SUBSET:
        airflow, dagster = by[("airflow", name)], by[("dagster", name)]
        assert airflow["verdict"] == dagster["verdict"] == expected[name], (name, airflow, dagster)
        for run in (airflow, dagster):
            assert run["restore_proof"]["all_identical"], run["restore_proof"]
            if run["verdict"] == "caught":
                assert run["alert_latency_s"] is not None
    journal = json.loads((result.report_dir / "journal.json").read_text())
    assert [r["verdict"] for r in journal["runs"]] == [r["verdict"] for r in runs]
    assert result.journal["meta"]["worker_exit_codes"] == {"airflow": 0, "dagster": 0}
