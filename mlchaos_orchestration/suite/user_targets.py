"""The user's own pipelines as suite targets: an Airflow DAG (``--airflow-dag``), Dagster
Definitions (``--dagster-defs``) and a plain Python pipeline (``pipeline:``), named on the command
line or in the experiments file's ``targets:``.

User targets act on the user's own data: no example data is prepared and nothing is copied; they
run one after another, each in its own worker process (``python -m
mlchaos_orchestration.suite.run --target ...``) whose ``PYTHONPATH`` starts with the experiments
file's folder. Before anything runs, one process checks every target (the DAG id is in the DAGs
folder, the Definitions import, the job exists, the pipeline imports) and reports the first
problem in one line.

The Airflow worker runs real ``dag.test()`` in a private Airflow home under ``MLCHAOS_HOME``
(its own migrated SQLite metadata database) whose DAGs folder is the user's; every other
``AIRFLOW__*`` / ``AIRFLOW_CONN_*`` variable of the user's environment passes through.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlchaos_orchestration.errors import MlchaosError

KINDS = ("airflow", "dagster", "plain")
#: exit code of the preflight process when a target is unusable (its one line on stdout)
EXIT_BAD_TARGET = 2
_MARK = "@@mlchaos-target@@"


@dataclass(frozen=True)
class Target:
    """One pipeline the suite runs the experiments on."""

    kind: str  #: airflow | dagster | plain
    ref: str  #: DAG id, or ``module:attribute`` of the Definitions / pipeline
    dags_folder: str | None = None
    job: str | None = None
    label: str = ""  #: the worker's name in exit codes and error rows
    url: str | None = None  #: a running Airflow's base URL (``--airflow-url``): runs via REST

    @property
    def pipeline(self) -> str:
        """The name the ledger records for the target's runs (Airflow: the DAG id)."""
        return f"{self.ref}/{self.job}" if self.job else self.ref

    def describe(self) -> str:
        if self.url:
            return f"Airflow DAG {self.ref} at {self.url}"
        if self.kind == "airflow":
            return f"Airflow DAG {self.ref} ({self.dags_folder})"
        if self.kind == "dagster":
            return f"Dagster {self.ref}" + (f" job {self.job}" if self.job else "")
        return f"pipeline {self.ref}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Target:
        return cls(**json.loads(text))


def resolve_targets(
    experiments_file: str | Path,
    spec: Any,
    *,
    airflow_dag: str | None = None,
    dags_folder: str | Path | None = None,
    dagster_defs: str | None = None,
    job: str | None = None,
    plain: bool = False,
    airflow_url: str | None = None,
) -> list[Target]:
    """The targets named by the flags or by the file's ``targets:`` (not both); ``plain`` adds
    the file's ``pipeline:``. Relative DAGs folders in the file are relative to the file."""
    if dags_folder and not airflow_dag:
        raise MlchaosError("--dags-folder needs --airflow-dag DAG_ID")
    if airflow_url and not airflow_dag:
        raise MlchaosError("--airflow-url needs --airflow-dag DAG_ID")
    if airflow_url and dags_folder:
        raise MlchaosError("--airflow-url runs the DAG where it is deployed: no --dags-folder")
    if airflow_url and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", airflow_url):
        raise MlchaosError(f"--airflow-url {airflow_url!r}: not an http(s) URL")
    if job and not dagster_defs:
        raise MlchaosError("--job needs --dagster-defs module:attribute")
    flags = bool(airflow_dag or dagster_defs)
    if spec.targets and (flags or plain):
        raise MlchaosError(
            f"{experiments_file} names its targets (targets:); give them there or with "
            "--airflow-dag / --dagster-defs / --orchestrator plain, not both"
        )
    base = Path(experiments_file).resolve().parent
    found: list[tuple[str, str, str | None, str | None]] = []
    if spec.targets:
        for entry in spec.targets:
            if entry.airflow is not None:
                folder = entry.airflow.dags_folder
                found.append(("airflow", entry.airflow.dag_id, _folder(folder, base), None))
            elif entry.dagster is not None:
                found.append(("dagster", entry.dagster.defs, None, entry.dagster.job))
            elif entry.plain is not None:
                found.append(("plain", entry.plain.pipeline or _pipeline(spec), None, None))
    else:
        if airflow_dag:
            if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,250}", airflow_dag):
                raise MlchaosError(f"--airflow-dag {airflow_dag!r}: not a DAG id")
            cwd = Path.cwd()
            folder = None if airflow_url else _folder(dags_folder, cwd)
            found.append(("airflow", airflow_dag, folder, None))
        if dagster_defs:
            _check_ref(dagster_defs, "--dagster-defs")
            found.append(("dagster", dagster_defs, None, job))
        if plain:
            found.append(("plain", _pipeline(spec), None, None))
    keys = [(k, r, f, j) for k, r, f, j in found]
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice:
        raise MlchaosError(f"targets: {twice[0]} {twice[1]} is named twice")
    kinds = [k for k, *_ in found]
    url = airflow_url.rstrip("/") if airflow_url else None
    return [
        Target(
            kind,
            ref,
            folder,
            job_name,
            kind if kinds.count(kind) == 1 else f"{kind}:{ref}",
            url=url if kind == "airflow" and not folder else None,
        )
        for kind, ref, folder, job_name in found
    ]


