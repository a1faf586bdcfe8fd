"""The user's targets of ``mlchaos suite`` without running an orchestrator: the ``targets:`` key
of the experiments file, flags vs file, one-line errors, the preflight of imports, error rows per
target, and the example's DAG folder independent of the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlchaos_orchestration.core.experiment import load_experiments
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.errors import MlchaosError, SpecError
from mlchaos_orchestration.suite.user_targets import Target, preflight, resolve_targets

MLCHAOS = [sys.executable, "-m", "mlchaos_orchestration.cli"]
BASE = {"version": 1, "experiments": [{"name": "control", "control": True}]}


def _spec(**extra: object) -> object:
    return load_experiments({**BASE, **extra})


def test_targets_key_is_validated_with_paths() -> None:
    spec = load_experiments(
        {
            **BASE,
            "targets": [
                {"airflow": {"dag_id": "orders", "dags_folder": "dags"}},
                {"dagster": "pkg.mod:defs"},
                {"plain": {}},
            ],
        }
    )
    assert spec.targets is not None
    assert spec.targets[0].airflow is not None and spec.targets[0].airflow.dag_id == "orders"
    assert spec.targets[1].dagster is not None and spec.targets[1].dagster.defs == "pkg.mod:defs"
    cases = {
        "targets[0]: give exactly one of airflow, dagster, plain": [{"airflow": "a", "plain": {}}],
        "targets[0].dagster.defs: must look like 'package.module:attribute'": [{"dagster": "x"}],
        "targets[0].airflow.dag_id: required": [{"airflow": {"dags_folder": "d"}}],
        "targets[0].kubernetes: unknown field": [{"kubernetes": {}}],
    }
    for message, targets in cases.items():
        with pytest.raises(SpecError) as err:
            load_experiments({**BASE, "targets": targets})
        assert err.value.problems == [message]


def test_flags_and_file_targets_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dags").mkdir()
    exp = tmp_path / "exp.yaml"
    spec = _spec(
        pipeline="own:build",
        targets=[
            {"airflow": {"dag_id": "a", "dags_folder": "dags"}},
            {"airflow": {"dag_id": "b", "dags_folder": "${DAGS_HERE}"}},
            {"dagster": {"defs": "mod:defs", "job": "daily"}},
            {"plain": {}},
        ],
    )
    monkeypatch.setenv("DAGS_HERE", str(tmp_path / "dags"))
    targets = resolve_targets(exp, spec)
    assert [(t.kind, t.ref, t.label) for t in targets] == [
        ("airflow", "a", "airflow:a"),
        ("airflow", "b", "airflow:b"),
        ("dagster", "mod:defs", "dagster"),
        ("plain", "own:build", "plain"),
    ]
    assert targets[0].dags_folder == str((tmp_path / "dags").resolve())  # relative to the file
    assert targets[2].pipeline == "mod:defs/daily"
    assert Target.from_json(targets[2].to_json()) == targets[2]

    monkeypatch.chdir(tmp_path)
    flags = resolve_targets(exp, _spec(), airflow_dag="a", dags_folder="dags", dagster_defs="m:d")
    assert [(t.kind, t.label, t.dags_folder) for t in flags] == [
        ("airflow", "airflow", str((tmp_path / "dags").resolve())),
        ("dagster", "dagster", None),
    ]
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path / "dags"))
    assert resolve_targets(exp, _spec(), airflow_dag="a")[0].dags_folder == str(tmp_path / "dags")


@pytest.mark.parametrize(
    ("kwargs", "extra", "message"),
    [
        ({"dagster_defs": "m:d"}, {"targets": [{"dagster": "m:d"}]}, "not both"),
        ({"plain": True}, {"targets": [{"dagster": "m:d"}]}, "not both"),
        ({"job": "j"}, {}, "--job needs --dagster-defs"),
        ({"dags_folder": "x"}, {}, "--dags-folder needs --airflow-dag"),
        ({"dagster_defs": "nocolon"}, {}, "must look like 'package.module:attribute'"),
        ({"airflow_dag": "a b"}, {}, "not a DAG id"),
        ({"airflow_dag": "a", "dags_folder": "/nonexistent"}, {}, "is not a directory"),
        ({"plain": True}, {}, "needs the file's 'pipeline: module:attribute'"),
        ({"dagster_defs": "m:d"}, {"targets": [{"dagster": "m:d"}, {"dagster": "m:d"}]}, "not"),
        ({}, {"targets": [{"dagster": "m:d"}, {"dagster": "m:d"}]}, "named twice"),
    ],
)
def test_bad_target_combinations_are_one_line(
    tmp_path: Path, kwargs: dict, extra: dict, message: str
) -> None:
    with pytest.raises(MlchaosError) as err:
        resolve_targets(tmp_path / "exp.yaml", _spec(**extra), **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_preflight_reports_what_does_not_import(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(
        "import dagster as dg\n"
        "defs = dg.Definitions()\n"
        "def factory():\n    return dg.Definitions()\n"
        "not_defs = 3\n"
        "def build():\n    raise SystemExit('factories are called in the worker only')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    preflight(
        [
            Target("dagster", "mine:defs", label="dagster:mine:defs"),
            Target("dagster", "mine:factory", label="dagster:mine:factory"),
            Target("plain", "mine:build", label="plain"),
        ],
        env,
    )
    cases = {
        "mine:nothing": "--dagster-defs mine:nothing: module 'mine' has no attribute 'nothing'",
        "mine:not_defs": "--dagster-defs mine:not_defs: is a int, not Definitions",
        "absent:defs": "--dagster-defs absent:defs: cannot import 'absent'",
    }
    for ref, message in cases.items():
        with pytest.raises(MlchaosError) as err:
            preflight([Target("dagster", ref, label="dagster")], env)
        assert str(err.value).startswith(message), err.value
    with pytest.raises(MlchaosError, match=r"--job 'hourly': no such job in mine:defs"):
        preflight([Target("dagster", "mine:defs", job="hourly", label="dagster")], env)


def test_cli_refuses_mixed_modes_in_one_line(tmp_path: Path) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text("version: 1\nexperiments: [{name: control, control: true}]\n")
    runs = {
        "--orchestrator names the bundled example": ["--airflow-dag", "a", "--orchestrator", "a"],
        "--ds is the run date of your pipelines": ["--ds", "2026-01-01"],
        "--job needs --dagster-defs": ["--job", "daily"],
    }
    env = {**os.environ, "MLCHAOS_HOME": str(tmp_path / "home")}
    for message, args in runs.items():
        out = subprocess.run(
            [*MLCHAOS, "suite", str(exp), *args], capture_output=True, text=True, env=env
        )
        assert out.returncode == 1, (args, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, out.stderr)
    assert not (tmp_path / "home").exists()  # nothing ran


def test_missing_verdicts_are_per_target(tmp_path: Path) -> None:
    """Two targets of one orchestrator: each worker's error rows name that worker and only its
    own runs count as judged."""
    from mlchaos_orchestration.suite.run import record_missing_verdicts

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    exp = load_experiments(BASE).experiments[0]
    judged = ledger.start_run("control", pipeline="a", orchestrator="airflow", suite_id="s")
    ledger.set_verdict(judged, {"verdict": "clean"})
    written = record_missing_verdicts(
        ledger,
        "s",
        [exp],
        {"airflow:a": 0, "airflow:b": -9},
        workers={"airflow:a": ("airflow", "a", {judged}), "airflow:b": ("airflow", "b", set())},
    )
    assert written == [
        {
            "orchestrator": "airflow",
            "experiment": "control",
            "verdict": "error",
            "reason": "no verdict: worker airflow:b exited -9",
            "control": True,
        }
    ]
    pipelines = {r["pipeline"]: r["verdict"] for r in ledger.list_runs(suite_id="s")}
    assert pipelines == {"a": "clean", "b": "error"}


def test_example_airflow_target_needs_no_repository(tmp_path: Path) -> None:
    """The example DAG runs from a one-line file under MLCHAOS_HOME, and no worker gets the
    repository on its PYTHONPATH (an installed wheel runs ``mlchaos demo`` anywhere)."""
    from mlchaos_orchestration.suite import run
    from mlchaos_orchestration.suite.airflow_worker import example_dags_folder

    folder = example_dags_folder(tmp_path / "suite" / "airflow")
    assert [p.name for p in folder.iterdir()] == ["feature_pipeline.py"]
    code = (folder / "feature_pipeline.py").read_text()
    assert "from mlchaos_orchestration.examples.dag import dag" in code
    assert "airflow" in code and "dag" in code  # Airflow's DAG discovery safe mode
    env = run._worker_env(tmp_path / "exp.yaml", None)
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    assert env["PYTHONPATH"].split(os.pathsep) == [str(tmp_path.resolve()), *inherited]
    from mlchaos_orchestration.suite.demo import EXPERIMENTS_PATH

    # the bundled example's folder holds package modules: never put on the path as top level
    assert run._worker_env(EXPERIMENTS_PATH, None).get("PYTHONPATH", "") == os.environ.get(
        "PYTHONPATH", ""
    )


def test_each_suite_gets_its_own_airflow_run_on_the_same_day() -> None:
    """dag.test() names a run after its logical date and the ledger names a chaos run after the
    Airflow run: two suites on the same day must not share ledger runs."""
    import datetime as dt

    from mlchaos_orchestration.suite.airflow_worker import logical_date

    first, second = logical_date("2026-11-20", "suite-1"), logical_date("2026-11-20", "suite-2")
    assert first != second and first == logical_date("2026-11-20", "suite-1")
    for value in (first, second):
        when = dt.datetime.fromisoformat(value)
        assert when.date() == dt.date(2026, 11, 20) and when.second == 0 and when.microsecond
