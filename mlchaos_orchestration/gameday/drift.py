"""A drift monitor on serving traffic: Evidently's data-drift preset rules on scipy.

Evidently (0.7.23, the newest) resolves with the pinned stack but does not import with pandas 3
(``evidently.legacy`` imports ``pandas.core.dtypes.common.infer_dtype_from_object``, removed in
pandas 3); NannyML and alibi-detect do not resolve. So the monitor applies the rules of
Evidently's ``DataDriftPreset`` with the tests it uses, from scipy:

- reference of at most 1000 rows: Kolmogorov-Smirnov (numeric, > 5 distinct values),
  chi-square (categorical or few values), p < 0.05 is drift;
- larger reference: Wasserstein distance normed by the reference's std (numeric) and
  Jensen-Shannon distance (categorical), >= 0.1 is drift;
- the dataset drifts when the share of drifted columns reaches ``drift_share`` (0.5 there).

:class:`StreamMonitor` runs it on a sliding window of requests and alerts (or, with alerts
off, only records when it would have alerted).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

SMALL_REFERENCE = 1000
P_VALUE = 0.05
DISTANCE = 0.1
FEW_VALUES = 5


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: ``score`` is a p-value (ks, chisquare) or a distance."""

    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftCheck:
    """One monitor check of a window against the reference."""

    columns: list[ColumnDrift]
    drift_share: float
    dataset_drift: bool
    n_rows: int

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def summary(self) -> dict[str, Any]:
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": round(self.drift_share, 4),
            "drifted_columns": self.drifted_columns,
            "n_rows": self.n_rows,
            "scores": {c.column: round(c.score, 6) for c in self.columns},
        }


class DriftMonitor:
    """Column drift tests of a window against a fixed reference, chosen as Evidently does."""

    def __init__(
        self,
        reference: pd.DataFrame,
        numeric: list[str],
        categorical: list[str] | None = None,
        *,
        drift_share: float = 0.5,
    ) -> None:
        if not 0 < drift_share <= 1:
            raise ValueError("drift_share must be in (0, 1]")
        self.numeric = list(numeric)
        self.categorical = list(categorical or [])
        if not self.numeric + self.categorical:
            raise ValueError("the monitor needs at least one column")
        self.reference = reference[self.numeric + self.categorical].reset_index(drop=True)
        self.drift_share = drift_share
        self.small = len(self.reference) <= SMALL_REFERENCE

    def method(self, column: str) -> str:
        """The test for ``column``: ks / chisquare (small reference), else wasserstein /
        jensenshannon."""
        few = self.reference[column].nunique() <= FEW_VALUES
        if column in self.numeric and not few:
            return "ks" if self.small else "wasserstein"
        return "chisquare" if self.small else "jensenshannon"

    def check(self, current: pd.DataFrame) -> DriftCheck:
        """Test every column of ``current`` against the reference."""
        results = [self._column(c, current[c]) for c in self.numeric + self.categorical]
        share = sum(r.drifted for r in results) / len(results)
        return DriftCheck(results, share, share >= self.drift_share, int(len(current)))

    def _column(self, column: str, current: pd.Series) -> ColumnDrift:
        import numpy as np
        from scipy import stats
        from scipy.spatial.distance import jensenshannon

        ref = self.reference[column].dropna()
        cur = current.dropna()
        method = self.method(column)
        if method == "ks":
            score = float(stats.ks_2samp(ref.to_numpy(float), cur.to_numpy(float)).pvalue)
            return ColumnDrift(column, method, score, P_VALUE, score < P_VALUE)
        if method == "wasserstein":
            std = float(ref.std()) or 1.0
            score = float(stats.wasserstein_distance(ref.to_numpy(float), cur.to_numpy(float)))
            score /= std
            return ColumnDrift(column, method, score, DISTANCE, score >= DISTANCE)
        keys = sorted(set(ref.unique()) | set(cur.unique()), key=str)
        ref_counts = ref.value_counts().reindex(keys, fill_value=0).to_numpy(float)
        cur_counts = cur.value_counts().reindex(keys, fill_value=0).to_numpy(float)
        if method == "chisquare":
            expected = ref_counts / ref_counts.sum() * cur_counts.sum()
            present = expected > 0
            unseen = bool((cur_counts[~present] > 0).any())
            score = (
                0.0
                if unseen
                else float(stats.chisquare(cur_counts[present], expected[present]).pvalue)
            )
            return ColumnDrift(column, method, score, P_VALUE, score < P_VALUE)
        score = float(jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()))
        score = 0.0 if np.isnan(score) else score
        return ColumnDrift(column, method, score, DISTANCE, score >= DISTANCE)


@dataclass
class Detection:
    """When the monitor first saw dataset drift, and whether anyone was told."""

    position: int  # requests seen when the check ran
    check: dict[str, Any]
    alerted: bool
    wall_time: float  # time.time() of the check
    alert_error: str | None = None  # the notifier failed: nobody was told


@dataclass
class StreamMonitor:
    """A :class:`DriftMonitor` on a sliding window of the last ``window`` requests, checked
    every ``step`` requests. With ``alerts`` on, each check that drifts calls ``notify`` once
    per drift episode; with alerts off it only records when it would have alerted."""

    monitor: DriftMonitor
    window: int = 500
    step: int = 100
    alerts: bool = True
    notify: Callable[[dict[str, Any]], None] | None = None
    detections: list[Detection] = field(default_factory=list)
    checks: int = 0
    _rows: deque = field(default_factory=deque, repr=False)
    _seen: int = 0
    _drifting: bool = False

    def __post_init__(self) -> None:
        if self.window < 1 or self.step < 1:
            raise ValueError("window and step must be >= 1")
        self._rows = deque(maxlen=self.window)

    def observe(self, row: dict[str, Any]) -> Detection | None:
        """Add one request; run a check when due; return the detection it made, if any."""
        import time

        import pandas as pd

        self._rows.append(row)
        self._seen += 1
        if len(self._rows) < self.window or self._seen % self.step:
            return None
        self.checks += 1
        result = self.monitor.check(pd.DataFrame(list(self._rows)))
        if not result.dataset_drift:
            self._drifting = False
            return None
        first_of_episode = not self._drifting
        self._drifting = True
        if not first_of_episode:
            return None
        summary = {**result.summary(), "position": self._seen}
        detection = Detection(self._seen, summary, False, time.time())
        if self.alerts and self.notify is not None:
            try:
                self.notify(summary)
                detection.alerted = True
            except Exception as exc:  # noqa: BLE001 - a failed alert is recorded, not raised
                detection.alert_error = f"{type(exc).__name__}: {exc}"
        self.detections.append(detection)
        return detection

    def report(self) -> list[dict[str, Any]]:
        return [asdict(d) for d in self.detections]


def webhook_notifier(url: str, timeout_s: float = 5.0) -> Callable[[dict[str, Any]], None]:
    """A notifier POSTing the drift summary as JSON to ``url`` (Slack-style webhook)."""
    import httpx

    def notify(summary: dict[str, Any]) -> None:
        text = f"drift: {', '.join(summary['drifted_columns'])} at request {summary['position']}"
        httpx.post(url, json={"text": text, "drift": summary}, timeout=timeout_s).raise_for_status()

    return notify
