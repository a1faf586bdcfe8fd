"""The label-integrity check as a GX expectation, in the example gate, and as the mutation
report's suggestion: label faults that survive a schema+statistics gate are killed by it."""

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
from mlchaos_orchestration.faults import build_fault
from mlchaos_orchestration.gates import gx, mutation
from mlchaos_orchestration.reporting.report import build_journal

EXPERIMENTS = Path(__file__).parents[2] / "mlchaos_orchestration" / "examples" / "experiments.yaml"
LABEL_CHECK = "ExpectColumnLabelsToBeConsistentWithReference"
FEATURES = ["amount", "age", "account_age_days", "n_tx_24h", "country", "device", "event_ts"]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    write_partitions(root, "2026-11-16", 5, 2000, seed=42)
    return root


@pytest.fixture(scope="module")
def candidate() -> pd.DataFrame:
    return build_features(generate_events("2026-11-20", 2000, seed=42))


def _suite(reference: str) -> dict:
    kwargs = {"column": "is_fraud", "reference": reference, "features": FEATURES}
    return {"name": "labels", "expectations": [{"type": LABEL_CHECK, "kwargs": kwargs}]}


def _fault(spec: dict, frame: pd.DataFrame) -> pd.DataFrame:
    return build_fault(spec).apply(frame, 5).frame


def test_expectation_passes_clean_and_fails_label_faults(
    raw: Path, candidate: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REF_ROOT", str(raw))
    suite = _suite("${REF_ROOT}")
    assert gx.suite_problems(suite) == []
    assert gx.validate_frame(candidate, suite).success
    for spec in (
        {"fault": "label_shuffle", "label": "is_fraud", "fraction": 1.0},
        {"fault": "mislabel", "label": "is_fraud", "fraction": 0.05},
    ):
        with pytest.raises(gx.GateFailed) as caught:
            gx.assert_gate(_fault(spec, candidate), suite)
        [failure] = caught.value.result.failed
        assert failure["expectation"] == LABEL_CHECK and failure["column"] == "is_fraud"
        assert failure["observed_value"].startswith("probe score")


def test_expectation_reads_a_single_file_and_fails_loudly_without_reference(
    raw: Path, candidate: pd.DataFrame, tmp_path: Path
) -> None:
    one = sorted(raw.rglob("*.parquet"))[-1]
    csv = tmp_path / "reference.csv"
    pd.read_parquet(one).to_csv(csv, index=False)  # dates as text: compared like for like
    assert gx.validate_frame(candidate, _suite(str(csv))).success
    with pytest.raises(SpecError, match="no parquet/CSV/JSON file"):  # a broken gate, not a
        gx.validate_frame(candidate, _suite(str(tmp_path / "missing")))  # failed check


def test_label_survivors_are_pointed_to_the_label_check() -> None:
    profile = {"label": "is_fraud", "reference": "/data/ref", "label_features": ["a", "b"]}
    shuffle = mutation.killing_expectation({"fault": "label_shuffle"}, profile)
    wrong = mutation.killing_expectation({"fault": "mislabel", "label": "y"}, {})
    assert shuffle is not None and wrong is not None
    assert shuffle["type"] == wrong["type"] == LABEL_CHECK
    wanted = {"column": "is_fraud", "reference": "/data/ref", "features": ["a", "b"]}
    assert shuffle["kwargs"] == wanted
    assert wrong["kwargs"] == {"column": "y", "reference": mutation.REFERENCE}
    assert shuffle["meta"]["why"] != wrong["meta"]["why"]
    assert "mean" not in mutation.render(shuffle)


def test_example_gate_kills_label_faults_and_the_suggestion_closes_the_loop(
    example_env: Any,
) -> None:
    cfg = example_env()
    spec, ledger = load_experiments(EXPERIMENTS), Ledger()
    names = ("control", "label-shuffle", "mislabel")
    assert {spec.get(n).expect for n in names[1:]} == {"caught"}

    def suite_run(suite: gx.SuiteSpec, suite_id: str) -> dict:
        pipeline = build_pipeline(cfg, suite=suite)
        for name in names:
            run_experiment(pipeline, spec.get(name), ledger=ledger, ds=cfg.ds, suite_id=suite_id)
        journal = build_journal(ledger, suite_id)
        return {r["experiment"]: r["verdict"] for r in journal["runs"]} | {
            "survivors": journal["mutation"]["survivors"]
        }

    example = gx.load_suite_specs(GATE_SUITE_PATH)
    assert example.expectations[-1].type == LABEL_CHECK
    with_gate = suite_run(example, "with")
    assert with_gate == {
        "control": "clean",
        "label-shuffle": "caught",
        "mislabel": "caught",
        "survivors": [],
    }

    without = example.model_copy(update={"expectations": example.expectations[:-1]})
    before = suite_run(without, "without")
    assert (before["label-shuffle"], before["mislabel"]) == ("silent", "silent")
    suggested = [gx.ExpectationSpec(**s["expectation_spec"]) for s in before["survivors"]]
    assert {s.type for s in suggested} == {LABEL_CHECK}
    assert {s.kwargs["reference"] for s in suggested} == {"${MLCHAOS_RAW_ROOT}"}

    after = suite_run(without.with_expectations(suggested[0]), "after")  # the loop closes
    assert after == with_gate
