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
    """Print a line with plain numbers (``115.0``, never ``np.float64(115.0)``)."""
    from mlchaos_orchestration.core.text import plain_numbers

    typer.echo(plain_numbers(text))


def _err(text: str) -> None:
    """Print a line on stderr, with plain numbers."""
    from mlchaos_orchestration.core.text import plain_numbers

    typer.echo(plain_numbers(text), err=True)


def _ledger() -> Any:
    from mlchaos_orchestration.core.ledger import Ledger

    return Ledger()


def _recover(ledger: Any) -> None:
    """Restore expired leases before anything else runs."""
    from mlchaos_orchestration.core.session import recover

    for outcome in recover(ledger):
        state = "restored" if outcome.restored else f"NOT restored ({outcome.error})"
        _err(f"recovered expired lease {outcome.lease_id} ({outcome.fault}): {state}")


@faults_app.command("list")
def faults_list(as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """Show every fault with its parameters (required ones marked REQUIRED, defaults as YAML
    spells them), a one-line description and where it comes from."""
    from mlchaos_orchestration.faults.catalog import load_errors, origin, registry

    items = []
    for name, cls in registry().items():
        params = fault_parameters(cls)
        items.append(
            {
                "name": name,
                "family": cls.family,
                "origin": origin(name),
                "description": cls.description(),
                "parameters": {p["name"]: parameter_summary(p) for p in params},
                "parameter_details": params,
                "rules": fault_rules(cls),
            }
        )
    if as_json:
        _echo(json.dumps(items, indent=2, default=str))
    else:
        for item in items:
            _echo(f"{item['name']:<24} [{item['family']}] {item['description']}")
            _echo(f"    from: {item['origin']}")
            for param in item["parameter_details"]:
                _echo(f"    {parameter_line(param)}")
            for rule in item["rules"]:
                _echo(f"    rule: {rule}")
    for name, reason in load_errors().items():
        _err(f"warning: fault entry point {name!r} did not load: {reason}")


# ------------------------------------------------------------------------------ fault catalog
def fault_parameters(cls: Any) -> list[dict[str, Any]]:
    """A fault class's parameters as people read them: name, type, required or its default
    (a default factory's value, never ``PydanticUndefined``), allowed range, description, and
    whether the fault ignores it."""
    from mlchaos_orchestration.core.text import plain
    from mlchaos_orchestration.reporting.scoring import ignored_parameters

    ignored = ignored_parameters(str(cls.name))
    out = []
    for pname, info in cls.model_fields.items():
        required = info.is_required()
        default = None if required else plain(info.get_default(call_default_factory=True))
        out.append(
            {
                "name": pname,
                "type": type_text(info.annotation),
                "required": required,
                "default": default,
                "range": _range_text(info.metadata, info.annotation),
                "description": info.description or "",
                "ignored": pname in ignored,
            }
        )
    return out


def fault_rules(cls: Any) -> list[str]:
    """Rules between parameters the class enforces (e.g. "give exactly one of url or s3"),
    found by validating placeholder values for the required parameters and keeping the
    model-level messages."""
    from pydantic import ValidationError

    sample: dict[str, Any] = {}
    for pname, info in cls.model_fields.items():
        if info.is_required():
            sample[pname] = _placeholder(info.annotation)
    try:
        cls.model_validate(sample)
    except ValidationError as exc:
        return [
            str(e.get("msg", "")).removeprefix("Value error, ")
            for e in exc.errors()
            if not e.get("loc")
        ]
    except Exception:  # noqa: BLE001 - a third-party validator may raise anything here
        return []
    return []


def _placeholder(annotation: Any) -> Any:
    import typing

    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Literal:
        return args[0] if args else "x"
    if origin in (list, tuple, set) or annotation in (list, tuple, set):
        return [_placeholder(args[0]) if args else "x"]
    if origin is dict or annotation is dict:
        return {"x": "y"}
    if args and origin is not None:  # a union: its first member
        return _placeholder(args[0])
    return {int: 1, float: 0.5, bool: False}.get(annotation, "x")


def type_text(annotation: Any) -> str:
    """``list[str] | None`` -> ``list of str``; ``Literal['a', 'b']`` -> ``one of a, b``."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        members = [type_text(a) for a in args if a is not type(None)]
        return " or ".join(dict.fromkeys(members))
    if origin in (list, tuple, set, frozenset):
        inner = type_text(args[0]) if args else "values"
        return f"list of {inner}"
    if origin is dict:
        return f"mapping {type_text(args[0])} -> {type_text(args[1])}" if args else "mapping"
    if annotation is typing.Any:
        return "any"
    if annotation in (list, tuple, set):
        return "list"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _range_text(metadata: list[Any], annotation: Any = None) -> str:
    bounds = []
    for m in metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(m, attr, None)
            if value is not None:
                bounds.append(f"{sign} {_value_text(value)}")
        n = getattr(m, "min_length", None)
        if n and annotation is str:
            bounds.append("non-empty" if n == 1 else f"at least {n} characters")
        elif n:
            bounds.append(f"at least {n} item{'s' if n != 1 else ''}")
    return ", ".join(bounds)


def _value_text(value: Any) -> str:
    """A default as YAML would spell it: ``0.1``, ``missing``, ``[]``, ``none``."""
    from mlchaos_orchestration.core.text import plain

    value = plain(value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def parameter_line(param: dict[str, Any]) -> str:
    """``columns:  list of str   REQUIRED  (at least 1 item; columns to change)``."""
    line = f"{param['name'] + ':':<19} {param['type']:<30}  {_need_text(param)}"
    return line + (f"  {_extra_text(param)}" if _extra_text(param) else "")


def parameter_summary(param: dict[str, Any]) -> str:
    """``list of str, REQUIRED (at least 1 item; columns to change)`` (``faults list --json``)."""
    summary = f"{param['type']}, {_need_text(param)}"
    return summary + (f" {_extra_text(param)}" if _extra_text(param) else "")


def _extra_text(param: dict[str, Any]) -> str:
    extra = "; ".join(x for x in (param["range"], param["description"]) if x)
    return f"({extra})" if extra else ""


def _need_text(param: dict[str, Any]) -> str:
    if param["ignored"]:
        need = "ignored by this fault"
    elif param["required"]:
        need = "REQUIRED"
    elif param["default"] is None:
        need = "optional"
    else:
        need = f"default {_value_text(param['default'])}"
    return need


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
            _err(f"{file}: {problem}")
        raise typer.Exit(1) from None
    problems = gate_suite_problems(spec, base=file.parent)
    for problem in problems:
        _err(f"{file}: {problem}")
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
    from mlchaos_orchestration.core.verdict import fails, parse_fail_on

    try:
        bad = parse_fail_on(fail_on)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    if not dry_run:
        _recover(ledger)
    if dry_run:
        _dry_run(pipe, chosen, ledger, ds or None)
        return
    failed = False
    for exp in chosen:
        result = run_experiment(pipe, exp, ledger=ledger, ds=ds or None)
        v = result.verdict
        _echo(f"{exp.name:<32} {v['verdict']:<12} {v.get('reason', '')}")
        failed |= fails(v, bad)
    if failed:
        raise typer.Exit(1)


def _dry_run(pipe: Any, chosen: list[Any], ledger: Any, ds: str | None) -> None:
    """List every experiment (stdout) with what it would touch or its own problem(s); each
    problem is also an ``error:`` line on stderr, then a summary; exit 1 if any has one.
    Touches nothing."""
    from mlchaos_orchestration.core.runner import run_experiment
    from mlchaos_orchestration.errors import MlchaosError, SpecError

    troubled: list[str] = []
    errors: list[str] = []
    for exp in chosen:
        problems = dry_run_problems(pipe, exp, ds)
        planned: list[str] = []
        try:
            planned = run_experiment(pipe, exp, ledger=ledger, ds=ds, dry_run=True).planned
        except SpecError as exc:
            problems += [p for p in exc.problems if p not in problems]
        except MlchaosError as exc:
            problems.append(str(exc))
        if problems:
            troubled.append(exp.name)
            _echo(f"{exp.name}: PROBLEM")
            for problem in problems:
                _echo(f"  problem: {problem}")
                errors.append(f"error: {exp.name}: {problem}")
            continue
        _echo(f"{exp.name}: ok, would touch:")
        for line in planned or ["(nothing stored)"]:
            _echo(f"  {line}")
    n = len(chosen)
    if troubled:
        for line in errors:  # one line per problem on stderr too, as every CLI error
            _err(line)
        _err(
            f"error: dry run: {len(troubled)} of {n} experiment{'s' if n != 1 else ''} "
            f"{'has' if len(troubled) == 1 else 'have'} a problem: {', '.join(troubled)}"
        )
        raise typer.Exit(1)
    _echo(f"dry run: {n} experiment{'s' if n != 1 else ''}, no problems")


def dry_run_problems(pipe: Any, exp: Any, ds: str | None) -> list[str]:
    """Problems the dry run can see without touching anything: a ``{ds}`` target with no run
    date, a fault, gate or consumer naming a step the pipeline does not have."""
    problems: list[str] = []
    steps = list(pipe.step_names())
    for entry in exp.environment_faults:
        target = entry.fault.spec().get("target")
        if ds is None and "{ds}" in json.dumps(target):
            problems.append(f"{entry.name}: target {target} needs a run date: pass --ds YYYY-MM-DD")
    for role, step in (("gate", exp.gate), ("consumer", exp.consumer)):
        if step and step not in steps:
            problems.append(f"{role} {step!r} is not a step of pipeline {pipe.name!r}")
    for entry in exp.data_faults:
        step = entry.at or exp.gate or pipe.gate
        if not step:
            problems.append(f"{entry.name}: no step to act on (set at: or a gate)")
        elif step not in steps:
            problems.append(
                f"{entry.name}: step {step!r} is not a step of pipeline {pipe.name!r} "
                f"(steps: {', '.join(steps)})"
            )
    return problems


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
    _err(f"error: {message}")
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
            _err(f"error: {problem}")
        sys.exit(1)
    except MlchaosError as exc:
        _err(f"error: {exc}")
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
        _err(f"error: {type(exc).__name__}: {line} (MLCHAOS_DEBUG=1 shows a traceback)")
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
    try:
        from mlchaos_orchestration.cli import gameday  # noqa: F401
    except ImportError as exc:
        _register_unavailable("gameday", f"{type(exc).__name__}: {exc}")


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
