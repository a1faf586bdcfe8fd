"""label_integrity_check: shuffled or wrong labels fail a blocking ERROR asset check, downstream
assets are skipped, clean labels pass (real Dagster instance, real reference files)."""

from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from mlchaos_orchestration.dagster.label_check import label_integrity_check
from mlchaos_orchestration.examples.sample_data import generate_events, write_partitions
from mlchaos_orchestration.faults import build_fault

FEATURES = ["amount", "age", "account_age_days", "n_tx_24h", "country", "device", "event_ts"]
FAULTS = {
    "clean": None,
    "shuffled": {"fault": "label_shuffle", "label": "is_fraud", "fraction": 1.0},
    "mislabelled": {"fault": "mislabel", "label": "is_fraud", "fraction": 0.1},
}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    write_partitions(root, "2026-11-15", 5, 2000, seed=42)
    return root


@pytest.mark.parametrize("which", list(FAULTS))
def test_label_check_blocks_downstream_on_label_faults(
    instance: Any, raw: Path, which: str
) -> None:
    frame = generate_events("2026-11-20", 2000, seed=42)
    if FAULTS[which]:
        frame = build_fault(FAULTS[which]).apply(frame, 3).frame

    @dg.asset
    def events() -> pd.DataFrame:
        return frame

    @dg.asset
    def model(events: pd.DataFrame) -> int:
        return len(events)

    check = label_integrity_check(events, reference=raw, label="is_fraud", features=FEATURES)
    defs = dg.Definitions(assets=[events, model], asset_checks=[check])
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, raise_on_error=False
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "label_integrity"
    assert evaluation.passed is (which == "clean")
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert meta["rows"] == 2000 and meta["features"] == FEATURES
    assert (meta["probe_score"] >= meta["bound"]) is (which == "clean") or which == "mislabelled"
    materialized = {m.asset_key for m in result.get_asset_materialization_events()}
    assert (dg.AssetKey("model") in materialized) is (which == "clean")
    if which != "clean":
        assert "labels" in (evaluation.description or "")


def test_reference_may_be_a_frame_and_the_check_non_blocking(instance: Any, raw: Path) -> None:
    reference = pd.concat([pd.read_parquet(p) for p in sorted(raw.rglob("*.parquet"))])
    shuffled = build_fault(FAULTS["shuffled"]).apply(generate_events("2026-11-20", 2000, 42), 3)

    @dg.asset
    def events() -> pd.DataFrame:
        return shuffled.frame

    @dg.asset
    def model(events: pd.DataFrame) -> int:
        return len(events)

    check = label_integrity_check(
        events, reference=reference, label="is_fraud", features=FEATURES, blocking=False
    )
    defs = dg.Definitions(assets=[events, model], asset_checks=[check])
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, raise_on_error=False
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    materialized = {m.asset_key for m in result.get_asset_materialization_events()}
    assert dg.AssetKey("model") in materialized  # warn-only: downstream still runs
