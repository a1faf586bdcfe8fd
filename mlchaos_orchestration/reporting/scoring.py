"""Scores from verdicts: the resilience score and the gate mutation score.

Resilience score (0-100): over fault experiments with an outcome (not ``not_applied``/``error``),
``caught`` counts 1, ``unalerted`` 0.5 (the gate held but nobody was told), ``silent`` 0. A false
alarm on the clean control run halves the score: a gate that always fails "catches" everything.

A ``gate_crashed`` run counts 0, and a control run whose gate crashed halves the score too.

Mutation score: each fault experiment that reached the pipeline is a mutant of its data; the gate
*kills* it only by a detection: the gate ran its checks and found violations (``gate_failed``
with ``checks_run``) before the consumer started. A gate crash, or a halt by another task (e.g.
an unrelated task crashing), is no kill. ``not_reached`` and ``error`` runs are no mutants (the
mutant never met the gate). Score = killed / mutants. Every survivor is named with the concrete
expectation that would have killed it.
"""

from __future__ import annotations

import re
from typing import Any

WEIGHTS = {"caught": 1.0, "unalerted": 0.5, "silent": 0.0, "gate_crashed": 0.0}
KILLED = frozenset({"caught", "unalerted"})
MUTANT_VERDICTS = frozenset({"caught", "unalerted", "silent", "gate_crashed"})
BROKEN_CONTROL = frozenset({"false_alarm", "gate_crashed"})


def gate_killed(row: dict[str, Any]) -> bool:
    """The gate itself detected the mutant: halted before the consumer by a gate that ran its
    checks (from the verdict's evidence; ``halted_by_gate`` for older journals)."""
    if row.get("verdict") not in KILLED:
        return False
    evidence = row.get("evidence") or {}
    halt = evidence.get("halt")
    if isinstance(halt, dict):
        gate = evidence.get("gate") or {}
        return halt.get("kind") == "gate_failed" and gate.get("ran_checks") is not False
    return bool(row.get("halted_by_gate"))


def resilience_score(rows: list[dict[str, Any]]) -> float | None:
    """Weighted share of caught faults (0-100), or None when nothing was judged."""
    judged = [r for r in rows if not r.get("control") and r.get("verdict") in WEIGHTS]
    if not judged:
        return None
    score = 100.0 * sum(WEIGHTS[r["verdict"]] for r in judged) / len(judged)
    if any(r.get("control") and r.get("verdict") in BROKEN_CONTROL for r in rows):
        score /= 2
    return round(score, 1)


