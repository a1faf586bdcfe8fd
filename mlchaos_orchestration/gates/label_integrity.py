"""Label integrity: are a candidate's labels as consistent with its features as the reference's?

Schema and statistics gates cannot see label shuffles or mislabels: a permutation keeps every
marginal (the label mean included). What breaks is the *dependence* between features and label.
The check measures it with a probe model fitted on half of the reference:

* the probe is a naive Bayes model over binned features (numeric columns in reference-quantile
  bins, date-times by time of day, categorical columns by value), vectorised in numpy - no extra
  dependency, ~0.1 s per 100k rows;
* its score on a data set is the mean log-probability it gives the *observed* labels;
* the reference's other half gives the expected score and its per-row spread, so the bound for a
  candidate of ``n`` rows is ``expected - z * sd / sqrt(n) - tolerance``. A shuffle or mislabel
  lowers the score of the rows it touched; a clean resample of the same distribution does not.

The label balance is checked too (chi-square against the reference), which catches a removed or
invented class. ``check_labels`` returns a :class:`LabelCheck` whose ``reason`` is one line.
:func:`read_reference` reads the reference from a path (file, folder, glob or ``s3://`` prefix),
as the GX expectation and the Dagster asset check name it.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

#: numeric features are cut into this many reference-quantile bins
BINS = 16
#: a categorical feature keeps at most this many values (the rest share one bin)
MAX_CATEGORIES = 64
#: standard errors below the expected score before a candidate is inconsistent
Z = 5.0
#: absolute slack on the score (nats per row), for probe variance between halves
TOLERANCE = 0.004
#: chi-square p-value below which the label balance changed
BALANCE_P = 1e-6
_DAY_NS = 86_400 * 10**9


@dataclass
class LabelCheck:
    """Outcome of :func:`check_labels`. ``consistent`` is the verdict, ``reason`` one line."""

    consistent: bool
    reason: str
    score: float
    expected: float
    bound: float
    balance_p: float
    features: list[str] = field(default_factory=list)
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Probe:
    """Naive Bayes over binned features: ``fit`` on a frame, ``scores`` per row."""

    def __init__(self, features: Sequence[str], label: str):
        self.features = list(features)
        self.label = label
        self.edges: dict[str, Any] = {}
        self.categories: dict[str, Any] = {}
        self.datetimes: dict[str, bool] = {}

    def _numbers(self, values: pd.Series, column: str) -> np.ndarray:
        """A numeric view of a column, read the way the reference's column was (dates as seconds
        since midnight, so a candidate read back from CSV with dates as text, or from another
        day than the reference, compares like for like)."""
        import numpy as np
        import pandas as pd

        if self.datetimes.get(column):  # time of day: a reference from other days compares
            stamps = pd.to_datetime(values, errors="coerce")
            nanos = stamps.astype("int64").to_numpy() % _DAY_NS  # time of day (UTC for aware)
            return np.where(stamps.isna().to_numpy(), np.nan, nanos / 1e9)
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)

    def _codes(self, frame: pd.DataFrame, column: str) -> np.ndarray:
        import numpy as np

        values = frame[column]
        if column in self.edges:
            numeric = self._numbers(values, column)
            codes = np.searchsorted(self.edges[column], numeric, side="right")
            return np.where(np.isnan(numeric), BINS + 1, codes)
        index = self.categories[column]
        codes = index.get_indexer(values.astype("string").fillna("<NA>"))
        return np.where(codes < 0, len(index), codes)

    def fit(self, frame: pd.DataFrame) -> _Probe:
        import numpy as np
        import pandas as pd
        from pandas.api.types import is_datetime64_any_dtype

        self.classes = pd.Index(pd.unique(frame[self.label].dropna()))
        y = self.classes.get_indexer(frame[self.label])
        keep = y >= 0
        y = y[keep]
        k = len(self.classes)
        self.log_prior = np.log((np.bincount(y, minlength=k) + 1.0) / (len(y) + k))
        self.tables: dict[str, np.ndarray] = {}
        for column in self.features:
            values = frame[column]
            if _is_numeric(values):
                self.datetimes[column] = is_datetime64_any_dtype(values)
                numeric = self._numbers(values, column)
                qs = np.nanquantile(numeric, np.linspace(0, 1, BINS + 1)[1:-1])
                self.edges[column] = np.unique(qs)
                width = BINS + 2
            else:
                top = values.astype("string").fillna("<NA>").value_counts().index
                self.categories[column] = pd.Index(top[:MAX_CATEGORIES])
                width = len(self.categories[column]) + 1
            codes = self._codes(frame, column)[keep]
            counts = np.zeros((k, width))
            np.add.at(counts, (y, codes), 1.0)
            self.tables[column] = np.log((counts + 1.0) / (counts.sum(1, keepdims=True) + width))
        return self

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """log P(observed label | features) per row (rows with an unknown label score -inf)."""
        import numpy as np

        joint = np.repeat(self.log_prior[None, :], len(frame), axis=0)
        for column, table in self.tables.items():
            joint += table[:, self._codes(frame, column)].T
        top = joint.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))
        y = self.classes.get_indexer(frame[self.label])
        picked = np.where(y >= 0, joint[np.arange(len(frame)), np.maximum(y, 0)], -np.inf)
        return picked - log_norm


def _is_numeric(values: pd.Series) -> bool:
    from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

    return (is_numeric_dtype(values) and not is_bool_dtype(values)) or is_datetime64_any_dtype(
        values
    )


def default_features(frame: pd.DataFrame, label: str) -> list[str]:
    """Every column but the label and identifier-like ones (unique per row, or named ``id``)."""
    out = []
    for column in frame.columns:
        if column == label or str(column).lower() in ("id", "uuid", "key"):
            continue
        if len(frame) > 100 and frame[column].nunique(dropna=True) >= 0.95 * len(frame):
            if not _is_numeric(frame[column]) or str(column).lower().endswith("id"):
                continue  # a row identifier carries no label information
        out.append(str(column))
    return out


def check_labels(
    reference: pd.DataFrame,
    candidate: pd.DataFrame,
    label: str,
    features: Sequence[str] | None = None,
    *,
    seed: int = 0,
    z: float = Z,
    tolerance: float = TOLERANCE,
) -> LabelCheck:
    """Compare the candidate's label-feature consistency and label balance with the reference."""
    import numpy as np

    from mlchaos_orchestration.errors import SpecError

    problems = reference_problems(reference, label, features)
    feats = list(features) if features else default_features(reference, label)
    if label not in candidate:
        problems.append(f"candidate has no column {label!r}")
    problems += [f"feature {c!r} missing" for c in feats if c in reference and c not in candidate]
    if problems:
        raise SpecError(problems)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(reference))
    half = len(reference) // 2
    fit_part, hold_part = reference.iloc[order[:half]], reference.iloc[order[half:]]
    probe = _Probe(feats, label).fit(fit_part)
    held = probe.scores(hold_part)
    held = held[np.isfinite(held)]
    expected, spread = float(held.mean()), float(held.std(ddof=1))
    got = probe.scores(candidate)
    unknown = int((~np.isfinite(got)).sum())
    score = float(np.where(np.isfinite(got), got, np.log(1e-6)).mean())
    bound = float(expected - z * spread / np.sqrt(max(len(candidate), 1)) - tolerance)
    balance_p = _balance_p(reference[label], candidate[label])
    base = dict(
        score=round(score, 6),
        expected=round(expected, 6),
        bound=round(bound, 6),
        balance_p=balance_p,
        features=feats,
        rows=len(candidate),
    )
    if score < bound:
        drop = expected - score
        reason = (
            f"labels are less consistent with the features than in the reference: "
            f"probe score {score:.4f} < bound {bound:.4f} (reference {expected:.4f}, "
            f"drop {drop:.4f} nats/row) - shuffled or wrong labels"
        )
        if unknown:
            reason += f"; {unknown} row(s) carry a class the reference never had"
        return LabelCheck(False, reason, **base)
    if balance_p < BALANCE_P:
        return LabelCheck(
            False,
            f"label balance changed (chi-square p={balance_p:.2g}): "
            "a class was removed, added or resampled",
            **base,
        )
    return LabelCheck(
        True,
        f"labels consistent: probe score {score:.4f} >= bound {bound:.4f}, "
        f"label balance p={balance_p:.2g}",
        **base,
    )


