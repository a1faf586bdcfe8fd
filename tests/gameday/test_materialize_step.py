"""The example pipeline's materialize step fills the Redis online store after the gate, and only
then: a run the gate halts writes nothing the prediction API would read (real Redis, real GX)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlchaos_orchestration.core.experiment import load_experiments
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.runner import run_experiment
from mlchaos_orchestration.examples.plain import build_pipeline
from mlchaos_orchestration.examples.steps import read_features
from mlchaos_orchestration.gameday.featurestore import ONLINE_FEATURES, FeatureStore
from mlchaos_orchestration.gameday.materialize import materialize_step
from mlchaos_orchestration.gameday.stack import RedisServer

EXPERIMENTS = Path(__file__).parents[2] / "mlchaos_orchestration" / "examples" / "experiments.yaml"


def test_without_an_online_store_the_step_says_why_it_wrote_nothing() -> None:
    result = materialize_step(None, "")
    assert result["users"] == 0 and "MLCHAOS_ONLINE_STORE_URL" in result["skipped"]


def test_the_gate_decides_what_reaches_the_online_store(
    mlchaos_home: Path, example_env: Any
) -> None:
    with RedisServer(mlchaos_home / "redis") as redis:
        cfg = example_env(days=3, rows_per_day=500, online_store_url=redis.url)
        spec, ledger, store = load_experiments(EXPERIMENTS), Ledger(), FeatureStore(redis.url, 5.0)

        halted = run_experiment(build_pipeline(cfg), spec.get("nulls-amount"), ledger=ledger)
        assert halted.kind == "caught"
        assert store.user_ids() == []  # the gate halted: nothing reached serving

        clean = run_experiment(build_pipeline(cfg), spec.get("control"), ledger=ledger)
        assert clean.kind == "clean"
        features = read_features(cfg.features_url, ds=cfg.ds)
        latest = features.sort_values("event_ts").drop_duplicates("user_id", keep="last")
        assert store.user_ids(limit=100_000) == sorted(int(u) for u in latest["user_id"])
        row = latest.iloc[0]
        stored = store.read(int(row["user_id"]))
        assert stored is not None and set(stored) == set(ONLINE_FEATURES)
        assert stored["country"] == row["country"] and stored["age"] == pytest.approx(row["age"])
        store.close()