def _pipeline(spec: Any) -> str:
    from mlchaos_orchestration.suite.run import NO_PIPELINE

    if not spec.pipeline:
        raise MlchaosError(NO_PIPELINE)
    _check_ref(spec.pipeline, "pipeline:")
    return str(spec.pipeline)


def _check_ref(ref: str, what: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*", ref):
        raise MlchaosError(f"{what} {ref!r} must look like 'package.module:attribute'")


def _folder(folder: str | Path | None, base: Path) -> str:
    """The DAGs folder: given (relative to ``base``), else Airflow's own default
    (``$AIRFLOW__CORE__DAGS_FOLDER``, else ``$AIRFLOW_HOME/dags``)."""
    if folder is None:
        folder = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or str(
            Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "dags"
        )
    path = Path(os.path.expandvars(str(folder))).expanduser()
    path = (base / path if not path.is_absolute() else path).resolve()
    if not path.is_dir():
        raise MlchaosError(f"DAGs folder {path} is not a directory (give --dags-folder DIR)")
    return str(path)


# ---------------------------------------------------------------------- environment of workers
def airflow_home(dags_folder: str) -> Path:
    """The private Airflow home of a DAGs folder (one per folder, reused across suites)."""
    from mlchaos_orchestration.settings import get_settings

    key = hashlib.sha256(dags_folder.encode()).hexdigest()[:12]
    return get_settings().data_dir / "suite" / "airflow" / f"home-{key}"


def airflow_env(home: Path, dags_folder: str | Path) -> dict[str, str]:
    """What points an Airflow process at ``home`` (metadata DB inside it) and the DAGs folder;
    the user's other ``AIRFLOW__*`` / ``AIRFLOW_CONN_*`` settings are left as they are."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def python_path(project_dir: str | Path, env: dict[str, str] | None = None) -> str:
    """``PYTHONPATH`` with the experiments file's folder first (its modules import)."""
    current = (env if env is not None else os.environ).get("PYTHONPATH")
    return os.pathsep.join(filter(None, [str(project_dir), current]))


# ---------------------------------------------------------------------- preflight
def preflight(targets: list[Target], env: dict[str, str], timeout_s: float = 600.0) -> None:
    """Check every target in one fresh process (``env`` = the workers' environment); raise
    :class:`MlchaosError` with the first problem, in one line."""
    import subprocess

    cmd = [sys.executable, "-m", "mlchaos_orchestration.suite.user_targets", "check"]
    proc = subprocess.run(
        [*cmd, json.dumps([asdict(t) for t in targets])],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    lines = [ln[len(_MARK) :] for ln in proc.stdout.splitlines() if ln.startswith(_MARK)]
    if proc.returncode == 0 and not lines:
        return
    if lines:
        raise MlchaosError(lines[-1])
    tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-1:])[:300]
    raise MlchaosError(f"checking the targets failed (exit {proc.returncode}): {tail}")