def reference_problems(
    reference: pd.DataFrame, label: str, features: Sequence[str] | None = None
) -> list[str]:
    """Why ``reference`` cannot serve as the reference (one line each); empty when it can."""
    problems = [] if label in reference else [f"reference has no column {label!r}"]
    feats = list(features) if features else default_features(reference, label)
    problems += [f"feature {c!r} missing" for c in feats if c not in reference]
    if not feats:
        problems.append("no feature columns to check the labels against")
    if len(reference) < 200:
        problems.append(f"reference has {len(reference)} rows; at least 200 are needed")
    return problems


def load_reference(
    location: str, label: str, features: Sequence[str] | None = None
) -> pd.DataFrame:
    """:func:`read_reference`, refused (:class:`~mlchaos_orchestration.errors.SpecError`) when it
    cannot serve as the reference. A gate calls this *before* judging a candidate: a missing or
    unreadable reference is a broken gate (``gate_crashed``), never a detection."""
    from mlchaos_orchestration.errors import SpecError

    frame = read_reference(location)
    problems = reference_problems(frame, label, features)
    if problems:
        raise SpecError([f"reference {location!r}: {p}" for p in problems])
    return frame


def _balance_p(reference: pd.Series, candidate: pd.Series) -> float:
    """p-value of a chi-square test that the candidate's classes follow the reference's shares."""
    import numpy as np
    from scipy.stats import chi2

    ref = reference.value_counts(dropna=True)
    cand = candidate.value_counts(dropna=True)
    classes = ref.index.union(cand.index)
    observed = cand.reindex(classes, fill_value=0).to_numpy(dtype=np.float64)
    share = ref.reindex(classes, fill_value=0).to_numpy(dtype=np.float64) + 0.5
    expected = share / share.sum() * observed.sum()
    stat = float(((observed - expected) ** 2 / expected).sum())
    return float(chi2.sf(stat, max(len(classes) - 1, 1)))


