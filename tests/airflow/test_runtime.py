"""The Airflow-free request resolution: which experiment a run's conf asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlchaos_orchestration.airflow.runtime import default_experiment, requested, resolve
from mlchaos_orchestration.errors import SpecError

EXAMPLES = Path(__file__).resolve().parents[2] / "mlchaos_orchestration" / "examples"
DEFAULTS = {
    "experiment": default_experiment("d.nulls", "nulls", {"columns": ["a"]}, gate="g", consumer="c")
}


@pytest.mark.parametrize(
    "conf", [{}, {"other": 1}, {"mlchaos": None}, {"mlchaos": {"enabled": False}}, None]
)
def test_no_request_is_dormant(conf: object) -> None:
    assert requested(conf) is None
    assert resolve(conf, "run-1", DEFAULTS) is None


def test_default_experiment_and_stable_run_id() -> None:
    first = resolve({"mlchaos": {}}, "run-1", DEFAULTS)
    again = resolve({"mlchaos": True}, "run-1", DEFAULTS)
    other = resolve({"mlchaos": {}}, "run-2", DEFAULTS)
    assert first is not None and again is not None and other is not None
    assert first.experiment.name == "d.nulls" and (first.gate, first.consumer) == ("g", "c")
    assert first.run_id == again.run_id != other.run_id
    assert first.seed == again.seed != other.seed


def test_named_experiment_from_the_dag_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCHAOS_RAW_ROOT", "/data/raw")
    monkeypatch.setenv("MLCHAOS_FEATURES_URL", "sqlite:////data/features.db")
    run = resolve(
        {"mlchaos": {"experiment": "outage-empty", "dry_run": True}},
        "r",
        {"experiments_file": str(EXAMPLES / "experiments.yaml")},
    )
    assert run is not None and run.dry_run
    assert run.experiment.faults[0].name == "upstream_outage"
    assert run.consumer == "train_model"


def test_inline_experiment_is_validated() -> None:
    with pytest.raises(SpecError, match="fraction"):
        resolve(
            {
                "mlchaos": {
                    "experiment": {
                        "name": "x",
                        "faults": [{"fault": "nulls", "columns": ["a"], "fraction": 3}],
                    }
                }
            },
            "r",
        )


def test_request_without_experiment_or_default_is_an_error() -> None:
    with pytest.raises(SpecError, match="name an experiment"):
        resolve({"mlchaos": {}}, "r", {})
    with pytest.raises(SpecError, match="must be a mapping"):
        resolve({"mlchaos": "nulls"}, "r", {})


# ------------------------------------------------------------------ run-time input only narrows
def _inline(tmp: Path, allowed: list[str] | None = None, **extra: object) -> dict[str, object]:
    exp: dict[str, object] = {
        "name": "inline",
        "faults": [{"fault": "upstream_outage", "target": str(tmp / "x.csv"), "mode": "missing"}],
        **extra,
    }
    if allowed is not None:
        exp["safety"] = {"allowed_targets": allowed}
    return {"mlchaos": {"experiment": exp}}


def test_run_conf_experiment_cannot_widen_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlchaos_orchestration.errors import SafetyError

    monkeypatch.delenv("MLCHAOS_ALLOWED_TARGETS", raising=False)
    monkeypatch.delenv("MLCHAOS_EXPERIMENTS_FILE", raising=False)
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    deployment = {"safety": {"allowed_targets": [str(inside)], "ttl_s": 300}}
    with pytest.raises(SafetyError, match=r"outside the deployment allowlist: refused"):
        resolve(_inline(outside, [str(outside)]), "r", deployment)
    with pytest.raises(SafetyError, match="ttl_s"):
        resolve(_inline(inside, safety={"ttl_s": 9000}), "r", deployment)
    # no deployment allowlist at all (the issue's case): any self-grant is refused
    with pytest.raises(SafetyError, match="outside the deployment allowlist"):
        resolve(_inline(outside, [str(outside)]), "r", {})
    # narrowing is fine: the experiment's allowlist REPLACES the deployment's
    run = resolve(_inline(inside, [str(inside / "sub")]), "r", deployment)
    assert run is not None
    assert run.experiment.safety.only_listed_targets
    assert run.experiment.safety.allowed_targets == [str(inside / "sub")]
    # no safety asked: the deployment's ceiling, only
    run = resolve(_inline(inside), "r", deployment)
    assert run is not None and run.experiment.safety.allowed_targets == [str(inside)]


def test_conf_experiments_file_is_bounded_but_the_dags_own_file_is_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlchaos_orchestration.errors import SafetyError

    monkeypatch.delenv("MLCHAOS_ALLOWED_TARGETS", raising=False)
    monkeypatch.delenv("MLCHAOS_EXPERIMENTS_FILE", raising=False)
    own = tmp_path / "own.yaml"
    own.write_text(
        "experiments:\n  - name: e\n    safety: {allowed_targets: ['"
        + str(tmp_path / "a")
        + "']}\n    faults: [{fault: upstream_outage, target: x, mode: missing}]\n"
    )
    rogue = tmp_path / "rogue.yaml"
    rogue.write_text(own.read_text().replace(str(tmp_path / "a"), "/"))
    defaults = {"experiments_file": str(own)}
    run = resolve({"mlchaos": {"experiment": "e"}}, "r", defaults)  # DAG code: trusted
    assert run is not None and not run.experiment.safety.only_listed_targets
    with pytest.raises(SafetyError, match="'/' is outside the deployment allowlist"):
        resolve({"mlchaos": {"experiment": "e", "experiments_file": str(rogue)}}, "r", defaults)
    with pytest.raises(SafetyError, match="outside the deployment allowlist"):  # default name
        resolve({"mlchaos": {"experiments_file": str(rogue)}}, "r", {**defaults, "experiment": "e"})


def test_gate_consumer_and_at_are_checked_against_the_dag() -> None:
    defaults = {
        **DEFAULTS,
        "inject_at": ["g"],
        "data_default": "g",
        "roots": ["root"],
        "before": None,
    }
    ids = ["root", "g", "c", "mid"]
    assert resolve({"mlchaos": {}}, "r", defaults, pipeline="d", task_ids=ids) is not None
    with pytest.raises(SpecError, match="gate 'g' is not a task of DAG 'd'"):
        resolve({"mlchaos": {}}, "r", defaults, pipeline="d", task_ids=["root", "c"])
    exp = {"name": "x", "consumer": "nope", "faults": [{"fault": "nulls", "columns": ["a"]}]}
    with pytest.raises(SpecError, match="consumer 'nope' is not a task of DAG 'd'"):
        resolve({"mlchaos": {"experiment": exp}}, "r", defaults, pipeline="d", task_ids=ids)
    for at, message in (("zzz", "at 'zzz' is not a task"), ("mid", "at 'mid' has no inject task")):
        bad = {"name": "x", "faults": [{"fault": "nulls", "columns": ["a"], "at": at}]}
        with pytest.raises(SpecError, match=message):
            resolve({"mlchaos": {"experiment": bad}}, "r", defaults, pipeline="d", task_ids=ids)
    # a root task is served by the setup inject (it runs just before the roots)
    ok = {"name": "x", "faults": [{"fault": "nulls", "columns": ["a"], "at": "root"}]}
    assert resolve({"mlchaos": {"experiment": ok}}, "r", defaults, pipeline="d", task_ids=ids)


def test_inject_points() -> None:
    from mlchaos_orchestration.airflow.runtime import inject_point
    from mlchaos_orchestration.core.experiment import parse_experiment

    exp = parse_experiment(
        {
            "name": "x",
            "faults": [
                {"fault": "nulls", "columns": ["a"]},
                {"fault": "nulls", "columns": ["a"], "at": "t2"},
                {"fault": "nulls", "columns": ["a"], "at": "root"},
                {"fault": "upstream_outage", "target": "/x", "mode": "missing"},
            ],
        }
    )
    with_gate = {"inject_at": ["g", "t2"], "data_default": "g"}
    assert [inject_point(e, with_gate) for e in exp.faults] == ["g", "t2", None, None]
    no_gate = {"inject_at": ["t2"]}
    assert [inject_point(e, no_gate) for e in exp.faults] == [None, "t2", None, None]
