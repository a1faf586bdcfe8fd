"""``python -m mlchaos_orchestration.gameday.batch EXPERIMENT OUT``: run the example pipeline
(plain runner) with one experiment of the example matrix and write its outcome as JSON to OUT.

Run by a game day's ``pipeline`` action in its own process; SIGTERM ends it through the runner's
``finally`` blocks, so every fault is restored."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    name, out = (argv or sys.argv[1:])[:2]

    def _stop(*_: object) -> None:
        raise KeyboardInterrupt("stopped by the game day")

    signal.signal(signal.SIGTERM, _stop)
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.core.runner import run_experiment
    from mlchaos_orchestration.examples.plain import build_pipeline
    from mlchaos_orchestration.suite.demo import EXPERIMENTS_PATH, demo_environment

    start = time.monotonic()
    with demo_environment() as cfg:
        exp = next(e for e in load_experiments(EXPERIMENTS_PATH).experiments if e.name == name)
        result = run_experiment(build_pipeline(cfg), exp, ledger=Ledger(), ds=cfg.ds)
    verdict = result.verdict
    evidence = verdict.get("evidence") or {}
    outcome = {
        "run_id": result.run_id,
        "verdict": verdict.get("verdict"),
        "reason": verdict.get("reason"),
        "completed": evidence.get("halt") is None and evidence.get("consumer") is not None,
        "duration_s": round(time.monotonic() - start, 2),
    }
    Path(out).write_text(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
