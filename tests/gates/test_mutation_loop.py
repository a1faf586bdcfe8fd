"""The mutation loop closes: a surviving mutant's suggested expectation, added to the gate suite,
kills it on the next run (real pipeline, real GX)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlchaos_orchestration.core.experiment import load_experiments
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.runner import run_experiment
from mlchaos_orchestration.examples import GATE_SUITE_PATH
from mlchaos_orchestration.examples.locations import ExampleConfig, prepare
from mlchaos_orchestration.examples.plain import build_pipeline
from mlchaos_orchestration.gates.gx import ExpectationSpec, load_suite_specs
from mlchaos_orchestration.reporting.report import build_journal

EXPERIMENTS = Path(__file__).parents[2] / "mlchaos_orchestration" / "examples" / "experiments.yaml"


@pytest.mark.parametrize("experiment", ["duplicates", "outage-missing"])
def test_suggested_expectation_kills_the_survivor(
    mlchaos_home: Path, webhook: object, monkeypatch: pytest.MonkeyPatch, experiment: str
) -> None:
    cfg = ExampleConfig(
        raw_root=str(mlchaos_home / "raw"),
        features_url=f"sqlite:///{mlchaos_home / 'features.db'}",
        model_dir=str(mlchaos_home / "models"),
    )
    prepare(cfg, days=3, rows_per_day=500)
    for key, value in cfg.export().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)  # type: ignore[attr-defined]
    spec = load_experiments(EXPERIMENTS)
    ledger = Ledger()

    def suite_run(pipeline: object, suite_id: str) -> dict:
        for name in ("control", experiment):
            run_experiment(
                pipeline,
                spec.get(name),
                ledger=ledger,
                ds=cfg.ds,  # type: ignore
                suite_id=suite_id,
            )
        return build_journal(ledger, suite_id)

    first = suite_run(build_pipeline(cfg), "before")
    verdicts = {r["experiment"]: r["verdict"] for r in first["runs"]}
    assert verdicts == {"control": "clean", experiment: "silent"}
    [survivor] = first["mutation"]["survivors"]
    suggestion = survivor["expectation_spec"]
    assert suggestion and survivor["expectation"].startswith(suggestion["type"])

    stronger = load_suite_specs(GATE_SUITE_PATH).with_expectations(
        ExpectationSpec(type=suggestion["type"], kwargs=suggestion["kwargs"])
    )
    second = suite_run(build_pipeline(cfg, suite=stronger), "after")
    verdicts = {r["experiment"]: r["verdict"] for r in second["runs"]}
    assert verdicts == {"control": "clean", experiment: "caught"}  # killed, no false alarm
    assert second["mutation"]["survivors"] == []


def test_replay_with_shifted_timestamps_needs_a_cross_partition_check() -> None:
    from mlchaos_orchestration.gates.mutation import killing_expectation

    profile = {"key": "event_id", "ds": "2026-11-20", "timestamp_column": "event_ts"}
    plain = killing_expectation({"fault": "stale_partition_replay"}, profile)
    shifted = killing_expectation(
        {"fault": "stale_partition_replay", "shift_timestamps": True}, profile
    )
    assert plain is not None and plain["kwargs"]["column"] == "event_ts"
    assert shifted is not None and shifted["type"] == "ExpectColumnValuesToBeUnique"
    assert "across partitions" in shifted["meta"]["why"]
