"""Crash torture of the registry faults (``--kinds registry``): a child applies a registry fault
through the session and is SIGKILLed at a random point; ``mlchaos restore`` or recover() must
bring back every version, alias, tag, metric, tracking-db table and model file."""

from __future__ import annotations

from pathlib import Path

from mlchaos_orchestration.testing.torture import TortureEnv, run_torture

TRIALS = 6


def test_seeded_crash_trials_on_the_registry_lose_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    summary = run_torture(
        TRIALS,
        seed=5,
        kinds=["registry"],
        env=TortureEnv(workdir=tmp_path),
        jobs=2,
        log=lines.append,
    )
    print("\n".join(lines))
    failed = [r.line() for r in summary.results if not r.recovered]
    assert summary.last_line() == f"trials: {TRIALS}, lost: 0, recovered: {TRIALS}", failed
    assert {r.scenario.split("/")[0] for r in summary.results} == {"registry"}
    assert len(summary.kill_points) >= 2, summary.kill_points