def mutation_report(
    rows: list[dict[str, Any]], profiles: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Mutants killed / mutants, and for every survivor the expectation that would kill it.

    ``profiles`` maps an orchestrator name (or ``orchestrator/pipeline``) to a profile of its
    clean gate input (recorded by the control run as a ``data_profile`` event); suggestions take
    their bounds from it, or from the row's own ``clean_profile`` (the stored data a fault was
    applied to, before the fault) when there is one: the user's own Airflow / Dagster gates
    record no control profile.
    """
    profiles = profiles or {}
    fallback = next(iter(profiles.values()), None)
    from mlchaos_orchestration.gates.mutation import killing_expectation, render

    candidates = [r for r in rows if not r.get("control") and r.get("verdict") in MUTANT_VERDICTS]
    mutants = [r for r in candidates if gate_saw(r)]
    unjudged = [
        {
            "experiment": r["experiment"],
            "orchestrator": r.get("orchestrator"),
            "why": f"halted by {r.get('halted_by') or 'another task'} before the gate ran",
        }
        for r in candidates
        if not gate_saw(r)
    ]
    killed = [r for r in mutants if gate_killed(r)]
    survivors: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in mutants:
        if gate_killed(row):
            continue
        for fault in row.get("faults", []):
            orchestrator = str(row.get("orchestrator"))
            control = profiles.get(f"{orchestrator}/{row.get('pipeline')}") or profiles.get(
                orchestrator, fallback
            )
            profile = _profile_of(row, control)
            suggestion = killing_expectation(fault, profile)
            if row["verdict"] == "gate_crashed":
                suggestion = None
                why = "the gate crashed without running its checks: fix the gate first"
            elif row["verdict"] in KILLED:
                why = f"halted by {row.get('halted_by') or 'another task'}, not by the gate"
            else:
                why = ((suggestion or {}).get("meta") or {}).get("why", "")
            # one entry per pipeline: several targets' survivors each get their own bounds
            key = (str(row.get("pipeline") or ""), row["experiment"], describe_fault(fault))
            entry = survivors.setdefault(
                key,
                {
                    "pipeline": row.get("pipeline", ""),
                    "experiment": row["experiment"],
                    "fault": fault.get("fault"),
                    "what": describe_fault(fault),
                    "expectation": render(suggestion) if suggestion else None,
                    "expectation_spec": suggestion,
                    "orchestrators": [],
                    "why": why,
                },
            )
            entry["orchestrators"].append(str(row.get("orchestrator")))
    return {
        "mutants": len(mutants),
        "killed": len(killed),
        "score": round(len(killed) / len(mutants), 3) if mutants else None,
        "survivors": list(survivors.values()),
        "not_gate_mutants": unjudged,
    }


_HINTS = ("key", "label", "ds", "timestamp_column")


def _profile_of(row: dict[str, Any], control: dict[str, Any] | None) -> dict[str, Any] | None:
    """The row's own clean profile (hints it lacks taken from the control's), else the
    control's."""
    own = row.get("clean_profile")
    if not isinstance(own, dict):
        return control
    hints = {k: (control or {}).get(k) for k in _HINTS if own.get(k) is None}
    return {**own, **{k: v for k, v in hints.items() if v is not None}}


def gate_saw(row: dict[str, Any]) -> bool:
    """Whether the gate was put to the test by this run: it ran its checks or crashed trying.
    A fault that halted the run before the gate ran (e.g. a connector failure in the task that
    builds the gate's input) says nothing about the gate. Journals without evidence: True."""
    evidence = row.get("evidence")
    if not evidence:
        return True
    return (evidence.get("gate") or {}).get("ran_checks") is not None


def describe_fault(fault: dict[str, Any]) -> str:
    """Short human description of a fault spec, e.g. ``nulls in `amount` (20%)``; a fault that
    ignores ``fraction`` (class removal, schema faults) is never labelled with one."""
    name = str(fault.get("fault", "?"))
    cols = fault.get("columns") or ([fault["label"]] if fault.get("label") else [])
    where = f" in {', '.join(f'`{c}`' for c in cols)}" if cols else ""
    frac = fault.get("fraction")
    amount = ""
    if isinstance(frac, (int, float)) and cols and "fraction" not in ignored_parameters(name):
        amount = f" ({float(frac):.0%})"
    if "classes" in fault:  # class removal: which classes go
        classes = fault.get("classes")
        amount += (
            f" (class {', '.join(map(str, classes))})"
            if isinstance(classes, list) and classes
            else " (minority class)"
        )
    mode = f" ({fault['mode']})" if fault.get("mode") else ""
    return f"{name}{where}{amount}{mode}"


_IGNORED_RE = re.compile(r"\b(fraction|max_rows)(?: and (fraction|max_rows))?(?: are| is)? ignored")


def ignored_parameters(name: str) -> frozenset[str]:
    """Parameters fault ``name`` accepts but ignores: its class's ``ignored_parameters`` if it
    declares them, else what its one-line description says is ignored (e.g. "fraction
    ignored", "fraction and max_rows are ignored")."""
    from mlchaos_orchestration.errors import MlchaosError
    from mlchaos_orchestration.faults import get_fault_class

    try:
        cls = get_fault_class(name)
    except MlchaosError:
        return frozenset()
    declared = getattr(cls, "ignored_parameters", None)
    if declared is not None:
        return frozenset(declared)
    found = _IGNORED_RE.search(cls.description())
    return frozenset(g for g in found.groups() if g) if found else frozenset()