def check_targets(targets: list[Target]) -> str | None:
    """The first problem of ``targets`` as one line, or None (runs in the preflight process)."""
    for target in targets:
        try:
            problem = _CHECKS[_dispatch(target)](target)
        except MlchaosError as exc:
            problem = _line(str(exc))
        except Exception as exc:  # noqa: BLE001 - whatever the user's code raises: one line
            problem = f"{target.describe()}: {type(exc).__name__}: {_line(str(exc))}"
        if problem:
            return problem
    return None


def _check_airflow(target: Target) -> str | None:
    assert target.dags_folder
    os.environ.update(airflow_env(airflow_home(target.dags_folder), target.dags_folder))
    airflow_home(target.dags_folder).mkdir(parents=True, exist_ok=True)
    from airflow.dag_processing.dagbag import DagBag

    from mlchaos_orchestration.airflow.runtime import SETUP_GROUP

    bag = DagBag(dag_folder=target.dags_folder)
    if target.ref in bag.dag_ids:
        dag = bag.dags.get(target.ref)  # get_dag() would ask the metadata DB
        if dag is not None and f"{SETUP_GROUP}.inject" not in dag.task_dict:
            return (
                f"DAG {target.ref!r} has no chaos tasks: call add_chaos(dag, before=..., "
                "gate=..., consumer=...) in its DAG file"
            )
        return None
    errors = "; ".join(
        f"{Path(f).name}: {_line(str(e).strip().splitlines()[-1] if str(e).strip() else '')}"
        for f, e in list(bag.import_errors.items())[:3]
    )
    found = ", ".join(sorted(bag.dag_ids)[:10]) or "none"
    return _line(
        f"no DAG {target.ref!r} in {target.dags_folder} (DAGs found: {found}"
        + (f"; import errors: {errors}" if errors else "")
        + ")"
    )


def _check_dagster(target: Target) -> str | None:
    load_definitions(target.ref)  # raises MlchaosError in one line
    if target.job:
        defs = load_definitions(target.ref)
        try:
            defs.resolve_job_def(target.job)
        except Exception:  # noqa: BLE001 - Dagster's own error is long
            jobs = ", ".join(sorted(j.name for j in defs.resolve_all_job_defs())) or "none"
            return f"--job {target.job!r}: no such job in {target.ref} (jobs: {jobs})"
    return None


def _check_plain(target: Target) -> str | None:
    # only the import: a factory is called in the worker (where a crash is an error row)
    _import_ref(target.ref, "pipeline")
    return None


def _check_airflow_rest(target: Target) -> str | None:
    from mlchaos_orchestration.suite.airflow_rest import check_rest_target

    return check_rest_target(target)


def _dispatch(target: Target) -> str:
    """The key of a target's check and runner: its kind, ``airflow_rest`` with a URL."""
    return "airflow_rest" if target.url else target.kind


_CHECKS = {
    "airflow": _check_airflow,
    "airflow_rest": _check_airflow_rest,
    "dagster": _check_dagster,
    "plain": _check_plain,
}


