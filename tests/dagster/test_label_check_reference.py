"""The label-integrity asset check with a missing reference fails its step without an evaluation:
the ledger records a crashed gate, never a detection (a real Dagster instance)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mlchaos_orchestration.examples.sample_data import generate_events


def test_dagster_check_with_a_missing_reference_is_a_crashed_gate(
    instance: Any, tmp_path: Path
) -> None:
    import dagster as dg

    from mlchaos_orchestration.dagster.events import classify_entries
    from mlchaos_orchestration.dagster.label_check import label_integrity_check
    from mlchaos_orchestration.dagster.scope import Scopes

    @dg.asset
    def events() -> pd.DataFrame:
        return generate_events("2026-11-20", 500, seed=1)

    check = label_integrity_check(events, reference=tmp_path / "missing", label="is_fraud")
    defs = dg.Definitions(assets=[events], asset_checks=[check])
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert result.get_asset_check_evaluations() == []  # it never judged the labels
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    entries = [e for e in instance.all_logs(result.run_id) if e.dagster_event is not None]
    scopes = Scopes(checks={"label_integrity": "events"}, ops={"label_integrity": failure.step_key})
    kinds = [(kind, data.get("error_type")) for _, kind, data in
             classify_entries(entries, gate="label_integrity", scopes=scopes)]  # fmt: skip
    assert kinds == [("gate_crashed", "SpecError")]
