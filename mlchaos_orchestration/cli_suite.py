"""``mlchaos demo`` (and later the suite/report commands), registered on the main CLI app."""

from __future__ import annotations

import time

import typer

from mlchaos_orchestration.cli import app


@app.command()
def demo() -> None:
    """Run the example resilience matrix on embedded defaults (SQLite + local files)."""
    from mlchaos_orchestration.demo import run_plain_demo

    start = time.monotonic()

    def show(name: str, row: dict) -> None:
        mark = "ok " if row["verdict"] == row.get("expect") else "!! "
        typer.echo(f"{mark}{name:<22} {row['verdict']:<12} expected {row.get('expect') or '-':<9}"
                   f" {row.get('reason', '')}")

    rows = run_plain_demo(show)
    caught = sum(r["verdict"] == "caught" for r in rows if r["experiment"] != "control")
    faults = sum(1 for r in rows if r["experiment"] != "control")
    typer.echo(f"resilience score: {caught}/{faults} faults caught "
               f"in {time.monotonic() - start:.1f} s")
