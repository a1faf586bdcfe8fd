"""Intensity sweep: one experiment at a range of intensities, to find the smallest fault each
gate detects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlchaos_orchestration.errors import SpecError

DEFAULT_INTENSITIES = (0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.5)
DETECTED = frozenset({"caught", "unalerted"})


def sweep_file(
    experiments_file: str | Path,
    experiment: str,
    intensities: list[float],
    out: Path,
    parameter: str = "fraction",
) -> Path:
    """Write an experiments file holding ``experiment`` at each intensity (its first fault's
    ``parameter`` replaced) plus the control run; return its path."""
    import yaml

    from mlchaos_orchestration.core.experiment import load_experiments

    spec = load_experiments(experiments_file)
    base = spec.get(experiment)
    if not base.faults:
        raise SpecError([f"sweep: experiment {experiment!r} has no fault"])
    if parameter not in type(base.faults[0].fault).model_fields:
        raise SpecError([f"sweep: fault {base.faults[0].name!r} has no parameter {parameter!r}"])
    exps: list[dict[str, Any]] = [e.spec() for e in spec.experiments if e.control]
    for value in intensities:
        variant = base.spec()
        variant["name"] = f"{experiment}@{value:g}"
        variant["faults"][0][parameter] = value
        variant.pop("expect", None)
        exps.append(variant)
    data = {"version": 1, "pipeline": spec.pipeline, "experiments": exps}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    load_experiments(out)  # the variants must still be valid (e.g. fraction <= 1)
    return out


def summarise(
    journal: dict[str, Any], experiment: str, parameter: str = "fraction"
) -> dict[str, Any]:
    """Per orchestrator, the verdict at each intensity (of ``parameter``) and the minimum
    intensity detected."""
    points = []
    for run in journal["runs"]:
        name = run["experiment"]
        if not name.startswith(f"{experiment}@"):
            continue
        points.append(
            {
                "orchestrator": run["orchestrator"],
                "intensity": float(name.split("@", 1)[1]),
                "verdict": run["verdict"],
            }
        )
    points.sort(key=lambda p: (p["orchestrator"], p["intensity"]))
    minimum: dict[str, float | None] = {}
    for orch in sorted({p["orchestrator"] for p in points}):
        hits = [
            p["intensity"] for p in points if p["orchestrator"] == orch and p["verdict"] in DETECTED
        ]
        minimum[orch] = min(hits) if hits else None
    return {
        "experiment": experiment,
        "parameter": parameter,
        "points": points,
        "minimum_detected": minimum,
    }
