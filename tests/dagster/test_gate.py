"""gx_blocking_check: a GX suite as a blocking ERROR check that skips downstream assets."""

from typing import Any

import dagster as dg
import pandas as pd
import pytest

from mlchaos_orchestration.dagster import gx_blocking_check

SUITE = {
    "name": "amounts",
    "expectations": [
        {"type": "ExpectColumnValuesToNotBeNull", "kwargs": {"column": "amount"}},
        {
            "type": "ExpectColumnValuesToBeBetween",
            "kwargs": {"column": "amount", "min_value": 0, "max_value": 100},
        },
    ],
}
FRAMES = {
    "clean": pd.DataFrame({"amount": [1.0, 2.0, 3.0]}),
    "bad": pd.DataFrame({"amount": [1.0, None, 300.0]}),
}


@pytest.mark.parametrize("loaded_by", ["io_manager", "load_frame"])
@pytest.mark.parametrize("which", ["clean", "bad"])
def test_blocking_check_gates_downstream(instance: Any, loaded_by: str, which: str) -> None:
    @dg.asset
    def payments() -> pd.DataFrame:
        return FRAMES[which]

    @dg.asset
    def model(payments: pd.DataFrame) -> int:
        return len(payments)

    loader = (lambda context: FRAMES[which]) if loaded_by == "load_frame" else None
    check = gx_blocking_check(payments, SUITE, name="payments_gate", load_frame=loader)
    defs = dg.Definitions(assets=[payments, model], asset_checks=[check])
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, raise_on_error=False
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed is (which == "clean")
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    materialized = {m.asset_key for m in result.get_asset_materialization_events()}
    assert dg.AssetKey("payments") in materialized  # the checked asset is materialized anyway
    assert (dg.AssetKey("model") in materialized) is (which == "clean")
    if which == "bad":
        assert "ExpectColumnValuesToNotBeNull" in (evaluation.description or "")
