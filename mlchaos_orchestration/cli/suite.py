"""``mlchaos suite``, ``mlchaos demo`` and ``mlchaos report``, registered on the main CLI app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mlchaos_orchestration.cli.commands import app

DEFAULT_ORCHESTRATORS = "airflow,dagster"
#: the bundled example's plain pipeline (its file's ``pipeline:``)
EXAMPLE_PIPELINE = "mlchaos_orchestration.examples.plain:build_pipeline"


def _live_suite(file: Path, *, reports_dir: Path, **kwargs: Any) -> Any:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from mlchaos_orchestration.suite.run import run_suite

    console = Console(stderr=True)

    def render(rows: list[dict[str, Any]], elapsed: float) -> Table:
        total = rows[0]["total"] if rows else "?"
        done = sum(1 for r in rows if r["verdict"])
        current = next((r for r in reversed(rows) if not r["verdict"]), None)
        title = (
            f"experiment {min(done + 1, total) if isinstance(total, int) else done}/{total}"
            f" · {elapsed:.0f} s"
            + (f" · running {current['orchestrator']}: {current['experiment']}" if current else "")
        )
        table = Table(title=title, title_justify="left")
        for col in ("orchestrator", "pipeline", "experiment", "verdict"):
            table.add_column(col)
        for r in rows[-30:]:
            table.add_row(
                r["orchestrator"], r.get("pipeline") or "", r["experiment"], r["verdict"] or "…"
            )
        return table

    with Live(
        render([], 0), console=console, refresh_per_second=2, transient=not console.is_terminal
    ) as live:
        result = run_suite(
            file,
            reports_dir=reports_dir,
            on_progress=lambda rows, t: live.update(render(rows, t)),
            **kwargs,
        )
    return result


def _print_scorecard(result: Any) -> None:
    journal = result.journal
    for target in (journal.get("meta") or {}).get("targets") or []:
        typer.echo(f"target {target['label']}: {target['describe']}")
    width = max([22, *(len(r["experiment"]) for r in journal["runs"])])
    typer.echo(
        f"{'orchestrator':<9} {'experiment':<{width}} {'verdict':<12} {'expected':<10} "
        f"{'detect s':>8} {'alert s':>8}"
    )
    for r in journal["runs"]:
        mark = "" if r["expect"] in (None, r["verdict"]) else "  (unexpected)"
        det = "-" if r["detection_latency_s"] is None else f"{r['detection_latency_s']:.2f}"
        alr = "-" if r["alert_latency_s"] is None else f"{r['alert_latency_s']:.2f}"
        typer.echo(
            f"{r['orchestrator']:<9} {r['experiment']:<{width}} {r['verdict']:<12} "
            f"{r['expect'] or '-':<10} {det:>8} {alr:>8}{mark}"
        )
    mut = journal["mutation"]
    typer.echo(
        f"resilience score: {journal['resilience_score']}  "
        f"gate mutation score: {mut['killed']}/{mut['mutants']}"
    )
    for s in mut["survivors"][:10]:
        why = f"  ({s['why']})" if s.get("why") else ""
        fix = f"add {s['expectation']}" if s.get("expectation") else "no data check suggested"
        typer.echo(f"  survived: {s['experiment']}: {s['what']} -> {fix}{why}")
    took = f"  ({result.duration_s:.0f} s)" if result.duration_s is not None else ""
    typer.echo(f"report: {result.report_dir}{took}")
    if getattr(result, "published", None):
        url, published = result.published
        typer.echo(f"published: {url.rstrip('/')}/{published.name}")
    if getattr(result, "publish_error", None):
        typer.echo(f"error: {result.publish_error}", err=True)


def _fail_on(value: str) -> set[str]:
    from mlchaos_orchestration.core.verdict import parse_fail_on

    try:
        return parse_fail_on(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _exit_for(result: Any, fail_on: str) -> None:
    """Exit 3 when a worker crashed or an experiment produced no verdict (whatever --fail-on
    says), 1 when a verdict is in --fail-on, else 0."""
    from mlchaos_orchestration.core.verdict import fails
    from mlchaos_orchestration.suite.run import EXIT_NO_VERDICT

    meta = result.journal.get("meta") or {}
    if meta.get("crashed"):
        codes = ", ".join(
            f"{k} exited {v}" for k, v in (meta.get("worker_exit_codes") or {}).items()
        )
        bad = [n for n, c in (meta.get("worker_exit_codes") or {}).items() if c]
        logs = ", ".join((meta.get("worker_logs") or {}).get(n, "") for n in bad)
        typer.echo(
            f"error: {meta.get('missing_verdicts', 0)} experiment(s) without a verdict "
            f"({codes}): exit {EXIT_NO_VERDICT}" + (f" (worker log: {logs})" if logs else ""),
            err=True,
        )
        raise typer.Exit(EXIT_NO_VERDICT)
    bad = _fail_on(fail_on)
    if bad and any(fails(r, bad) for r in result.journal["runs"]):
        raise typer.Exit(1)
    if getattr(result, "publish_error", None):  # a configured location that got nothing
        raise typer.Exit(1)


@app.command()
def suite(
    file: Path = typer.Argument(..., help="experiments YAML"),
    airflow_dag: str = typer.Option(
        "",
        "--airflow-dag",
        help="your Airflow DAG id: real dag.test() runs in a private Airflow home whose DAGs "
        "folder is yours (your AIRFLOW__* / AIRFLOW_CONN_* variables pass through)",
    ),
    dags_folder: Path | None = typer.Option(
        None,
        "--dags-folder",
        help="the folder holding your DAG file (default $AIRFLOW__CORE__DAGS_FOLDER, else "
        "$AIRFLOW_HOME/dags)",
    ),
    airflow_url: str = typer.Option(
        "",
        "--airflow-url",
        help="run --airflow-dag in a running Airflow through its REST API (trigger, wait, read "
        "the verdicts from the shared ledger); it must read FILE at the same path",
    ),
    airflow_user: str = typer.Option(
        "", "--airflow-user", help="user for --airflow-url (or $MLCHAOS_AIRFLOW_USER)"
    ),
    airflow_password: str = typer.Option(
        "",
        "--airflow-password",
        help="password for --airflow-url (or $MLCHAOS_AIRFLOW_PASSWORD; a JWT in "
        "$MLCHAOS_AIRFLOW_TOKEN instead of user and password)",
    ),
    dagster_defs: str = typer.Option(
        "", "--dagster-defs", help="your Dagster Definitions: module:attribute (or a factory)"
    ),
    job: str = typer.Option("", "--job", help="the Dagster job to run (default: all assets)"),
    ds: str = typer.Option(
        "", "--ds", help="run date YYYY-MM-DD of your pipelines (default: today, UTC)"
    ),
    orchestrator: str = typer.Option(
        "",
        help="comma list: plain, airflow, dagster (default airflow,dagster): the bundled "
        "example's pipelines; 'plain' runs the file's pipeline:",
    ),
    reports_dir: Path = typer.Option(Path("reports"), help="where reports go"),
    fail_on: str = typer.Option(
        "",
        help="verdicts that make the exit code 1, e.g. silent,unalerted,gate_crashed "
        "('default' = silent,unalerted,false_alarm,error,gate_crashed; an 'unalerted' run "
        "declared alert: {expected: false} counts only with 'unalerted!'). Exit code 3 "
        "(always, whatever --fail-on says): a worker crashed or an experiment produced no "
        "verdict; those rows are 'error' in journal, JUnit and HTML.",
    ),
    sweep: str = typer.Option("", help="experiment to run at a range of intensities"),
    intensities: str = typer.Option("", help="comma list for --sweep (default 0.001..0.5)"),
) -> None:
    """Run the resilience suite: control + every experiment on each pipeline, then report.

    Your pipelines: --airflow-dag / --dagster-defs, the file's targets: list, or --orchestrator
    plain (the file's pipeline:); the modules next to FILE import. Without them: the bundled
    example's pipelines."""
    _fail_on(fail_on)  # refuse a misspelled verdict before anything runs
    _airflow_credentials(airflow_user, airflow_password)
    how = _targets(file, orchestrator, airflow_dag, dags_folder, dagster_defs, job, ds, airflow_url)
    if sweep:
        _run_sweep(file, sweep, intensities, reports_dir, how)
        return
    result = _live_suite(file, reports_dir=reports_dir, **how)
    _print_scorecard(result)
    _exit_for(result, fail_on)


def _airflow_credentials(user: str, password: str) -> None:
    """``--airflow-user`` / ``--airflow-password`` for the workers (environment, not argv)."""
    import os

    from mlchaos_orchestration.suite.airflow_rest import PASSWORD_ENV, USER_ENV

    for var, value in ((USER_ENV, user), (PASSWORD_ENV, password)):
        if value:
            os.environ[var] = value


def _raw_mapping(file: Path) -> dict[str, Any]:
    """The experiments file's top-level mapping, read as YAML only (no validation)."""
    import yaml

    from mlchaos_orchestration.errors import SpecError

    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError([f"{file}: {type(exc).__name__}: {exc}"]) from None
    return raw if isinstance(raw, dict) else {}


def _targets(
    file: Path,
    orchestrator: str,
    airflow_dag: str,
    dags_folder: Path | None,
    dagster_defs: str,
    job: str,
    ds: str,
    airflow_url: str = "",
) -> dict[str, Any]:
    """``run_suite`` keywords: the user's targets (flags, ``targets:``, or ``--orchestrator
    plain`` on the file's own pipeline), else the example's orchestrators."""
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.errors import MlchaosError
    from mlchaos_orchestration.suite.user_targets import resolve_targets

    orchestrators = [o.strip() for o in orchestrator.split(",") if o.strip()]
    raw = _raw_mapping(file)  # the example's ${VAR}s are only set once its environment is up
    flags = bool(airflow_dag or dagster_defs or airflow_url)
    pipeline = raw.get("pipeline")
    own_plain = orchestrators == ["plain"] and pipeline not in (None, EXAMPLE_PIPELINE)
    if not (flags or raw.get("targets") or own_plain):
        if dags_folder:
            raise MlchaosError("--dags-folder needs --airflow-dag DAG_ID")
        if job:
            raise MlchaosError("--job needs --dagster-defs module:attribute")
        if ds:
            raise MlchaosError("--ds is the run date of your pipelines: give a target too")
        return {"orchestrators": orchestrators or DEFAULT_ORCHESTRATORS.split(",")}
    if orchestrators and orchestrators != ["plain"]:
        raise MlchaosError(
            "--orchestrator names the bundled example's pipelines; with your own targets "
            "(--airflow-dag, --dagster-defs, targets:) only --orchestrator plain (the file's "
            "pipeline:) can be added"
        )
    spec = load_experiments(file)  # your pipelines: validated now, with your environment
    targets = resolve_targets(
        file,
        spec,
        airflow_dag=airflow_dag or None,
        dags_folder=dags_folder,
        dagster_defs=dagster_defs or None,
        job=job or None,
        plain=orchestrators == ["plain"],
        airflow_url=airflow_url or None,
    )
    return {"orchestrators": None, "targets": targets, "ds": ds or None}


def _run_sweep(
    file: Path, experiment: str, intensities: str, reports_dir: Path, how: dict[str, Any]
) -> None:
    import json
    import tempfile

    from mlchaos_orchestration.reporting.report import html_report
    from mlchaos_orchestration.reporting.sweep import DEFAULT_INTENSITIES, summarise, sweep_file

    try:
        values = [float(v) for v in intensities.split(",") if v.strip()] or list(
            DEFAULT_INTENSITIES
        )
    except ValueError:
        raise typer.BadParameter("--intensities must be a comma list of numbers") from None
    impact = None  # what a label fault does to the example's model (not known for yours)
    with tempfile.TemporaryDirectory() as tmp:
        if how.get("targets"):
            path = sweep_file(file, experiment, values, Path(tmp) / "sweep.yaml")
        else:  # the example's file: its ${VAR}s come from the example's environment
            from mlchaos_orchestration.reporting.impact import experiment_impact
            from mlchaos_orchestration.suite.demo import example_variables

            with example_variables():
                path = sweep_file(file, experiment, values, Path(tmp) / "sweep.yaml")
                impact = experiment_impact(file, experiment, values)
        result = _live_suite(
            path, reports_dir=reports_dir, project_dir=file.resolve().parent, **how
        )
    result.journal["sweep"] = summarise(result.journal, experiment)
    if impact:
        result.journal["sweep"]["impact"] = impact
    (result.report_dir / "journal.json").write_text(
        json.dumps(result.journal, indent=2, default=str)
    )
    (result.report_dir / "report.html").write_text(html_report(result.journal))
    if result.published:  # the location gets the report with its sweep section
        from mlchaos_orchestration.reporting.location import reports_location

        url, published = result.published
        reports_location(url).publish(result.report_dir, name=published.name)  # type: ignore[union-attr]
    for orch, minimum in result.journal["sweep"]["minimum_detected"].items():
        typer.echo(f"{orch}: minimum intensity detected for {experiment}: {minimum}")
    if impact:
        from mlchaos_orchestration.reporting.impact import detection_note

        note = detection_note(impact, result.journal["sweep"]["minimum_detected"])
        typer.echo(f"model impact: {note}")
    typer.echo(f"report: {result.report_dir}")


@app.command()
def demo(
    orchestrator: str = typer.Option(DEFAULT_ORCHESTRATORS, help="comma list"),
    reports_dir: Path = typer.Option(Path("reports")),
) -> None:
    """The main job: the example resilience suite on embedded defaults (SQLite + local files).
    Exits 1 when the example itself misbehaves (a control run halted, a gate crashed, an
    error), 3 when an experiment got no verdict; the example's expected ``silent`` rows pass."""
    import importlib.util
    import tempfile

    from mlchaos_orchestration.suite.demo import demo_experiments

    if importlib.util.find_spec("sklearn") is None:  # the example trains a scikit-learn model
        typer.echo(
            "error: mlchaos demo trains a scikit-learn model: "
            "pip install 'mlchaos-orchestration[ml]'",
            err=True,
        )
        raise typer.Exit(1)
    with tempfile.TemporaryDirectory() as tmp:
        path, skipped = demo_experiments(Path(tmp))
        if skipped:  # no MLflow: the example's model registry is its file registry
            typer.echo(
                f"note: MLflow is not installed (pip install 'mlchaos-orchestration[mlflow]'): "
                f"the model-registry experiments are left out ({', '.join(skipped)})",
                err=True,
            )
        result = _live_suite(
            path,
            orchestrators=[o.strip() for o in orchestrator.split(",") if o.strip()],
            reports_dir=reports_dir,
        )
    _print_scorecard(result)
    _exit_for(result, "false_alarm,gate_crashed,error")


@app.command()
def report(
    suite_id: str = typer.Option("", help="suite id (default: the latest)"),
    reports_dir: Path = typer.Option(Path("reports")),
) -> None:
    """Re-write the report of a suite from the ledger."""
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.reporting.report import build_journal, write_report

    ledger = Ledger()
    if not suite_id:
        runs = [r for r in ledger.list_runs(limit=1000) if r.get("suite_id")]
        if not runs:
            raise typer.BadParameter("no suite runs in the ledger yet")
        suite_id = runs[0]["suite_id"]
    from mlchaos_orchestration.suite.run import SuiteResult

    journal = build_journal(ledger, suite_id)  # with the details the suite run stored
    out = write_report(journal, reports_dir)
    _print_scorecard(SuiteResult(suite_id, out, journal, journal.get("duration_s")))
