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
    "NOTE_MARK",
    "BadVerdict",
    "checked_verdict",
    "collect_verdicts",
    "experiment_note",
    "fault_summary",
    "ledger_run_for",
    "target_note",
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


#: every run note mlchaos writes starts with this (a note without it is the user's: kept)
NOTE_MARK = "**mlchaos**"
NOTE_LIMIT = 1000  # Airflow's limit for a DAG run note


def ledger_run_for(pipeline: str, run_key: str, ledger: Any = None) -> dict[str, Any] | None:
    """The newest ledger run of orchestrator run ``run_key`` of ``pipeline`` (None if none),
    whatever experiment it ran."""
    from mlchaos_orchestration.core.ledger import Ledger

    for run in (ledger or Ledger()).list_runs(limit=500):
        meta = run.get("meta") or {}
        if meta.get("run_key") == run_key and run.get("pipeline") == pipeline:
            return run
    return None


def fault_summary(run: dict[str, Any] | None) -> str:
    """``nulls (fraction=0.2, columns=amount)`` for each fault of a ledger run's experiment."""
    faults = (((run or {}).get("meta") or {}).get("experiment") or {}).get("faults") or []
    parts = []
    for entry in faults:
        if not isinstance(entry, dict):
            continue
        params = ", ".join(
            f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in entry.items()
            if k not in ("fault", "name") and v not in (None, "", [], {})
        )
        parts.append(f"{entry.get('fault')} ({params})" if params else str(entry.get("fault")))
    return "; ".join(parts)


def _verdict_line(run: dict[str, Any] | None) -> str:
    detail = (run or {}).get("verdict_detail") or {}
    if not detail.get("verdict"):
        return "verdict pending" if run else "no verdict recorded"
    return f"verdict **{detail['verdict']}**: {detail.get('reason') or ''}".rstrip(": ")


def _note(lines: Iterable[str | None]) -> str:
    text = "\n\n".join(line for line in lines if line)
    return text if len(text) <= NOTE_LIMIT else text[: NOTE_LIMIT - 1] + "\u2026"


def target_note(
    run: dict[str, Any] | None,
    *,
    experiment_link: str | None = None,
    plan: list[str] | None = None,
    running: bool = False,
) -> str:
    """The note of a chaos run of a user DAG: verdict + reason and a link back to the experiment
    run on the first line (the one the run page shows folded), then the fault."""
    if plan:
        head = f"{NOTE_MARK} dry run, nothing touched; would apply: {'; '.join(plan)}"
    else:
        head = f"{NOTE_MARK} chaos run, {'running' if running else _verdict_line(run)}"
    faults = fault_summary(run)
    return _note(
        [
            f"{head} · started by {experiment_link}" if experiment_link else head,
            f"fault: {faults}" if faults else None,
        ]
    )


def experiment_note(
    run: dict[str, Any] | None,
    *,
    target_link: str | None = None,
    refused: str | None = None,
    plan: list[str] | None = None,
) -> str:
    """The note of an ``mlchaos_experiment`` run: the refusal, or the verdict + reason and the
    link to the target run on the first line, then the fault."""
    if refused:
        return _note([f"{NOTE_MARK} {refused.removeprefix('mlchaos: ')}"])
    head = (
        f"{NOTE_MARK} dry run, nothing touched; would apply: {'; '.join(plan)}"
        if plan
        else f"{NOTE_MARK} {_verdict_line(run)}"
    )
    faults = fault_summary(run)
    return _note(
        [
            f"{head} · {target_link}" if target_link else head,
            f"fault: {faults}" if faults else None,
        ]
    )