# --------------------------------------------------------------------------------------- reference
_DATA_SUFFIXES = (".parquet", ".csv", ".json", ".jsonl")
_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
_CACHE: dict[str, tuple[Any, Any]] = {}


def expand(location: str) -> str:
    """``${VAR}`` / ``${VAR:-default}`` and ``~`` expanded; an unset variable without a default
    is a :class:`~mlchaos_orchestration.errors.SpecError`."""
    from mlchaos_orchestration.errors import SpecError

    def one(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1)) or match.group(2)
        if value is None:
            raise SpecError([f"reference {location!r}: variable {match.group(1)} is not set"])
        return value

    text = _VAR.sub(one, location)
    return text if "://" in text else os.path.expanduser(text)


def read_reference(location: str) -> pd.DataFrame:
    """The labelled reference data at ``location``: a parquet/CSV/JSON(L) file, a folder or glob
    of such files (read recursively, concatenated), or an ``s3://bucket/prefix`` (boto3, endpoint
    from the settings). ``${VAR}``s are expanded. Cached per process while the files are
    unchanged (size and mtime, or ETag)."""
    from mlchaos_orchestration.errors import SpecError

    where = expand(location)
    sources = _s3_objects(where) if where.startswith("s3://") else _local_files(where)
    if not sources:
        raise SpecError([f"reference {location!r}: no parquet/CSV/JSON file at {where!r}"])
    signature = tuple((name, tag) for name, tag, _ in sources)
    cached = _CACHE.get(where)
    if cached is not None and cached[0] == signature:
        return cached[1]
    import pandas as pd

    from mlchaos_orchestration.core.formats import read_frame

    frames = []
    for name, _, read in sources:
        try:
            frames.append(read_frame(read(), _format(name)))
        except Exception as exc:  # noqa: BLE001 - any reader error: the reference is unusable
            text = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise SpecError([f"reference {location!r}: cannot read {name}: {text}"]) from None
    frame = pd.concat([f for f in frames if len(f.columns)], ignore_index=True)
    _CACHE[where] = (signature, frame)
    return frame


def _format(name: str) -> Any:
    return name.rsplit(".", 1)[-1].lower()


def _local_files(where: str) -> list[tuple[str, Any, Any]]:
    from pathlib import Path

    path = Path(where)
    if path.is_dir():
        names = sorted(str(p) for p in path.rglob("*") if p.is_file())
    elif path.is_file():
        names = [where]
    else:
        names = sorted(glob.glob(where, recursive=True))
    out = []
    for name in names:
        if name.lower().endswith(_DATA_SUFFIXES) and os.path.isfile(name):
            stat = os.stat(name)
            out.append((name, (stat.st_size, stat.st_mtime_ns), Path(name).read_bytes))
    return out


def _s3_objects(where: str) -> list[tuple[str, Any, Any]]:
    import boto3

    from mlchaos_orchestration.settings import get_settings

    bucket, _, prefix = where[5:].partition("/")
    client = boto3.client("s3", endpoint_url=get_settings().s3_endpoint_url)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [
        (o["Key"], o.get("ETag"))
        for page in pages
        for o in page.get("Contents", [])
        if o["Key"].lower().endswith(_DATA_SUFFIXES)
    ]

    def reader(key: str) -> Any:
        return lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read()

    return [(key, tag, reader(key)) for key, tag in sorted(keys)]
