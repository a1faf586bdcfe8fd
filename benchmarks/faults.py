"""Time every data fault against a full deep copy of the same frame.

Builds an N-row (default 10M), 10-column frame: 6 float64, 2 int64, 1 category column (pandas'
default ``str`` dtype, or ``--category-dtype category``) and 1 binary int64 label with 30%
positives. Each fault runs with fraction 0.1 (drift: its default 1.0) on one column. The copy
baseline is the median of ``repeats`` deep copies before and ``repeats`` after the faults. Prints
``fault  median_s  ratio_vs_copy``, then the floor no ``type_flip`` can beat (boxing the column
into Python objects, ``np.asarray(col, dtype=object)``); last line
``worst ratio vs copy: <ratio> (<fault>)``.

    python benchmarks/faults.py [--rows N] [--repeats 5] [--category-dtype str|category]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlchaos_orchestration.faults import build_fault, registry

SPECS: dict[str, dict[str, Any]] = {
    "nulls": {"columns": ["f0"]},
    "out_of_range": {"columns": ["f1"]},
    "type_flip": {"columns": ["f2"]},
    "unseen_category": {"columns": ["category"]},
    "drop_column": {"columns": ["f3"]},
    "rename_column": {"columns": ["f4"]},
    "duplicate_rows": {},
    "label_shuffle": {"label": "label"},
    "mislabel": {"label": "label"},
    "class_removal": {"label": "label"},
    "drift": {"columns": ["f5"]},
}


def build_frame(rows: int, category_dtype: str, seed: int = 0) -> pd.DataFrame:
    """The benchmark frame (see module docstring)."""
    rng = np.random.default_rng(seed)
    names = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
    data: dict[str, Any] = {f"f{i}": rng.normal(size=rows) for i in range(6)}
    data["i0"] = rng.integers(0, 1_000, size=rows)
    data["i1"] = rng.integers(0, 50, size=rows)
    data["category"] = pd.array(names[rng.integers(0, len(names), size=rows)]).astype(
        category_dtype
    )
    data["label"] = (rng.random(rows) < 0.3).astype(np.int64)
    return pd.DataFrame(data)


def timings(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Wall times of ``repeats`` calls (each result is dropped before the next call)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        del out
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--category-dtype", choices=["str", "category"], default="str")
    args = parser.parse_args(argv)

    frame = build_frame(args.rows, args.category_dtype)
    missing = sorted(set(n for n, c in registry().items() if c.family == "data") - set(SPECS))
    if missing:
        raise SystemExit(f"no benchmark spec for: {', '.join(missing)}")

    def copy() -> pd.DataFrame:
        return frame.copy(deep=True)

    print(f"rows={args.rows:,} category dtype={frame['category'].dtype} repeats={args.repeats}")
    copy_times = timings(copy, args.repeats)
    seconds: dict[str, float] = {}
    for name, params in SPECS.items():
        fault = build_fault({"fault": name, **params})
        seconds[name] = statistics.median(
            timings(lambda f=fault: f.apply(frame, seed=7), args.repeats)
        )
    column = frame[SPECS["type_flip"]["columns"][0]].to_numpy()
    boxing_s = statistics.median(timings(lambda: np.asarray(column, dtype=object), args.repeats))
    copy_s = statistics.median(copy_times + timings(copy, args.repeats))
    print(f"{'fault':<18}{'median_s':>10}{'ratio_vs_copy':>15}")
    print(f"{'copy(deep=True)':<18}{copy_s:>10.4f}{1.0:>15.2f}")
    ratios = {name: t / copy_s for name, t in seconds.items()}
    for name, t in seconds.items():
        print(f"{name:<18}{t:>10.4f}{ratios[name]:>15.2f}")
    print(f"{'floor: box column':<18}{boxing_s:>10.4f}{boxing_s / copy_s:>15.2f}  (type_flip)")
    worst = max(ratios, key=ratios.__getitem__)
    print(f"worst ratio vs copy: {ratios[worst]:.2f} ({worst})")


if __name__ == "__main__":
    main()
