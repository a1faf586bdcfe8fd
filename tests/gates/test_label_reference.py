"""A missing or unreadable label reference is a broken gate (``gate_crashed``), never a detection:
in the GX expectation (the suite does not build), in the example gate run by the core runner
(verdict ``gate_crashed``, also for the control run). The Dagster asset check:
tests/dagster/test_label_check_reference.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlchaos_orchestration.core.experiment import load_experiments
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.runner import run_experiment
from mlchaos_orchestration.errors import SpecError
from mlchaos_orchestration.examples import GATE_SUITE_PATH
from mlchaos_orchestration.examples.plain import build_pipeline
from mlchaos_orchestration.examples.sample_data import generate_events, write_partitions
from mlchaos_orchestration.examples.steps import build_features
from mlchaos_orchestration.gates import gx
from mlchaos_orchestration.gates.label_integrity import load_reference

EXPERIMENTS = Path(__file__).parents[2] / "mlchaos_orchestration" / "examples" / "experiments.yaml"
LABEL_CHECK = "ExpectColumnLabelsToBeConsistentWithReference"
FEATURES = ["amount", "age", "account_age_days", "n_tx_24h", "country", "device", "event_ts"]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    write_partitions(root, "2026-11-16", 2, 2000, seed=42)
    return root


@pytest.fixture()
def broken(tmp_path: Path) -> Path:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "day.parquet").write_bytes(b"not parquet")
    return folder


def _suite(reference: str) -> dict[str, Any]:
    kwargs = {"column": "is_fraud", "reference": reference, "features": FEATURES}
    return {"name": "labels", "expectations": [{"type": LABEL_CHECK, "kwargs": kwargs}]}


def test_unusable_references_make_the_suite_unusable(
    raw: Path, broken: Path, tmp_path: Path
) -> None:
    candidate = build_features(generate_events("2026-11-20", 2000, seed=42))
    assert gx.validate_frame(candidate, _suite(str(raw))).success
    small = tmp_path / "small.csv"
    pd.read_parquet(sorted(raw.rglob("*.parquet"))[0]).head(50).to_csv(small, index=False)
    cases = {
        str(tmp_path / "missing"): "no parquet/CSV/JSON file",
        str(broken): "cannot read",
        str(small): "50 rows; at least 200 are needed",
        "${MLCHAOS_NO_SUCH_VAR}": "variable MLCHAOS_NO_SUCH_VAR is not set",
    }
    for reference, why in cases.items():
        with pytest.raises(SpecError, match=why):  # raised, not a failed expectation
            gx.validate_frame(candidate, _suite(reference))
        (problem,) = gx.suite_problems(_suite(reference))
        assert problem.startswith("expectations[0]: reference ") and why in problem
    with pytest.raises(SpecError, match="has no column 'label'"):
        load_reference(str(raw), "label")


def test_example_gate_with_a_missing_reference_crashes_and_is_not_credited(
    example_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = example_env()
    suite = gx.load_suite_specs(GATE_SUITE_PATH)
    label = suite.expectations[-1]
    assert label.type == LABEL_CHECK
    gone = label.model_copy(update={"kwargs": {**label.kwargs, "reference": "/nonexistent/ref"}})
    pipeline = build_pipeline(cfg, suite=suite.model_copy(update={"expectations": [gone]}))
    spec, ledger = load_experiments(EXPERIMENTS), Ledger()
    for name in ("control", "mislabel"):
        verdict = run_experiment(pipeline, spec.get(name), ledger=ledger, ds=cfg.ds).verdict
        assert verdict["verdict"] == "gate_crashed", (name, verdict["reason"])
        assert "no parquet/CSV/JSON file" in verdict["reason"]
        assert verdict["evidence"]["gate"]["crashed"] and not verdict["halted_by_gate"]
