"""The ``mlchaos`` command line. Errors print one line and exit non-zero; never a traceback
(set ``MLCHAOS_DEBUG=1`` to see one)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Chaos engineering for ML data pipelines.",
)
faults_app = typer.Typer(no_args_is_help=True, help="The fault catalog.")
app.add_typer(faults_app, name="faults")


def _echo(text: str = "") -> None:
    typer.echo(text)


def _ledger() -> Any:
    from mlchaos_orchestration.core.ledger import Ledger

    return Ledger()


def _recover(ledger: Any) -> None:
    """Restore expired leases before anything else runs."""
    from mlchaos_orchestration.core.session import recover

    for outcome in recover(ledger):
        state = "restored" if outcome.restored else f"NOT restored ({outcome.error})"
        typer.echo(
            f"recovered expired lease {outcome.lease_id} ({outcome.fault}): {state}", err=True
        )


@faults_app.command("list")
def faults_list(as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """Show every fault with its parameters, a one-line description and where it comes from."""
    from mlchaos_orchestration.faults.catalog import load_errors, origin, registry

    items = [
        {
            "name": name,
            "family": cls.family,
            "origin": origin(name),
            "description": cls.description(),
            "parameters": cls.parameters(),
        }
        for name, cls in registry().items()
    ]
    if as_json:
        _echo(json.dumps(items, indent=2))
    else:
        for item in items:
            _echo(f"{item['name']:<24} [{item['family']}] {item['description']}")
            _echo(f"    from: {item['origin']}")
            for pname, desc in item["parameters"].items():
                _echo(f"    {pname}: {desc}")
    for name, reason in load_errors().items():
        typer.echo(f"warning: fault entry point {name!r} did not load: {reason}", err=True)


@app.command()
def validate(file: Path = typer.Argument(..., help="experiments YAML")) -> None:
    """Validate an experiments file and every gate suite it names (``gate_suite:``, each
    expectation checked against Great Expectations' own classes); report every problem."""
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.errors import SpecError

    try:
        spec = load_experiments(file)
    except SpecError as exc:
        for problem in exc.problems:
            typer.echo(f"{file}: {problem}", err=True)
        raise typer.Exit(1) from None
    problems = gate_suite_problems(spec, base=file.parent)
    for problem in problems:
        typer.echo(f"{file}: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    suites = len({e.gate_suite for e in spec.experiments if e.gate_suite})
    checked = f", {suites} gate suite{'s' if suites != 1 else ''} checked" if suites else ""
    _echo(f"{file}: ok ({len(spec.experiments)} experiments{checked})")


def resolve_suite_path(ref: str, base: Path) -> Path:
    """A ``gate_suite:`` path: absolute, or relative to the experiments file's folder (then to
    the working directory)."""
    path = Path(ref).expanduser()
    if path.is_absolute():
        return path
    return base / path if (base / path).exists() or not path.exists() else path


def gate_suite_problems(spec: Any, *, base: Path) -> list[str]:
    """Load and validate every gate suite the experiments name (each expectation against GX's
    real expectation classes); one line per problem, prefixed with the experiments using it."""
    from mlchaos_orchestration.gates.gx import suite_problems

    users: dict[str, list[str]] = {}
    for i, exp in enumerate(spec.experiments):
        if exp.gate_suite:
            users.setdefault(exp.gate_suite, []).append(f"experiments[{i}]")
    out: list[str] = []
    for ref, where in users.items():
        path = resolve_suite_path(ref, base)
        at = where[0] + (f" (and {len(where) - 1} more)" if len(where) > 1 else "")
        out += [f"{at}.gate_suite {ref}: {p}" for p in suite_problems(path)]
    return out


@app.command()
def run(
    file: Path = typer.Argument(..., help="experiments YAML"),
    experiment: list[str] = typer.Option([], "--experiment", "-e", help="only these"),
    pipeline: str = typer.Option("", help="module:attribute of a plain Python pipeline"),
    ds: str = typer.Option("", help="run date YYYY-MM-DD for partitioned faults"),
    dry_run: bool = typer.Option(False, "--dry-run", help="report, touch nothing"),
    fail_on: str = typer.Option(
        "",
        help="comma list of verdicts that make the exit code 1 ('default' = silent,unalerted,"
        "false_alarm,error,gate_crashed; 'unalerted!' also counts runs declaring no alert)",
    ),
) -> None:
    """Run experiments against a plain Python pipeline."""
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.core.pipeline import load_pipeline
    from mlchaos_orchestration.core.runner import run_experiment

    spec = load_experiments(file)
    ref = pipeline or spec.pipeline
    if not ref:
        raise _usage("no pipeline: set 'pipeline: module:attr' in the file or pass --pipeline")
    pipe = load_pipeline(ref)
    chosen = [spec.get(name) for name in experiment] if experiment else spec.experiments
    ledger = _ledger()
    if not dry_run:
        _recover(ledger)
    from mlchaos_orchestration.core.verdict import fails, parse_fail_on

    try:
        bad = parse_fail_on(fail_on)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    failed = False
    for exp in chosen:
        result = run_experiment(pipe, exp, ledger=ledger, ds=ds or None, dry_run=dry_run)
        if dry_run:
            _echo(f"{exp.name}: would touch:")
            for line in result.planned or ["(nothing stored)"]:
                _echo(f"  {line}")
            continue
        v = result.verdict
        _echo(f"{exp.name:<32} {v['verdict']:<12} {v.get('reason', '')}")
        failed |= fails(v, bad)
    if failed:
        raise typer.Exit(1)


@app.command()
def abort(run_id: str = typer.Option("", "--run", help="only this run")) -> None:
    """Stop experiments now and restore every active fault (works from any process)."""
    from mlchaos_orchestration.core.session import abort as do_abort

    outcomes = do_abort(_ledger(), run_id=run_id or None)
    for o in outcomes:
        _echo(
            f"lease {o.lease_id} ({o.fault}): {'restored' if o.restored else o.error} "
            f"in {o.duration_s * 1000:.0f} ms"
        )
    _echo(
        f"aborted: {len(outcomes)} fault(s) restored"
        if all(o.restored for o in outcomes)
        else "abort: some faults NOT restored"
    )
    if not all(o.restored for o in outcomes):
        raise typer.Exit(1)


@app.command()
def restore(
    run_id: str = typer.Option("", "--run", help="only this run"),
    expired_only: bool = typer.Option(False, help="only expired leases"),
) -> None:
    """Restore faults left behind (e.g. after a crash)."""
    from mlchaos_orchestration.core.session import recover, restore_all

    ledger = _ledger()
    outcomes = recover(ledger) if expired_only else restore_all(ledger, run_id=run_id or None)
    for o in outcomes:
        _echo(f"lease {o.lease_id} ({o.fault}): {'restored' if o.restored else o.error}")
    _echo(f"restored: {sum(o.restored for o in outcomes)}/{len(outcomes)}")
    if not all(o.restored for o in outcomes):
        raise typer.Exit(1)


@app.command()
def status(limit: int = typer.Option(20, min=1, max=1000)) -> None:
    """Active faults and recent runs with their verdicts."""
    ledger = _ledger()
    _recover(ledger)
    live = ledger.live_leases()
    _echo(f"active faults: {len(live)}")
    for lease in live:
        _echo(
            f"  {lease.id} {lease.fault} {lease.state} run={lease.run_id} "
            f"targets={', '.join(t.describe() for t in lease.targets)}"
        )
    _echo("recent runs:")
    for r in ledger.list_runs(limit=limit):
        _echo(
            f"  {r['id']} {r['experiment']:<28} {r['orchestrator']:<8} "
            f"{r['status']:<9} {r['verdict'] or '-'}"
        )


@app.command("check-labels")
def check_labels_command(
    reference: Path = typer.Option(..., "--reference", help="reference data (csv/parquet/jsonl)"),
    candidate: Path = typer.Option(..., "--candidate", help="data to check"),
    label: str = typer.Option(..., "--label", help="the label column"),
    features: str = typer.Option(
        "", "--features", help="comma list (default: every column but the label and ids)"
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable result"),
) -> None:
    """Are the candidate's labels as consistent with its features as the reference's?

    Exit 0: consistent; 1: inconsistent (shuffled / wrong labels, changed label balance); one
    line says why."""
    from mlchaos_orchestration.core.formats import read_frame
    from mlchaos_orchestration.gates.label_integrity import check_labels

    for path in (reference, candidate):
        if not path.is_file():
            raise _usage(f"{path}: no such file")
    wanted = [f.strip() for f in features.split(",") if f.strip()] or None
    result = check_labels(read_frame(reference), read_frame(candidate), label, wanted)
    _echo(json.dumps(result.to_dict()) if as_json else result.reason)
    if not result.consistent:
        raise typer.Exit(1)


def _usage(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning every error into one line and an exit code."""
    from mlchaos_orchestration.errors import MlchaosError, SpecError

    _register_optional_commands()
    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except SpecError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        sys.exit(1)
    except MlchaosError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the user of the CLI never sees a traceback
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if os.environ.get("MLCHAOS_DEBUG"):
            raise
        line = " ".join(str(exc).split())[:300]
        typer.echo(
            f"error: {type(exc).__name__}: {line} (MLCHAOS_DEBUG=1 shows a traceback)", err=True
        )
        sys.exit(1)


OPTIONAL_COMMANDS = ("suite", "demo", "report")


def _register_optional_commands() -> None:
    """Commands defined in other modules (suite/report/demo) register themselves here; when
    their module cannot be imported, each still exists and says why it is unavailable."""
    try:
        from mlchaos_orchestration.cli import suite  # noqa: F401
    except ImportError as exc:
        reason = f"{type(exc).__name__}: {exc}"
        for name in OPTIONAL_COMMANDS:
            _register_unavailable(name, reason)


def _register_unavailable(name: str, reason: str) -> None:
    def unavailable(
        args: list[str] = typer.Argument(None, hidden=True),
    ) -> None:
        typer.echo(f"error: 'mlchaos {name}' is unavailable here ({reason})", err=True)
        raise typer.Exit(1)

    app.command(
        name,
        help=f"(unavailable: {reason})",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(unavailable)


if __name__ == "__main__":  # pragma: no cover
    main()
