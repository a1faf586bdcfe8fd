"""Mutation analysis for gates: the concrete expectation that would have killed a surviving fault.

When a fault slips through a gate (verdict ``silent``), the report names the check that was
missing, e.g. ``ExpectColumnValuesToNotBeNull(column="amount")``. Suggestions are plain dicts
``{"type", "kwargs", "meta"}`` (the shape of
:class:`mlchaos_orchestration.gates.gx.ExpectationSpec`);
this module never imports Great Expectations.

Bounds come from a *profile* of the clean data (:func:`profile_frame`): a suggestion built from
the clean run accepts the clean data and rejects the faulted one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "DRIFT_TOLERANCE_STD",
    "REFERENCE",
    "killing_expectation",
    "profile_frame",
    "render",
]

DRIFT_TOLERANCE_STD = 0.25
"""Half-width of a suggested mean band, in clean standard deviations."""

REFERENCE = "<clean labelled data: file, folder or s3:// prefix>"
"""Placeholder ``reference`` of a label-integrity suggestion when the profile names none."""

_MAX_CATEGORIES = 50

Suggestion = dict[str, Any]
Profile = dict[str, Any]


# ----------------------------------------------------------------------------------------- profile
def profile_frame(
    frame: pd.DataFrame,
    *,
    key: str | list[str] | None = None,
    label: str | None = None,
    ds: str | None = None,
    timestamp_column: str | None = None,
    reference: str | None = None,
    label_features: list[str] | None = None,
) -> Profile:
    """Summary of a clean frame that suggestions take their bounds from (vectorised).

    ``{"row_count", "columns", "dtypes", "stats": {col: {min, max, mean, std}},
    "categories": {col: [values]}, "key", "label", "ds", "timestamp_column"}``. Categories are
    kept for columns with at most 50 distinct values; ``reference`` / ``label_features`` (clean
    labelled data and its feature columns) go into label-integrity suggestions. JSON-serialisable.
    """
    numeric = frame.select_dtypes(include="number")
    described = numeric.agg(["min", "max", "mean", "std"]) if len(numeric.columns) else None
    stats = (
        {str(col): {k: _plain(v) for k, v in described[col].items()} for col in numeric.columns}
        if described is not None
        else {}
    )
    nunique = frame.nunique(dropna=True)
    categories = {
        str(col): sorted(_plain(v) for v in frame[col].dropna().unique())
        for col in frame.columns
        if nunique[col] <= _MAX_CATEGORIES and _is_discrete(frame[col].dtype)
    }
    return {
        "row_count": int(len(frame)),
        "columns": [str(c) for c in frame.columns],
        "dtypes": {str(c): str(t) for c, t in frame.dtypes.items()},
        "stats": stats,
        "categories": categories,
        "key": key,
        "label": label,
        "ds": ds,
        "timestamp_column": timestamp_column,
        "reference": reference,
        "label_features": label_features,
    }


def _is_discrete(dtype: Any) -> bool:
    return dtype.kind in "biuOSU" or str(dtype) in {"str", "string", "category"}


def _plain(value: Any) -> Any:
    """numpy / pandas scalar -> plain Python (NaN -> None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


# ------------------------------------------------------------------------------------ suggestions
def killing_expectation(
    fault_spec: dict[str, Any], profile: Profile | None = None
) -> Suggestion | None:
    """The expectation that would catch ``fault_spec`` (``{"fault": name, **params}``).

    ``profile`` (from :func:`profile_frame` on clean data) supplies bounds, value sets and the
    schema; without it, suggestions that need bounds return ``None``. ``None`` also means no data
    expectation can catch the fault (e.g. connector faults, which a gate sees as errors).
    """
    name = str(fault_spec.get("fault") or fault_spec.get("name") or "")
    builder = _BUILDERS.get(name)
    if builder is None:
        return None
    return builder(fault_spec, profile or {})


def _suggest(kind: str, why: str, /, **kwargs: Any) -> Suggestion:
    return {"type": kind, "kwargs": kwargs, "meta": {"why": why}}


def _column(fault: dict[str, Any]) -> str | None:
    for key in ("column", "label"):
        if isinstance(fault.get(key), str):
            return fault[key]
    columns = fault.get("columns") or list(fault.get("mapping") or {})
    return str(columns[0]) if columns else None


def _label(fault: dict[str, Any], profile: Profile) -> str | None:
    return fault.get("label") or profile.get("label") or _column(fault)


def _stat(profile: Profile, column: str | None, name: str) -> Any:
    return ((profile.get("stats") or {}).get(column) or {}).get(name)


def _mean_band(profile: Profile, column: str | None, why: str) -> Suggestion | None:
    mean, std = _stat(profile, column, "mean"), _stat(profile, column, "std")
    if column is None or mean is None:
        return None
    half = DRIFT_TOLERANCE_STD * (std or 0.0) or abs(mean) * 0.05 or 1e-9
    return _suggest(
        "ExpectColumnMeanToBeBetween",
        why,
        column=column,
        min_value=round(mean - half, 6),
        max_value=round(mean + half, 6),
    )


def _nulls(fault: dict[str, Any], profile: Profile) -> Suggestion | None:
    column = _column(fault)
    return (
        _suggest("ExpectColumnValuesToNotBeNull", "values became null", column=column)
        if column
        else None
    )


def _out_of_range(fault: dict[str, Any], profile: Profile) -> Suggestion | None:
    column = _column(fault)
    low, high = _stat(profile, column, "min"), _stat(profile, column, "max")
    if column is None or low is None or high is None:
        return None
    return _suggest(
        "ExpectColumnValuesToBeBetween",
        "values left the clean min/max",
        column=column,
        min_value=low,
        max_value=high,
    )


def _type_flip(fault: dict[str, Any], profile: Profile) -> Suggestion | None:
    column = _column(fault)
    dtype = (profile.get("dtypes") or {}).get(column)
    if not (column and dtype):
        return None
    return _suggest(
        "ExpectColumnValuesToBeOfType", "the column's type changed", column=column, type_=dtype
    )


def _unseen_category(fault: dict[str, Any], profile: Profile) -> Suggestion | None:
    column = _column(fault)
    values = (profile.get("categories") or {}).get(column)
    if not (column and values):
        return None
    return _suggest(
        "ExpectColumnValuesToBeInSet",
        "a category outside the clean set appeared",
        column=column,
        value_set=values,
    )


def _drop_column(fault: dict[str, Any], profile: Profile) -> Suggestion | None:
    column = _column(fault)
    return (
        _suggest("ExpectColumnToExist", "a column disappeared", column=column) if column else None
    )


def _rename_column(fault: dict[str, Any], profile: Profile) -> Suggestion | None:
    if profile.get("columns"):
        return _suggest(
            "ExpectTableColumnsToMatchSet",
            "the schema's column names changed",
            column_set=list(profile["columns"]),
            exact_match=True,
        )
    return _drop_column(fault, profile)


def _duplicate_rows(fault: dict[str, Any], profile: Profile) -> Suggestion | None:
    key = fault.get("key") or profile.get("key")
    if isinstance(key, str) or (isinstance(key, list) and len(key) == 1):
        column = key if isinstance(key, str) else key[0]
        return _suggest("ExpectColumnValuesToBeUnique", "rows were duplicated", column=column)
    columns = key or profile.get("columns")
    if not columns:
        return None
    return _suggest(
        "ExpectCompoundColumnsToBeUnique", "rows were duplicated", column_list=list(columns)
    )


def _drift(fault: dict[str, Any], profile: Profile) -> Suggestion | None:
    return _mean_band(profile, _column(fault), "the column's distribution shifted")


_LABEL_WHY = {
    "label_shuffle": "labels were moved to other rows: the balance and every mean stay the same, "
    "only the labels' dependence on the features breaks",
    "mislabel": "rows got a wrong class: their labels no longer follow from their features",
}


def _label_integrity(fault: dict[str, Any], profile: Profile) -> Suggestion | None:
    """The label-integrity expectation (:mod:`mlchaos_orchestration.gates.gx_label`): the probe
    check against clean labelled data (``profile["reference"]``, else a placeholder to fill in)."""
    label = _label(fault, profile)
    if label is None:
        return None
    kwargs: dict[str, Any] = {"column": label, "reference": profile.get("reference") or REFERENCE}
    if profile.get("label_features"):
        kwargs["features"] = list(profile["label_features"])
    why = _LABEL_WHY.get(str(fault.get("fault") or fault.get("name")), _LABEL_WHY["mislabel"])
    return _suggest("ExpectColumnLabelsToBeConsistentWithReference", why, **kwargs)


def _class_removal(fault: dict[str, Any], profile: Profile) -> Suggestion | None:
    label = _label(fault, profile)
    values = (profile.get("categories") or {}).get(label)
    if not (label and values):
        return None
    return _suggest(
        "ExpectColumnDistinctValuesToContainSet",
        "a class disappeared",
        column=label,
        value_set=values,
    )


def _upstream_outage(fault: dict[str, Any], profile: Profile) -> Suggestion:
    if fault.get("mode") in ("missing", "late"):
        # a silent missing partition means something upstream served other data instead
        # (e.g. a loader falling back to the last available day): check the run date
        dated = _stale_replay(fault, profile)
        if dated is not None:
            return dated
    rows = int(profile.get("row_count") or 0)
    if rows:
        return _suggest(
            "ExpectTableRowCountToBeBetween",
            "the partition was missing or short",
            min_value=max(1, rows // 2),
            max_value=rows * 2,
        )
    return _suggest(
        "ExpectTableRowCountToBeBetween", "the partition was missing or empty", min_value=1
    )


def _stale_replay(fault: dict[str, Any], profile: Profile) -> Suggestion | None:
    ds = fault.get("ds") or profile.get("ds")
    column = (
        fault.get("timestamp_column")
        or (fault.get("timestamp_columns") or [None])[0]
        or profile.get("timestamp_column")
    )
    if ds and column and not fault.get("shift_timestamps"):
        return _suggest(
            "ExpectColumnValuesToBeBetween",
            "rows belong to another day",
            column=column,
            min_value=f"{ds} 00:00:00",
            max_value=f"{ds} 23:59:59.999999",
        )
    key = fault.get("key") or profile.get("key")
    if not isinstance(key, str):
        return None
    return _suggest(
        "ExpectColumnValuesToBeUnique",
        "ids seen in an earlier partition (check across partitions)",
        column=key,
    )


_BUILDERS: dict[str, Callable[[dict[str, Any], Profile], Suggestion | None]] = {
    "nulls": _nulls,
    "out_of_range": _out_of_range,
    "type_flip": _type_flip,
    "unseen_category": _unseen_category,
    "drop_column": _drop_column,
    "rename_column": _rename_column,
    "duplicate_rows": _duplicate_rows,
    "drift": _drift,
    "label_shuffle": _label_integrity,
    "mislabel": _label_integrity,
    "class_removal": _class_removal,
    "upstream_outage": _upstream_outage,
    "stale_partition_replay": _stale_replay,
}


# ------------------------------------------------------------------------------------------ render
def render(spec: dict[str, Any], *, max_len: int | None = None) -> str:
    """``ExpectColumnValuesToNotBeNull(column="amount")``; long values are elided past max_len."""
    args = ", ".join(f"{k}={_literal(v, max_len)}" for k, v in (spec.get("kwargs") or {}).items())
    return f"{spec['type']}({args})"


def _literal(value: Any, max_len: int | None) -> str:
    if isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_literal(v, None) for v in value) + "]"
    else:
        from mlchaos_orchestration.core.text import plain

        text = repr(plain(value))
    if max_len is not None and len(text) > max_len:
        return text[: max_len - 4] + "...]" if text.startswith("[") else text[: max_len - 3] + "..."
    return text
