"""An experiment built from the Airflow trigger form goes through the same guards: a target
outside the allowlist or a production environment is refused, nothing is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlchaos_orchestration.airflow.params import params_to_experiment
from mlchaos_orchestration.core import control
from mlchaos_orchestration.core.experiment import parse_experiment
from mlchaos_orchestration.errors import SafetyError


@pytest.mark.parametrize("case", ["outside-allowlist", "production"])
def test_form_experiment_is_guarded(
    case: str, mlchaos_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "precious" / "ds=2026-11-20"
    victim.mkdir(parents=True)
    (victim / "part-0.csv").write_text("a\n1\n")
    if case == "production":
        monkeypatch.setenv("MLCHAOS_ENVIRONMENT", "production")
        monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", str(tmp_path))
    form = {
        "target_dag": "feature_pipeline",
        "fault": "upstream_outage",
        "mode": "missing",
        "target": str(victim),
        "fraction": 0.2,
        "seed": 1,
    }
    exp = parse_experiment(params_to_experiment(form))
    run_id = control.begin_run(
        exp, run_key="manual__1", orchestrator="airflow", pipeline="feature_pipeline"
    )
    with pytest.raises(SafetyError, match="production" if case == "production" else "allow"):
        control.inject(run_id, exp, exp.faults[0], seed=1, ds="2026-11-20")
    assert (victim / "part-0.csv").read_text() == "a\n1\n"
    from mlchaos_orchestration.core.ledger import Ledger

    assert Ledger().live_leases() == []
