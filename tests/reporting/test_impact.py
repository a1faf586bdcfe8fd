"""Accuracy-impact sweep: what a label fault does to the example's model, next to the gate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from mlchaos_orchestration.faults.catalog import get_fault_class
from mlchaos_orchestration.reporting import plots
from mlchaos_orchestration.reporting.impact import detection_note, example_frame, label_impact

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def frame():
    return example_frame(rows=8_000)


def test_mislabel_hurts_the_model_more_at_higher_intensity(frame) -> None:
    fault = get_fault_class("mislabel")(label="is_fraud")
    impact = label_impact(fault, [0.01, 0.2, 0.5], frame=frame)
    drops = {p["intensity"]: p["drop"] for p in impact["points"]}
    assert 0.7 < impact["baseline"] < 0.9  # the clean model learns something
    assert abs(drops[0.01]) < 0.02  # 1% flipped labels: within noise
    assert drops[0.5] > 0.2  # half the labels flipped: the model ranks backwards
    assert drops[0.5] > drops[0.2]
    assert impact["holdout_rows"] == 2_000 and impact["rows"] == 8_000


def test_class_removal_leaves_no_model(frame) -> None:
    fault = get_fault_class("class_removal")(label="is_fraud")
    impact = label_impact(fault, [1.0], frame=frame, metric="accuracy")
    (point,) = impact["points"]
    assert point["drop"] is None and point["accuracy"] is None
    assert "single class" in point["error"]
    assert point["rows_train"] < 6_000  # the fraud rows were removed from the training split


def test_unknown_metric_is_refused(frame) -> None:
    with pytest.raises(ValueError, match="metric must be one of"):
        label_impact(get_fault_class("mislabel")(label="is_fraud"), [0.1], metric="f1")


IMPACT = {
    "fault": "mislabel",
    "parameter": "fraction",
    "metric": "auc",
    "baseline": 0.79,
    "rows": 100,
    "holdout_rows": 25,
    "points": [
        {"intensity": 0.01, "auc": 0.789, "drop": 0.001},
        {"intensity": 0.1, "auc": 0.75, "drop": 0.04},
        {"intensity": 0.5, "auc": None, "drop": None, "error": "single class"},
    ],
}


def test_detection_note_names_the_drop_at_the_threshold_and_the_worst_miss() -> None:
    note = detection_note(IMPACT, {"airflow": 0.1, "dagster": None})
    assert "airflow: detected from 0.1 (auc drop +0.0400)" in note
    assert "dagster: not detected at any intensity" in note
    assert detection_note(IMPACT, {"airflow": 0.5}).startswith(
        "airflow: detected from 0.5 (training fails); largest undetected auc drop +0.0400"
    )


def test_report_sweep_section_plots_the_drop_and_the_detection_threshold() -> None:
    sweep = {
        "experiment": "mislabel",
        "parameter": "fraction",
        "minimum_detected": {"airflow": 0.1},
        "points": [
            {"orchestrator": "airflow", "intensity": i, "verdict": v}
            for i, v in ((0.01, "silent"), (0.1, "caught"), (0.5, "caught"))
        ],
        "impact": IMPACT,
    }
    svg = ET.fromstring(plots.impact_svg(IMPACT, sweep["minimum_detected"], "mislabel"))
    texts = ["".join(t.itertext()).strip() for t in svg.iter(f"{SVG}text")]
    assert "airflow: gate detects from 0.1" in texts
    assert "no model (training failed)" in texts
    assert any("auc drop vs clean model" in t for t in texts)
    assert plots.impact_svg({**IMPACT, "points": []}, {}, "x") == ""


def test_sweep_cli_reports_model_impact_of_the_example(tmp_path: Path) -> None:
    """A real plain sweep of the example: the journal's sweep has the impact per intensity,
    the report renders it, the CLI prints the drop at the gate's threshold."""
    from mlchaos_orchestration.suite.demo import EXPERIMENTS_PATH

    spec = yaml.safe_load(EXPERIMENTS_PATH.read_text())
    keep = [e for e in spec["experiments"] if e.get("control")]
    keep.append(
        {"name": "drop-fraud", "faults": [
            {"fault": "class_removal", "label": "is_fraud", "at": "validate_features"}
        ]}
    )  # fmt: skip
    spec["experiments"] = keep
    exps = tmp_path / "matrix.yaml"
    exps.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {k: "" for k in ("MLCHAOS_RAW_ROOT", "MLCHAOS_FEATURES_URL", "MLCHAOS_MODEL_DIR")}
    env["MLCHAOS_HOME"] = str(tmp_path / "home")
    args = ["suite", str(exps), "--orchestrator", "plain", "--sweep", "drop-fraud"]
    args += ["--intensities", "1.0", "--reports-dir", str(tmp_path / "reports")]
    out = subprocess.run(
        [sys.executable, "-m", "mlchaos_orchestration.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "model impact: plain: detected from 1 (training fails)" in out.stdout
    report = next(p for p in (tmp_path / "reports").glob("*/journal.json"))
    impact = json.loads(report.read_text())["sweep"]["impact"]
    assert impact["fault"] == "class_removal" and impact["points"][0]["drop"] is None
    html = (report.parent / "report.html").read_text()
    assert "What the fault does to the model" in html and "single class" in html
