"""Synthetic labelled frames for tests and benchmarks of label faults and label gates."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

CLASS_SHARES = (0.5, 0.3, 0.2)


def labelled_frame(n: int, seed: int) -> pd.DataFrame:
    """``n`` rows: id, amount, age, category, flag, timestamp and a 3-class ``label``
    (shares 0.5 / 0.3 / 0.2) that depends on the features, as real labels do.

    Frames with different seeds are independent draws of the same distribution."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=list(CLASS_SHARES))
    amount = rng.lognormal(3 + 0.4 * y, 0.8).round(2)
    age = rng.normal(40 - 5 * y, 12).clip(18, 90).round()
    letters = np.array(["a", "b", "c", "d"])
    informative = rng.random(n) < 0.6
    category = np.where(
        informative, letters[(y + rng.integers(0, 2, n)) % 4], letters[rng.integers(0, 4, n)]
    )
    flag = rng.random(n) < (0.2 + 0.25 * y)
    timestamp = pd.Timestamp("2026-11-20") + pd.to_timedelta(rng.integers(0, 86400, n), unit="s")
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64) + seed * n,
            "amount": amount,
            "age": age,
            "category": category,
            "flag": flag,
            "timestamp": timestamp,
            "label": y,
        }
    )


def cyclic_mislabel(
    frame: pd.DataFrame, fraction: float, seed: int, label: str = "label", classes: int = 3
) -> pd.DataFrame:
    """A copy of ``frame`` whose ``fraction`` of rows have label ``(label + 1) mod classes``."""
    import numpy as np

    out = frame.copy()
    rows = np.random.default_rng(seed).choice(
        len(out), int(round(fraction * len(out))), replace=False
    )
    column = out.columns.get_loc(label)
    out.iloc[rows, column] = (out.iloc[rows, column].to_numpy() + 1) % classes
    return out
