"""The game day as a Dagster job: one op runs ``mlchaos gameday`` in a child process and reports
each experiment's verdict as output metadata (visible on the run page).

No ``from __future__ import annotations`` here: Dagster reads the op's config annotation at
definition time."""

from pathlib import Path
from typing import Any

import dagster as dg

EXAMPLE_GAMEDAY = Path(__file__).resolve().parents[1] / "examples" / "gameday.yaml"


class GameDayConfig(dg.Config):
    """Run configuration (Launchpad): which experiments, Prometheus or not, a known peak."""

    experiments: list[str] = []
    prometheus: bool = True
    peak_rps: float = 0.0


def gameday_job(
    gameday_file: str | Path = EXAMPLE_GAMEDAY,
    *,
    name: str = "mlchaos_gameday",
    reports_dir: str | Path | None = None,
) -> dg.JobDefinition:
    """A job running the game day of ``gameday_file``."""

    @dg.op(name=f"{name}_run")
    def run_gameday(context: dg.OpExecutionContext, config: GameDayConfig) -> dict[str, Any]:
        from mlchaos_orchestration.gameday.process import run_gameday_process
        from mlchaos_orchestration.settings import get_settings

        out = Path(reports_dir or get_settings().data_dir / "reports" / "gameday")
        done = run_gameday_process(
            gameday_file,
            out,
            experiments=config.experiments or None,
            prometheus=config.prometheus,
            peak_rps=config.peak_rps,
        )
        context.add_output_metadata(
            {
                "summary": done.last_line,
                "postmortem": dg.MetadataValue.path(str(done.postmortem)),
                "peak_rps": float(done.result.get("peak_rps") or 0.0),
                **{f"verdict/{k}": v for k, v in done.verdicts.items()},
            }
        )
        context.log.info(done.last_line)
        return done.verdicts

    @dg.job(name=name, tags={"mlchaos/kind": "gameday"})
    def job() -> None:
        run_gameday()

    return job
