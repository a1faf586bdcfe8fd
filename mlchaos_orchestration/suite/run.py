"""The resilience suite: every experiment of a matrix, on every pipeline, with a report.

Each pipeline (plain Python, Airflow, Dagster) runs in its own worker process with its own copy of
the example data, so pipelines run concurrently without touching each other's targets; within a
pipeline experiments run one after another (they share targets). Workers write only to the
shared ledger; the live progress display reads the ledger, so it shows exactly what the verdicts
will be computed from.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlchaos_orchestration.errors import MlchaosError

REPO_ROOT = Path(__file__).resolve().parents[2]

#: orchestrator -> "module:function" running one experiment:
#: ``fn(exp, *, suite_id, config) -> verdict dict`` (records the run in the ledger).
RUNNERS = {
    "plain": "mlchaos_orchestration.suite.run:run_plain",
    "airflow": "mlchaos_orchestration.suite.airflow_worker:run_one",
    "dagster": "mlchaos_orchestration.suite.dagster_worker:run_one",
}


@dataclass
class SuiteResult:
    """Where the report went and the verdict rows."""

    suite_id: str
    report_dir: Path
    journal: dict[str, Any]
    duration_s: float


def run_plain(exp: Any, *, suite_id: str, config: Any, pipeline: str | None = None) -> dict:
    """Run one experiment with the plain Python runner on the file's ``pipeline:``
    (``module:attribute``; a factory is called in this worker, with the suite's config in the
    environment)."""
    from mlchaos_orchestration.core.pipeline import load_pipeline
    from mlchaos_orchestration.core.runner import run_experiment

    if not pipeline:
        raise MlchaosError(NO_PIPELINE)
    result = run_experiment(load_pipeline(pipeline), exp, ds=config.ds, suite_id=suite_id)
    return result.verdict


NO_PIPELINE = (
    "--orchestrator plain needs the file's 'pipeline: module:attribute' (the plain Python "
    "pipeline to run); this file has none"
)
#: exit code of ``mlchaos suite`` when a worker crashed or an experiment produced no verdict
EXIT_NO_VERDICT = 3


def worker(orchestrator: str, experiments_file: str, suite_id: str) -> int:
    """Run every experiment of the file on one orchestrator (in this process)."""
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.examples.locations import ExampleConfig, prepare

    spec = load_experiments(experiments_file)
    config = ExampleConfig.from_env()
    prepare(config)
    run_one = _load(RUNNERS[orchestrator])
    extra = {"pipeline": spec.pipeline} if orchestrator == "plain" else {}
    failures = 0
    for exp in spec.experiments:
        try:
            run_one(exp, suite_id=suite_id, config=config, **extra)
        except Exception as exc:  # noqa: BLE001 - one broken experiment must not stop the suite
            failures += 1
            print(f"{orchestrator}: {exp.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1 if failures else 0


def record_missing_verdicts(
    ledger: Any,
    suite_id: str,
    experiments: list[Any],
    exit_codes: dict[str, int | None],
    *,
    settings: Any = None,
) -> list[dict[str, Any]]:
    """Give every (orchestrator, experiment) pair without a verdict an ``error`` run in the
    ledger, so journal, JUnit and HTML show it: a run the worker started but never judged (its
    faults are restored first), or a run that never started. Returns the rows written."""
    from mlchaos_orchestration.core.session import restore_all

    runs = ledger.list_runs(limit=100_000, suite_id=suite_id)
    written = []
    for orchestrator, code in exit_codes.items():
        why = f"no verdict: worker {orchestrator} exited {code}"
        mine = [r for r in runs if r["orchestrator"] == orchestrator]
        for exp in experiments:
            found = [r for r in mine if r["experiment"] == exp.name]
            judged = [r for r in found if r.get("verdict")]
            if judged:
                continue
            if found:
                run_id = found[-1]["id"]
                restore_all(ledger, run_id=run_id, settings=settings, reason="worker died")
            else:
                run_id = ledger.start_run(
                    exp.name,
                    pipeline="",
                    orchestrator=orchestrator,
                    control=exp.control,
                    seed=exp.seed,
                    suite_id=suite_id,
                    meta={"experiment": exp.spec(), "synthesized": True},
                )
            reason = why if found or code else f"no verdict: worker {orchestrator} never ran it"
            if found:
                reason += " during this run"
            verdict = {"verdict": "error", "reason": reason, "control": exp.control}
            ledger.record(run_id, "error", source="suite", message=reason)
            ledger.set_verdict(run_id, verdict)
            ledger.end_run(run_id, "crashed")
            written.append({"orchestrator": orchestrator, "experiment": exp.name, **verdict})
    return written


def _load(ref: str) -> Callable[..., Any]:
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def run_suite(
    experiments_file: str | Path,
    *,
    orchestrators: list[str],
    reports_dir: str | Path = "reports",
    home: Path | None = None,
    on_progress: Callable[[list[dict[str, Any]], float], None] | None = None,
) -> SuiteResult:
    """Run the matrix on each orchestrator concurrently, then write the report."""
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.examples.locations import ExampleConfig
    from mlchaos_orchestration.reporting.report import build_journal, write_report
    from mlchaos_orchestration.settings import get_settings
    from mlchaos_orchestration.suite.demo import demo_environment

    unknown = [o for o in orchestrators if o not in RUNNERS]
    if unknown:
        raise MlchaosError(f"unknown orchestrator(s) {unknown}; choose from {sorted(RUNNERS)}")
    settings = get_settings()
    if "plain" in orchestrators and not load_experiments(experiments_file).pipeline:
        raise MlchaosError(NO_PIPELINE)
    home = home or settings.data_dir
    suite_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    ledger = Ledger(settings.ledger_url)
    start = time.monotonic()
    with demo_environment(ExampleConfig.from_env()) as base:
        spec = load_experiments(experiments_file)  # validate (with the env) before any run
        procs = []
        for name in orchestrators:
            root = home / "suite" / name
            cfg = ExampleConfig(
                raw_root=str(root / "raw" / "events"),
                features_url=f"sqlite:///{root / 'features.db'}",
                model_dir=str(root / "models"),
                ds=base.ds,
            )
            env = {
                **os.environ,
                **cfg.export(),
                "MLCHAOS_LEDGER_URL": settings.ledger_url,
                "MLCHAOS_HOME": str(settings.data_dir),
                # the operator's file is deployment configuration: its safety is the ceiling of
                # the inline experiments the Airflow worker sends in each run's conf
                "MLCHAOS_EXPERIMENTS_FILE": str(Path(experiments_file).resolve()),
                # the example projects (dags/, dagster_defs/) live at the repo root
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
                ),
            }
            log = root / "worker.log"
            root.mkdir(parents=True, exist_ok=True)
            procs.append(
                (
                    name,
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "mlchaos_orchestration.suite.run",
                            name,
                            str(experiments_file),
                            suite_id,
                        ],
                        env=env,
                        stdout=log.open("w"),
                        stderr=subprocess.STDOUT,
                    ),
                )
            )
        total = len(spec.experiments) * len(orchestrators)
        while any(p.poll() is None for _, p in procs):
            if on_progress is not None:
                on_progress(_progress(ledger, suite_id, total), time.monotonic() - start)
            time.sleep(0.5)
        if on_progress is not None:
            on_progress(_progress(ledger, suite_id, total), time.monotonic() - start)
    exit_codes = {n: p.returncode for n, p in procs}
    missing = record_missing_verdicts(
        ledger, suite_id, spec.experiments, exit_codes, settings=settings
    )
    journal = build_journal(
        ledger,
        suite_id,
        meta={
            "orchestrators": orchestrators,
            "experiments_file": str(experiments_file),
            "worker_exit_codes": exit_codes,
            "missing_verdicts": len(missing),
            "crashed": bool(missing) or any(c != 0 for c in exit_codes.values()),
        },
    )
    journal["duration_s"] = round(time.monotonic() - start, 1)
    out = write_report(journal, reports_dir)
    return SuiteResult(suite_id, out, journal, time.monotonic() - start)


def _progress(ledger: Any, suite_id: str, total: int) -> list[dict[str, Any]]:
    rows = []
    for run in sorted(
        ledger.list_runs(limit=10_000, suite_id=suite_id), key=lambda r: r["started_at"]
    ):
        rows.append(
            {
                "orchestrator": run["orchestrator"],
                "experiment": run["experiment"],
                "status": run["status"],
                "verdict": run["verdict"],
                "total": total,
            }
        )
    return rows


if __name__ == "__main__":  # worker entry point: python -m mlchaos_orchestration.suite.run ...
    sys.exit(worker(sys.argv[1], sys.argv[2], sys.argv[3]))
