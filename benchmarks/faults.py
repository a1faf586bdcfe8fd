"""Time every data fault against a full deep copy of the same frame.

Builds an N-row (default 10M), 10-column frame: 6 float64, 2 int64, 1 category column (pandas'
default ``str`` dtype, or ``--category-dtype category``) and 1 binary int64 label with 30%
positives. Each fault runs with fraction 0.1 (drift: its default 1.0) on one column. The copy
baseline is a deep copy timed just before every run; a ratio is the median over ``repeats`` of
run time / the copy just before it (robust on a machine shared with other work). Prints
``fault  median_s  ratio_vs_copy``, then the floor no ``type_flip`` can beat (boxing the column
into Python objects, ``np.asarray(col, dtype=object)``) and ``out_of_range`` as it was at commit
e8a35b0 (the speed-up, side by side, median over 3 x ``repeats`` pairs); then
``value faults worst <r>, row faults worst <r>, type_flip <r>x floor`` (value faults: nulls,
out_of_range, unseen_category, drift; row faults: duplicate_rows, class_removal) and, last,
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
    # serving-traffic faults (faults/traffic): timed, not in the value/row classes below
    "traffic_drift": {"columns": ["f0"], "segment": {"category": "alpha"}},
    "feedback_skew": {"column": "category", "groups": ["alpha"]},
}


#: value faults (type_flip is judged against its own floor instead)
VALUE_FAULTS = ("nulls", "out_of_range", "unseen_category", "drift")
#: faults that change the row count (every column written at a new length)
ROW_COUNT_FAULTS = ("duplicate_rows", "class_removal")


def legacy_out_of_range(frame: pd.DataFrame, column: str, seed: int) -> pd.DataFrame:
    """``out_of_range`` as of commit e8a35b0, step for step: geometric-gap sampler trimmed to
    exactly k, pandas missing-value check of the sample, NaN-skipping range, fresh copy, frame
    rebuilt with the new column - kept to measure the speed-up side by side."""
    rng = np.random.default_rng(seed)
    n = len(frame)
    k = round(0.1 * n)
    p = k / n
    expected = n * p
    gaps = rng.geometric(p, size=int(expected + 6 * expected**0.5 + 64))
    pos = np.cumsum(gaps, dtype=np.int64) - 1
    pos = pos[: np.searchsorted(pos, n)]
    if len(pos) > k:
        pos = np.delete(pos, rng.choice(len(pos), size=len(pos) - k, replace=False))
    values = frame[column].to_numpy()
    rows = pos[~pd.isna(values[pos])]
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    span = hi - lo
    new = np.where(rng.random(len(rows)) < 0.5, hi + 10 * span, lo - 10 * span)
    out = frame[column].to_numpy(copy=True)
    out[rows] = new
    faulted = frame.copy(deep=False)
    faulted[column] = pd.Series(out, index=frame.index, name=column, copy=False)
    return faulted


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


FLOOR = "floor: box column"
LEGACY = "out_of_range@e8a35b0"


def paired(
    copy: Callable[[], Any], fn: Callable[[], Any], repeats: int
) -> list[tuple[float, float]]:
    """``repeats`` pairs (copy seconds, ``fn`` seconds), each copy timed just before its run, so
    a ratio compares runs made under the same load."""
    return [(timings(copy, 1)[0], timings(fn, 1)[0]) for _ in range(repeats)]


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
    column = frame[SPECS["type_flip"]["columns"][0]].to_numpy()
    before = SPECS["out_of_range"]["columns"][0]

    def run(fault: Any) -> Callable[[], Any]:
        return lambda: fault.apply(frame, seed=7)

    jobs = {name: run(build_fault({"fault": name, **params})) for name, params in SPECS.items()}
    jobs[FLOOR] = lambda: np.asarray(column, dtype=object)
    jobs[LEGACY] = lambda: legacy_out_of_range(frame, before, 7)
    copies: list[float] = []
    seconds: dict[str, float] = {}
    ratios: dict[str, float] = {}
    for name, job in jobs.items():
        pairs = paired(copy, job, args.repeats)
        copies += [c for c, _ in pairs]
        seconds[name] = statistics.median(t for _, t in pairs)
        ratios[name] = statistics.median(t / c for c, t in pairs)
    print(f"{'fault':<22}{'median_s':>10}{'ratio_vs_copy':>15}")
    print(f"{'copy(deep=True)':<22}{statistics.median(copies):>10.4f}{1.0:>15.2f}")
    for name in jobs:
        note = {FLOOR: "  (type_flip)", LEGACY: "  (before)"}.get(name, "")
        print(f"{name:<22}{seconds[name]:>10.4f}{ratios[name]:>15.2f}{note}")
    # each against its own reference, timed in pairs too; out_of_range takes tens of ms, so a
    # time slice lost to another process moves one pair a lot: three times the pairs
    versus = {
        name: statistics.median(t / r for r, t in paired(jobs[ref], jobs[name], pairs))
        for name, ref, pairs in (
            ("out_of_range", LEGACY, 3 * args.repeats),
            ("type_flip", FLOOR, args.repeats),
        )
    }
    print(f"out_of_range now / before: {versus['out_of_range']:.2f}")
    by_class = {
        kind: max(names, key=ratios.__getitem__)
        for kind, names in (("value", VALUE_FAULTS), ("row", ROW_COUNT_FAULTS))
    }
    print(
        f"value faults worst {ratios[by_class['value']]:.2f} ({by_class['value']}), "
        f"row faults worst {ratios[by_class['row']]:.2f} ({by_class['row']}), "
        f"type_flip {versus['type_flip']:.2f}x floor"
    )
    del ratios[FLOOR], ratios[LEGACY]
    worst = max(ratios, key=ratios.__getitem__)
    print(f"worst ratio vs copy: {ratios[worst]:.2f} ({worst})")


if __name__ == "__main__":
    main()
