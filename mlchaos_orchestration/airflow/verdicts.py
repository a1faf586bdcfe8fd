"""Verdicts of Airflow-triggered chaos runs, read from the ledger (no Airflow import), and the
JSON file the weekly resilience DAG writes (the full HTML report is built elsewhere from it)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlchaos_orchestration.airflow.runtime import FAIL_ON
from mlchaos_orchestration.errors import MlchaosError

__all__ = [
    "FAIL_ON",
    "BadVerdict",
    "checked_verdict",
    "collect_verdicts",
    "matrix",
    "verdict_of",
    "write_verdicts",
]


class BadVerdict(MlchaosError):
    """A chaos run ended with a verdict the resilience check does not accept."""


def verdict_of(run_key: str, experiment: str, ledger: Any = None) -> dict[str, Any] | None:
    """The stored verdict of the chaos run of orchestrator run ``run_key`` (None if none)."""
    from mlchaos_orchestration.core.control import run_id_for
    from mlchaos_orchestration.core.ledger import Ledger

    run = (ledger or Ledger()).get_run(run_id_for(run_key, experiment))
    return (run or {}).get("verdict_detail")


def checked_verdict(
    run_key: str, experiment: str, fail_on: Iterable[str] = FAIL_ON
) -> dict[str, Any]:
    """:func:`verdict_of`, raising :class:`BadVerdict` when missing or in ``fail_on``."""
    verdict = verdict_of(run_key, experiment)
    if not verdict:
        raise BadVerdict(f"{experiment}: no verdict recorded for run {run_key}")
    if verdict.get("verdict") in tuple(fail_on):
        raise BadVerdict(f"{experiment}: verdict {verdict['verdict']!r} - {verdict.get('reason')}")
    return verdict


def collect_verdicts(
    runs: Iterable[tuple[str, str]], *, expected: dict[str, str] | None = None, ledger: Any = None
) -> dict[str, Any]:
    """Verdicts of ``(experiment, run_key)`` pairs as one JSON-able document."""
    from mlchaos_orchestration.core.ledger import Ledger

    ledger = ledger or Ledger()
    expected = expected or {}
    rows = []
    for experiment, run_key in runs:
        verdict = verdict_of(run_key, experiment, ledger) or {
            "verdict": None,
            "reason": "no verdict recorded",
        }
        rows.append(
            {
                "experiment": experiment,
                "run_key": run_key,
                "expected": expected.get(experiment),
                **verdict,
            }
        )
    met = [r for r in rows if r["expected"] and r["expected"] == r["verdict"]]
    return {
        "generated_at": time.time(),
        "runs": rows,
        "summary": {
            "runs": len(rows),
            "as_expected": len(met),
            "caught": sum(r["verdict"] == "caught" for r in rows),
            "silent": sum(r["verdict"] == "silent" for r in rows),
        },
    }


def write_verdicts(path: str | Path, document: dict[str, Any]) -> Path:
    """Write the verdicts document as JSON (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    return path


def matrix(experiments_file: str | Path) -> list[tuple[str, str | None]]:
    """``(name, expect)`` of every experiment in a file, read cheaply (YAML only, no validation)
    so a DAG file can build one task per experiment at parse time."""
    import yaml

    raw = yaml.safe_load(Path(experiments_file).read_text(encoding="utf-8")) or {}
    return [
        (str(e["name"]), e.get("expect"))
        for e in raw.get("experiments") or []
        if isinstance(e, dict) and "name" in e
    ]
