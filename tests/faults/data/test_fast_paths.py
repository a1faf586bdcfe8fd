"""The speed paths of the data faults give exactly what the plain paths give: columns built on
threads, type_flip's overlapped formatting, and the whole-column facts merged from chunks."""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pyarrow as pa
import pytest

from mlchaos_orchestration.faults import build_fault
from mlchaos_orchestration.faults.data import common, values


@pytest.fixture(autouse=True)
def idle_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The threaded paths run whatever else the machine is doing."""
    for module in (common, values):
        monkeypatch.setattr(module, "free_cores", lambda limit: limit)


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 20_000
    return pd.DataFrame(
        {
            "f": rng.normal(size=n),
            "g": np.where(rng.random(n) < 0.05, np.nan, rng.normal(size=n)),
            "i": rng.integers(0, 9, n),
            "cat": pd.array(rng.choice(["x", "y"], n), dtype="str"),
            "label": (rng.random(n) < 0.3).astype(np.int64),
        }
    )


def _both(
    monkeypatch: pytest.MonkeyPatch,
    attr: tuple[Any, str],
    spec: dict[str, Any],
    frame: pd.DataFrame,
) -> tuple[Any, Any]:
    fault = build_fault(spec)
    plain = fault.apply(frame, 3)
    monkeypatch.setattr(*attr, 0)
    fast = fault.apply(frame, 3)
    return plain, fast


@pytest.mark.parametrize(
    "spec", [{"fault": "duplicate_rows"}, {"fault": "class_removal", "label": "label"}]
)
def test_columns_built_on_threads_equal_the_sequential_build(
    monkeypatch: pytest.MonkeyPatch, frame: pd.DataFrame, spec: dict[str, Any]
) -> None:
    plain, fast = _both(monkeypatch, (common, "_THREADED_ROWS"), spec, frame)
    pdt.assert_frame_equal(plain.frame, fast.frame)
    np.testing.assert_array_equal(plain.rows, fast.rows)


def test_type_flip_overlapped_formatting_equals_the_plain_path(
    monkeypatch: pytest.MonkeyPatch, frame: pd.DataFrame
) -> None:
    spec = {"fault": "type_flip", "columns": ["f", "i"]}
    plain, fast = _both(monkeypatch, (values, "_OVERLAP_ROWS"), spec, frame)
    pdt.assert_frame_equal(plain.frame, fast.frame)
    flipped = fast.frame["f"].iloc[fast.rows]
    assert flipped.map(type).eq(str).all() and len(fast.rows) == 2_000


def test_type_flip_boxed_block_by_block_is_a_real_mixed_column(
    monkeypatch: pytest.MonkeyPatch, frame: pd.DataFrame
) -> None:
    spec = {"fault": "type_flip", "columns": ["f", "i"]}
    plain = build_fault(spec).apply(frame, 3)
    monkeypatch.setattr(values, "_BLOCK", 1_000)  # 20 blocks, the last one partial
    monkeypatch.setattr(values, "_OVERLAP_ROWS", 0)
    blocks = build_fault(spec).apply(frame, 3)
    pdt.assert_frame_equal(plain.frame, blocks.frame)
    column = blocks.frame["f"]
    kinds = column.map(type)
    assert column.dtype == object and set(kinds) == {float, str}
    assert kinds.eq(str).sum() == 2_000 and kinds.iloc[blocks.rows].eq(str).all()
    assert column.iloc[blocks.rows].astype(float).tolist() == frame["f"].iloc[blocks.rows].tolist()
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):  # a reader's Arrow conversion
        pa.Table.from_pandas(blocks.frame[["f"]])


def test_chunk_facts_merge_into_the_whole_column_facts(frame: pd.DataFrame) -> None:
    chunks = [frame.iloc[i : i + 3_000] for i in range(0, len(frame), 3_000)]
    for spec, column in (
        ({"fault": "out_of_range", "columns": ["g"]}, "g"),
        ({"fault": "drift", "columns": ["g"]}, "g"),
        ({"fault": "unseen_category", "columns": ["cat"], "value": "y"}, "cat"),
    ):
        fault = build_fault(spec)
        merged = fault.merge_stats([fault.chunk_stat(c[column]) for c in chunks])
        whole = fault.stat(frame[column])
        whole = whole[:3] if spec["fault"] == "out_of_range" else whole  # no copy
        assert merged == pytest.approx(whole) if spec["fault"] == "drift" else merged == whole


def test_out_of_range_keeps_the_sample_where_a_float_column_has_no_missing_value(
    frame: pd.DataFrame,
) -> None:
    result = build_fault({"fault": "out_of_range", "columns": ["f", "g"]}).apply(frame, 1)
    g_missing = int(frame["g"].iloc[result.rows].isna().sum())
    assert len(result.rows) == 2_000  # the union: f has every sampled row
    changed_g = int((result.frame["g"] != frame["g"]).sum()) - int(frame["g"].isna().sum())
    assert changed_g == 2_000 - g_missing and g_missing > 0


def test_unseen_category_built_in_slices_equals_the_single_pass(
    monkeypatch: pytest.MonkeyPatch, frame: pd.DataFrame
) -> None:
    spec = {"fault": "unseen_category", "columns": ["cat"]}
    plain, fast = _both(monkeypatch, (common, "_THREADED_ROWS"), spec, frame)
    pdt.assert_frame_equal(plain.frame, fast.frame)
    assert fast.frame["cat"].dtype == frame["cat"].dtype
    assert int((fast.frame["cat"] == "__unseen__").sum()) == 2_000


def test_out_of_range_sees_a_missing_value_in_any_block() -> None:
    values = np.random.default_rng(2).normal(size=150_000)
    values[140_000] = np.nan  # in the third block of the fused copy + range pass
    frame = pd.DataFrame({"x": values})
    result = build_fault({"fault": "out_of_range", "columns": ["x"], "fraction": 1.0}).apply(
        frame, 4
    )
    lo, hi = result.details["range"]["x"]
    assert (lo, hi) == (np.nanmin(values), np.nanmax(values))
    assert len(result.rows) == 149_999 and np.isnan(result.frame["x"].iloc[140_000])


@pytest.mark.parametrize(("loadavg", "free"), [("0.4 0.5 0.6 1/300 9", 2), ("9 9 9 7/300 9", 1)])
def test_threads_go_only_onto_idle_cores(
    monkeypatch: pytest.MonkeyPatch, loadavg: str, free: int
) -> None:
    monkeypatch.undo()  # the real free_cores
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(common, "open", lambda *a, **k: io.StringIO(loadavg), raising=False)
    assert common.free_cores(4) == free and common.free_cores(1) == 1
