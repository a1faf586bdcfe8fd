"""Accuracy impact of a label fault: what the fault does to the example's trained model at each
intensity, to set next to the intensity from which the gate detects it.

The example's features are split once into a training part and a clean holdout; the fault is
applied to the training part only (as it reaches the pipeline's ``train`` step), the example's
own :func:`~mlchaos_orchestration.examples.steps.train` fits the model, and the model is scored
on the clean holdout, so the metric measures the model, not the corrupted labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from mlchaos_orchestration.faults.base import DataFault

DEFAULT_ROWS = 20_000
METRICS = ("auc", "accuracy")
_DAY = "2024-01-15"


def example_frame(rows: int = DEFAULT_ROWS, seed: int = 0) -> pd.DataFrame:
    """The example pipeline's features for one generated day of ``rows`` events."""
    from mlchaos_orchestration.examples.sample_data import generate_events
    from mlchaos_orchestration.examples.steps import build_features

    return build_features(generate_events(_DAY, rows, seed))


def label_impact(
    fault: DataFault,
    intensities: list[float],
    *,
    parameter: str = "fraction",
    frame: pd.DataFrame | None = None,
    metric: str = "auc",
    seed: int = 0,
    repeats: int = 3,
) -> dict[str, Any]:
    """The example model's ``metric`` on a clean holdout when trained on data faulted at each
    intensity (mean over ``repeats`` fault seeds, ``spread`` their standard deviation), and its
    drop from the clean baseline.

    A point whose training fails (e.g. a removed class leaves one class) carries ``error``
    and no metric: the pipeline would not have produced a model.
    """
    import statistics

    from sklearn.model_selection import train_test_split

    from mlchaos_orchestration.examples.steps import LABEL

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    data = example_frame(seed=seed) if frame is None else frame
    train_part, holdout = train_test_split(
        data, test_size=0.25, random_state=seed, stratify=data[LABEL]
    )
    baseline = _fit_and_score(train_part, holdout, seed)
    points = []
    for value in intensities:
        variant = fault.model_copy(update={parameter: value})
        point: dict[str, Any] = {"intensity": float(value)}
        runs = []
        try:
            for r in range(max(1, repeats)):
                faulted = variant.apply(train_part, seed + r).frame
                point["rows_train"] = int(len(faulted))
                runs.append(_fit_and_score(faulted, holdout, seed))
        except ValueError as exc:
            point.update({"error": str(exc), metric: None, "drop": None})
        else:
            for name in METRICS:
                point[name] = round(statistics.fmean(run[name] for run in runs), 6)
            values = [run[metric] for run in runs]
            point["spread"] = round(statistics.pstdev(values), 6)
            point["drop"] = round(baseline[metric] - point[metric], 6)
        points.append(point)
    return {
        "fault": fault.name,
        "parameter": parameter,
        "metric": metric,
        "baseline": baseline[metric],
        "rows": int(len(data)),
        "holdout_rows": int(len(holdout)),
        "repeats": max(1, repeats),
        "points": points,
    }


def _fit_and_score(train_part: pd.DataFrame, holdout: pd.DataFrame, seed: int) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, roc_auc_score

    from mlchaos_orchestration.examples.steps import CATEGORICAL, LABEL, NUMERIC, train

    model, _ = train(train_part, seed=seed)
    proba = model.predict_proba(holdout[NUMERIC + CATEGORICAL])[:, 1]
    truth = holdout[LABEL].astype("int64")
    return {
        "auc": round(float(roc_auc_score(truth, proba)), 6),
        "accuracy": round(float(accuracy_score(truth, proba >= 0.5)), 6),
    }


def experiment_impact(
    experiments_file: str | Path,
    experiment: str,
    intensities: list[float],
    parameter: str = "fraction",
) -> dict[str, Any] | None:
    """:func:`label_impact` of ``experiment``'s first fault on the example's data, or None when
    that fault is not a label fault on the example's label (nothing to train on here)."""
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.examples.steps import LABEL
    from mlchaos_orchestration.faults.data.common import LabelFault

    base = load_experiments(experiments_file).get(experiment)
    fault = base.faults[0].fault if base.faults else None
    if not isinstance(fault, LabelFault) or fault.label != LABEL:
        return None
    return label_impact(fault, intensities, parameter=parameter)


def detection_note(impact: dict[str, Any], minimum_detected: dict[str, float | None]) -> str:
    """One line: the metric drop at the smallest intensity each orchestrator's gate detects."""
    by_value = {p["intensity"]: p for p in impact["points"]}
    parts = []
    for orch, minimum in minimum_detected.items():
        if minimum is None:
            parts.append(f"{orch}: not detected at any intensity")
            continue
        point = by_value.get(minimum, {})
        drop = point.get("drop")
        seen = "training fails" if drop is None else f"{impact['metric']} drop {drop:+.4f}"
        parts.append(f"{orch}: detected from {minimum:g} ({seen})")
    undetected = [
        p
        for p in impact["points"]
        if all(m is None or p["intensity"] < m for m in minimum_detected.values())
    ]
    worst = max((p["drop"] for p in undetected if p.get("drop") is not None), default=None)
    tail = "" if worst is None else f"; largest undetected {impact['metric']} drop {worst:+.4f}"
    return "; ".join(parts) + tail
