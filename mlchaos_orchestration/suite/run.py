"""The resilience suite: every experiment of a matrix, on every pipeline, with a report.

On the bundled example (``mlchaos demo``, and ``mlchaos suite`` without targets) each pipeline
(plain Python, Airflow, Dagster) runs in its own worker process with its own copy of the example
data, so pipelines run concurrently without touching each other's targets; within a pipeline
experiments run one after another (they share targets). The user's own pipelines
(:mod:`.user_targets`: ``--airflow-dag``, ``--dagster-defs``, ``pipeline:``, ``targets:``) act
on the user's data: one worker after the other, nothing prepared or copied. Workers write only
to the shared ledger; the live progress display reads the ledger, so it shows exactly what the
verdicts will be computed from. The experiments file's folder is on every worker's
``PYTHONPATH``.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from mlchaos_orchestration.errors import MlchaosError

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
    duration_s: float | None
    #: the report in the configured reports location (None if none is configured)
    published: Any = None
    #: why publishing to the reports location failed (one line), if it did
    publish_error: str | None = None


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
    workers: dict[str, tuple[str, str, set[str]]] | None = None,
) -> list[dict[str, Any]]:
    """Give every (worker, experiment) pair without a verdict an ``error`` run in the ledger,
    so journal, JUnit and HTML show it: a run the worker started but never judged (its faults
    are restored first), or a run that never started. Returns the rows written.

    A worker is named by its orchestrator, unless ``workers`` maps its name to (orchestrator,
    pipeline, ids of the runs it started) - several targets of one orchestrator."""
    from mlchaos_orchestration.core.session import restore_all

    runs = ledger.list_runs(limit=100_000, suite_id=suite_id)
    written = []
    for worker_name, code in exit_codes.items():
        orchestrator, pipeline, ids = (workers or {}).get(worker_name, (worker_name, "", None))
        why = f"no verdict: worker {worker_name} exited {code}"
        mine = [
            r for r in runs if r["orchestrator"] == orchestrator and (ids is None or r["id"] in ids)
        ]
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
                    pipeline=pipeline,
                    orchestrator=orchestrator,
                    control=exp.control,
                    seed=exp.seed,
                    suite_id=suite_id,
                    meta={"experiment": exp.spec(), "synthesized": True},
                )
            reason = why if found or code else f"no verdict: worker {worker_name} never ran it"
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
    orchestrators: list[str] | None = None,
    targets: list[Any] | None = None,
    reports_dir: str | Path = "reports",
    home: Path | None = None,
    ds: str | None = None,
    project_dir: str | Path | None = None,
    on_progress: Callable[[list[dict[str, Any]], float], None] | None = None,
) -> SuiteResult:
    """Run the matrix, then write ONE report: on the user's ``targets``
    (:class:`~.user_targets.Target`, one after the other, on the run date ``ds``, default today
    UTC), else on the bundled example's pipelines named by ``orchestrators`` (concurrently, on
    copies of the example data). ``project_dir`` (default: the file's folder) is importable by
    the workers."""
    if targets:
        return _run_targets(
            experiments_file,
            targets,
            reports_dir=reports_dir,
            ds=ds,
            project_dir=project_dir,
            on_progress=on_progress,
        )
    return _run_example(
        experiments_file,
        orchestrators=orchestrators or ["airflow", "dagster"],
        reports_dir=reports_dir,
        home=home,
        project_dir=project_dir,
        on_progress=on_progress,
    )


def _worker_env(experiments_file: str | Path, project_dir: str | Path | None) -> dict[str, str]:
    from mlchaos_orchestration.settings import get_settings
    from mlchaos_orchestration.suite.user_targets import python_path

    settings = get_settings()
    folder = Path(project_dir or Path(experiments_file).resolve().parent).resolve()
    package = Path(__file__).resolve().parents[1]
    path = os.environ.get("PYTHONPATH", "")
    if not folder.is_relative_to(package):  # the bundled example's modules are no top level
        path = python_path(folder)
    env = {
        **os.environ,
        "MLCHAOS_LEDGER_URL": settings.ledger_url,
        "MLCHAOS_HOME": str(settings.data_dir),
        # the operator's file is deployment configuration: its safety is the ceiling of the
        # inline experiments the Airflow worker sends in each run's conf
        "MLCHAOS_EXPERIMENTS_FILE": str(Path(experiments_file).resolve()),
        # the user's modules next to the experiments file import in the workers
        "PYTHONPATH": path,
    }
    if not path:
        env.pop("PYTHONPATH")
    return env


def _new_suite_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def _run_example(
    experiments_file: str | Path,
    *,
    orchestrators: list[str],
    reports_dir: str | Path,
    home: Path | None,
    project_dir: str | Path | None,
    on_progress: Callable[[list[dict[str, Any]], float], None] | None,
) -> SuiteResult:
    """The example's pipelines, one worker per orchestrator, concurrently."""
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.examples.locations import ExampleConfig
    from mlchaos_orchestration.settings import get_settings
    from mlchaos_orchestration.suite.demo import demo_environment

    unknown = [o for o in orchestrators if o not in RUNNERS]
    if unknown:
        raise MlchaosError(f"unknown orchestrator(s) {unknown}; choose from {sorted(RUNNERS)}")
    settings = get_settings()
    home = home or settings.data_dir
    suite_id = _new_suite_id()
    ledger = Ledger(settings.ledger_url)
    start = time.monotonic()
    # the workers write their own copies of the sample data: none needed here
    with demo_environment(ExampleConfig.from_env(), sample_data=False) as base:
        spec = load_experiments(experiments_file)  # validate (with the env) before any run
        if "plain" in orchestrators and not spec.pipeline:
            raise MlchaosError(NO_PIPELINE)
        procs = []
        for name in orchestrators:
            root = home / "suite" / name
            cfg = ExampleConfig(
                raw_root=str(root / "raw" / "events"),
                features_url=f"sqlite:///{root / 'features.db'}",
                model_dir=str(root / "models"),
                ds=base.ds,
            )
            env = {**_worker_env(experiments_file, project_dir), **cfg.export()}
            cmd = [sys.executable, "-m", "mlchaos_orchestration.suite.run", name]
            procs.append((name, _start(cmd + [str(experiments_file), suite_id], env, root)))
        total = len(spec.experiments) * len(orchestrators)
        _prewarm_report()
        _wait([p for _, p in procs], ledger, suite_id, total, start, on_progress)
    exit_codes = {n: p.returncode for n, p in procs}
    missing = record_missing_verdicts(
        ledger, suite_id, spec.experiments, exit_codes, settings=settings
    )
    meta = {
        "orchestrators": orchestrators,
        "experiments_file": str(experiments_file),
        "worker_logs": {n: str(home / "suite" / n / "worker.log") for n in orchestrators},
        "ds": base.ds,
    }
    return _report(ledger, suite_id, meta, exit_codes, missing, reports_dir, start)


def _prewarm_report() -> None:
    """Import the report writer and matplotlib in the background while the workers run (this
    process only waits then), not after them."""
    import threading

    def load() -> None:
        for module in (
            "mlchaos_orchestration.reporting.report",
            "matplotlib.figure",
            "matplotlib.backends.backend_svg",
        ):
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001, S112 - only a head start: the report imports it again
                continue

    threading.Thread(target=load, name="mlchaos-report-prewarm", daemon=True).start()


def _wait(
    procs: list[subprocess.Popen],
    ledger: Any,
    suite_id: str,
    total: int,
    start: float,
    on_progress: Callable[[list[dict[str, Any]], float], None] | None,
) -> None:
    """Until every worker in ``procs`` exited, show progress read from the ledger (and once
    more at the end)."""
    while True:
        running = any(p.poll() is None for p in procs)
        if on_progress is not None:
            on_progress(_progress(ledger, suite_id, total), time.monotonic() - start)
        if not running:
            return
        time.sleep(0.5)


def _start(cmd: list[str], env: dict[str, str], root: Path) -> subprocess.Popen:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "worker.log").open("w") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _report(
    ledger: Any,
    suite_id: str,
    meta: dict[str, Any],
    exit_codes: dict[str, int | None],
    missing: list[dict[str, Any]],
    reports_dir: str | Path,
    start: float,
) -> SuiteResult:
    from mlchaos_orchestration.reporting.report import build_journal, write_report

    meta = {
        **meta,
        "worker_exit_codes": exit_codes,
        "missing_verdicts": len(missing),
        "crashed": bool(missing) or any(c != 0 for c in exit_codes.values()),
        "duration_s": round(time.monotonic() - start, 1),
    }
    ledger.save_suite(suite_id, meta)  # `mlchaos report` re-renders with these details
    journal = build_journal(ledger, suite_id, meta=meta)
    out = write_report(journal, reports_dir)
    result = SuiteResult(suite_id, out, journal, time.monotonic() - start)
    _publish(result)
    return result


