"""In-memory stale partition replay: the consumer loads partition ``key - lag`` instead of ``key``
(through the wrapped IO manager; nothing stored changes)."""

from typing import Any

import dagster as dg
import pandas as pd

from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.dagster import run_experiment_dagster, with_chaos

DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01")
SEEN: list[str] = []


@dg.asset(partitions_def=DAYS)
def daily(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return pd.DataFrame({"day": [context.partition_key] * 3})


@dg.asset(partitions_def=DAYS)
def summary(daily: pd.DataFrame) -> int:
    SEEN.extend(daily["day"].unique())
    return len(daily)


def test_stale_replay_loads_the_older_partition(
    mlchaos_home: Any, instance: Any, tmp_path: Any
) -> None:
    defs = with_chaos(dg.Definitions(assets=[daily, summary]), consumer="summary")
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(partition_key="2026-11-19", instance=instance).success
    SEEN.clear()
    exp = parse_experiment(
        {
            "name": "stale-daily",
            "faults": [
                {
                    "fault": "stale_partition_replay",
                    "template": str(tmp_path / "ds={ds}"),
                    "lag_days": 1,
                    "at": "summary",
                }
            ],
        }
    )
    verdict = run_experiment_dagster(defs, exp, partition_key="2026-11-20", instance=instance)
    assert verdict["verdict"] == "silent", verdict
    assert SEEN == ["2026-11-19"]
    applied = next(e for e in Ledger().events(verdict["run_id"]) if e.kind == "fault_applied")
    assert applied.data["details"] == {"ds": "2026-11-20", "replayed_ds": "2026-11-19"}
