"""``mlchaos gameday``: the serving-side game day (registered on the main CLI app)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from mlchaos_orchestration.cli.commands import app

EXAMPLE_GAMEDAY = Path(__file__).resolve().parents[1] / "examples" / "gameday.yaml"
GAMEDAY_VERDICTS = ("held", "degraded_gracefully", "breached", "aborted")
#: verdicts of ``kind: drift`` experiments (the core vocabulary, see gameday/drift_game.py)
DRIFT_VERDICTS = ("caught", "unalerted", "silent", "false_alarm", "error")


@app.command()
def gameday(
    file: Path = typer.Argument(EXAMPLE_GAMEDAY, help="game-day YAML (default: the example's)"),
    experiment: list[str] = typer.Option([], "--experiment", "-e", help="only these"),
    prometheus: bool = typer.Option(True, help="probe through a Prometheus server if installed"),
    peak: float = typer.Option(0.0, help="skip the peak measurement: use this req/s"),
    reports_dir: Path = typer.Option(Path("reports") / "gameday"),
    fail_on: str = typer.Option("", help="comma list of verdicts that make the exit code 1"),
) -> None:
    """Run a game day on the example's serving stack (Redis, prediction API, Locust load,
    Prometheus probes) and write its post-mortem. The last line sums it up."""
    from mlchaos_orchestration.gameday.drift_game import drift_line
    from mlchaos_orchestration.gameday.plan import load_gameday
    from mlchaos_orchestration.gameday.postmortem import last_line, write_postmortem
    from mlchaos_orchestration.gameday.runner import run_gameday

    unknown = [
        v
        for v in (x.strip() for x in fail_on.split(","))
        if v and v not in GAMEDAY_VERDICTS + DRIFT_VERDICTS
    ]
    if unknown:
        known = GAMEDAY_VERDICTS + DRIFT_VERDICTS
        raise typer.BadParameter(f"unknown verdict(s) {unknown}; known: {known}")
    plan = load_gameday(file)
    import signal

    def _terminate(*_: object) -> None:  # SIGTERM: unwind, so every server and fault stops
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, _terminate)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    workdir = reports_dir / stamp
    result = run_gameday(
        plan,
        workdir / "work",
        names=experiment or None,
        use_prometheus=prometheus,
        peak_rps=peak or None,
        on_progress=lambda msg: typer.echo(msg, err=True),
    )
    if not result.outcomes and not result.drift:
        typer.echo("gameday: no experiment ran", err=True)
        raise typer.Exit(3)
    html = write_postmortem(result, workdir)
    for o in result.outcomes:
        typer.echo(f"{o.name}: {o.verdict} — {o.reason}")
    for d in result.drift:
        typer.echo(drift_line(d))
    typer.echo(f"post-mortem: {html}")
    typer.echo(last_line(result))
    bad = {v.strip() for v in fail_on.split(",") if v.strip()}
    if any(o.verdict in bad for o in [*result.outcomes, *result.drift]):
        raise typer.Exit(1)