def _publish(result: SuiteResult) -> None:
    """Copy the written report to the configured reports location, if any (a failure is kept
    on the result: the local report stays)."""
    from mlchaos_orchestration.reporting.location import reports_location

    try:
        location = reports_location()
        if location is not None:
            result.published = (location.url, location.publish(result.report_dir))
    except Exception as exc:  # noqa: BLE001 - S3 / filesystem / configuration: one line
        result.publish_error = f"publishing the report failed: {type(exc).__name__}: {exc}"


def _run_targets(
    experiments_file: str | Path,
    targets: list[Any],
    *,
    reports_dir: str | Path,
    ds: str | None,
    project_dir: str | Path | None,
    on_progress: Callable[[list[dict[str, Any]], float], None] | None,
) -> SuiteResult:
    """The user's pipelines on the user's data: a preflight of every target, then one worker
    after the other (they may share data), one report."""
    import datetime as dt

    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.settings import get_settings
    from mlchaos_orchestration.suite.user_targets import preflight

    day = ds or dt.datetime.now(dt.timezone.utc).date().isoformat()
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        raise MlchaosError(f"--ds {day!r}: not a date (YYYY-MM-DD)") from None
    settings = get_settings()
    spec = load_experiments(experiments_file)  # validate (with the env) before any run
    env = _worker_env(experiments_file, project_dir)
    preflight(targets, env)
    suite_id = _new_suite_id()
    ledger = Ledger(settings.ledger_url)
    start = time.monotonic()
    total = len(spec.experiments) * len(targets)
    exit_codes: dict[str, int | None] = {}
    workers: dict[str, tuple[str, str, set[str]]] = {}
    logs: dict[str, str] = {}
    for target in targets:
        before = {r["id"] for r in ledger.list_runs(limit=100_000, suite_id=suite_id)}
        folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", target.label)
        cmd = [sys.executable, "-m", "mlchaos_orchestration.suite.run", "--target"]
        cmd += [target.to_json(), str(experiments_file), suite_id, day]
        logs[target.label] = str(settings.data_dir / "suite" / "targets" / folder / "worker.log")
        proc = _start(cmd, env, Path(logs[target.label]).parent)
        _wait([proc], ledger, suite_id, total, start, on_progress)
        exit_codes[target.label] = proc.returncode
        after = {r["id"] for r in ledger.list_runs(limit=100_000, suite_id=suite_id)}
        workers[target.label] = (target.kind, target.pipeline, after - before)
    missing = record_missing_verdicts(
        ledger, suite_id, spec.experiments, exit_codes, settings=settings, workers=workers
    )
    meta = {
        "orchestrators": sorted({t.kind for t in targets}),
        "targets": [{**asdict(t), "describe": t.describe()} for t in targets],
        "experiments_file": str(experiments_file),
        "worker_logs": logs,
        "ds": day,
    }
    return _report(ledger, suite_id, meta, exit_codes, missing, reports_dir, start)