def _import_ref(ref: str, what: str) -> Any:
    import importlib

    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - ImportError or the module's own error
        raise MlchaosError(
            f"{what} {ref}: cannot import {module_name!r}: {type(exc).__name__}: {_line(str(exc))}"
            " (the experiments file's folder is importable; is the module there?)"
        ) from None
    if not hasattr(module, attr):
        raise MlchaosError(f"{what} {ref}: module {module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)


def load_definitions(ref: str) -> Any:
    """The Definitions at ``module:attribute`` (an object, or a zero-argument factory)."""
    import dagster as dg

    obj = _import_ref(ref, "--dagster-defs")
    if callable(obj) and not isinstance(obj, dg.Definitions):
        obj = obj()
    if not isinstance(obj, dg.Definitions):
        raise MlchaosError(f"--dagster-defs {ref}: is a {type(obj).__name__}, not Definitions")
    return obj


def _line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ---------------------------------------------------------------------- worker
def run_target(target: Target, experiments_file: str, suite_id: str, ds: str) -> int:
    """Run every experiment of the file on ``target``, one after the other (in this process);
    1 if one of them raised."""
    from mlchaos_orchestration.core.experiment import load_experiments

    spec = load_experiments(experiments_file)
    run_one = _RUNNERS[_dispatch(target)](target, experiments_file, ds)
    failures = 0
    for exp in spec.experiments:
        try:
            run_one(exp, suite_id)
        except Exception as exc:  # noqa: BLE001 - one broken experiment must not stop the suite
            failures += 1
            print(f"{target.label}: {exp.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1 if failures else 0


def _airflow_runner(target: Target, experiments_file: str, ds: str) -> Any:
    from mlchaos_orchestration.suite.airflow_worker import logical_date, prepare_airflow_home

    assert target.dags_folder
    prepare_airflow_home(airflow_home(target.dags_folder), Path(target.dags_folder))
    from mlchaos_orchestration.airflow.dagtest import run

    def one(exp: Any, suite_id: str) -> Any:
        conf = {"mlchaos": {"experiment": exp.spec(), "suite_id": suite_id}}
        return run(target.ref, conf, logical_date(ds, suite_id))

    return one


def _dagster_runner(target: Target, experiments_file: str, ds: str) -> Any:
    from mlchaos_orchestration.dagster import run_experiment_dagster, with_chaos
    from mlchaos_orchestration.dagster.runner import META_SENSOR

    defs = load_definitions(target.ref)
    if META_SENSOR not in (defs.metadata or {}):  # not wrapped by the user: wrap it here
        defs = with_chaos(defs, experiments_file=experiments_file, pipeline=target.pipeline)
    job = defs.resolve_job_def(target.job) if target.job else None
    job = job or defs.resolve_implicit_global_asset_job_def()
    partition_key = ds if job.partitions_def is not None else None

    def one(exp: Any, suite_id: str) -> Any:
        return run_experiment_dagster(
            defs,
            exp,
            partition_key=partition_key,
            ds=ds,
            job_name=target.job,
            pipeline=target.pipeline,
            suite_id=suite_id,
        )

    return one


def _plain_runner(target: Target, experiments_file: str, ds: str) -> Any:
    from mlchaos_orchestration.core.pipeline import load_pipeline
    from mlchaos_orchestration.core.runner import run_experiment

    pipeline = load_pipeline(target.ref)

    def one(exp: Any, suite_id: str) -> Any:
        return run_experiment(pipeline, exp, ds=ds, suite_id=suite_id).verdict

    return one


def _airflow_rest_runner(target: Target, experiments_file: str, ds: str) -> Any:
    from mlchaos_orchestration.suite.airflow_rest import rest_runner

    return rest_runner(target, experiments_file, ds)


_RUNNERS = {
    "airflow": _airflow_runner,
    "airflow_rest": _airflow_rest_runner,
    "dagster": _dagster_runner,
    "plain": _plain_runner,
}


def main(argv: list[str]) -> int:
    """``python -m mlchaos_orchestration.suite.user_targets check TARGETS_JSON``."""
    if len(argv) != 2 or argv[0] != "check":
        print("usage: python -m mlchaos_orchestration.suite.user_targets check JSON")
        return 64
    targets = [Target(**t) for t in json.loads(argv[1])]
    try:
        problem = check_targets(targets)
    except MlchaosError as exc:
        problem = _line(str(exc))
    if problem:
        sys.stdout.write("\n" + _MARK + problem + "\n")
        return EXIT_BAD_TARGET
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