def _progress(ledger: Any, suite_id: str, total: int) -> list[dict[str, Any]]:
    rows = []
    for run in sorted(
        ledger.list_runs(limit=10_000, suite_id=suite_id), key=lambda r: r["started_at"]
    ):
        rows.append(
            {
                "orchestrator": run["orchestrator"],
                "pipeline": run.get("pipeline") or "",
                "experiment": run["experiment"],
                "status": run["status"],
                "verdict": run["verdict"],
                "total": total,
            }
        )
    return rows


def _main(argv: list[str]) -> int:
    """``ORCHESTRATOR FILE SUITE_ID`` (the example) or ``--target JSON FILE SUITE_ID DS``."""
    if argv[0] == "--target":
        from mlchaos_orchestration.suite.user_targets import Target, run_target

        return run_target(Target.from_json(argv[1]), argv[2], argv[3], argv[4])
    return worker(argv[0], argv[1], argv[2])


def _exit_now(code: int) -> NoReturn:
    """End an example worker without the interpreter's teardown (seconds spent freeing Airflow,
    GX and scikit-learn objects; everything the suite reads is in the ledger by now): other
    threads joined, exit handlers run and streams flushed first."""
    import atexit
    import threading

    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


if __name__ == "__main__":  # worker entry point: python -m mlchaos_orchestration.suite.run ...
    exit_code = _main(sys.argv[1:])
    if sys.argv[1] != "--target":  # the example's worker: nothing of the user's to finalize
        _exit_now(exit_code)
    sys.exit(exit_code)
