"""The data-fault catalog: exact blast radius, reproducibility, no mutation, validated params."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pyarrow as pa
import pytest
from pydantic import ValidationError

from mlchaos_orchestration.errors import SafetyError, SpecError
from mlchaos_orchestration.faults import build_fault, registry
from mlchaos_orchestration.faults.data import apply_to_arrow, common, fast_sample

N = 1_000
FLOATS = [f"f{i}" for i in range(6)]

# fault name -> params used throughout (fraction 0.1 => 100 rows of the 1,000-row frame)
VALUE_FAULTS: dict[str, dict[str, Any]] = {
    "nulls": {"columns": ["f0", "i0", "cat"]},
    "out_of_range": {"columns": ["f1", "i1"]},
    "type_flip": {"columns": ["f2", "i0"]},
    "unseen_category": {"columns": ["cat"]},
    "drift": {"columns": ["f3", "i1"], "fraction": 0.1},
}
ROW_FAULTS: dict[str, dict[str, Any]] = {
    "duplicate_rows": {},
    "label_shuffle": {"label": "label"},
    "mislabel": {"label": "label"},
}
ALL_FAULTS: dict[str, dict[str, Any]] = {
    **VALUE_FAULTS,
    **ROW_FAULTS,
    "drop_column": {"columns": ["f4"]},
    "rename_column": {"columns": ["f5"]},
    "class_removal": {"label": "label"},
}
SAMPLED = [*VALUE_FAULTS, *ROW_FAULTS]


@pytest.fixture
def frame() -> pd.DataFrame:
    """1,000 seeded rows: 6 float, 2 int, 1 string category, 1 binary label (30% positive)."""
    rng = np.random.default_rng(42)
    data: dict[str, Any] = {c: rng.normal(size=N) for c in FLOATS}
    data["i0"] = rng.integers(0, 100, size=N)
    data["i1"] = rng.integers(0, 5, size=N)
    data["cat"] = pd.array(rng.choice(["red", "green", "blue"], size=N), dtype="str")
    data["label"] = (rng.random(N) < 0.3).astype(np.int64)
    return pd.DataFrame(data)


def fault(name: str, **extra: Any):
    return build_fault({"fault": name, **ALL_FAULTS[name], **extra})


def changed(before: pd.Series, after: pd.Series) -> np.ndarray:
    """Positions whose value or Python type differs (missing == missing)."""

    def norm(x: Any) -> Any:
        return None if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)) else x

    b, a = before.astype(object).tolist(), after.astype(object).tolist()
    return np.array(
        [
            i
            for i, (x, y) in enumerate(zip(b, a, strict=True))
            if type(norm(x)) is not type(norm(y)) or norm(x) != norm(y)
        ],
        dtype=np.int64,
    )


# ------------------------------------------------------------------------------ the catalog
def test_registry_lists_every_data_fault_with_a_description() -> None:
    faults = {n: c for n, c in registry().items() if c.family == "data"}
    assert set(ALL_FAULTS) <= set(faults)
    for cls in faults.values():
        assert cls.description() and "\n" not in cls.description()


# -------------------------------------------------------------------------- blast radius
@pytest.mark.parametrize("name", list(VALUE_FAULTS))
def test_value_fault_changes_exactly_the_fraction_of_the_columns(frame, name) -> None:
    result = fault(name).apply(frame, seed=1)
    cols = ALL_FAULTS[name]["columns"]
    assert result.columns == cols
    assert abs(len(result.rows) - 100) <= 1
    for c in frame.columns:
        diff = changed(frame[c], result.frame[c])
        expected = result.rows if c in cols else np.empty(0, dtype=np.int64)
        np.testing.assert_array_equal(diff, expected, err_msg=f"{name} column {c}")


def test_nulls_dtypes(frame) -> None:
    out = fault("nulls").apply(frame, seed=1).frame
    assert out["f0"].dtype == np.float64
    assert out["i0"].dtype == pd.Int64Dtype()
    assert out["cat"].dtype == frame["cat"].dtype
    assert out[["f0", "i0", "cat"]].isna().sum().tolist() == [100, 100, 100]


def test_missing_cells_are_left_alone_per_column(frame) -> None:
    holes = frame.assign(f0=frame["f0"].mask(frame.index < 50))
    result = build_fault({"fault": "nulls", "columns": ["f0", "i0"], "fraction": 1.0}).apply(
        holes, seed=1
    )
    assert result.frame["i0"].isna().all() and len(result.rows) == N
    drifted = build_fault({"fault": "drift", "columns": ["f0"]}).apply(holes, seed=1)
    np.testing.assert_array_equal(drifted.rows, np.arange(50, N))
    np.testing.assert_array_equal(changed(holes["f0"], drifted.frame["f0"]), drifted.rows)


def test_out_of_range_lands_outside_the_observed_range(frame) -> None:
    result = fault("out_of_range").apply(frame, seed=1)
    new = result.frame["f1"].to_numpy()[result.rows]
    lo, hi = frame["f1"].min(), frame["f1"].max()
    assert ((new > hi + 9 * (hi - lo)) | (new < lo - 9 * (hi - lo))).all()
    assert (new > hi).any() and (new < lo).any()  # both sides are used
    assert result.frame["i1"].dtype == np.int64
    fixed = fault("out_of_range", value=-1e9).apply(frame, seed=1).frame
    assert (fixed["f1"].to_numpy()[result.rows] == -1e9).all()


def test_type_flip_writes_string_forms(frame) -> None:
    result = fault("type_flip").apply(frame, seed=1)
    out = result.frame
    assert out["i0"].dtype == object
    r = result.rows[0]
    assert out["i0"].iloc[r] == str(frame["i0"].iloc[r])
    assert float(out["f2"].iloc[r]) == frame["f2"].iloc[r]
    assert isinstance(out["f2"].iloc[r], str)
    flags = pd.DataFrame({"b": [True, False, True, False]})
    flipped = build_fault({"fault": "type_flip", "columns": ["b"], "fraction": 1.0})
    assert flipped.apply(flags, seed=0).frame["b"].tolist() == ["true", "false", "true", "false"]


def test_unseen_category_value_is_new(frame) -> None:
    result = fault("unseen_category").apply(frame, seed=1)
    assert "__unseen__" not in set(frame["cat"])
    assert (result.frame["cat"].iloc[result.rows] == "__unseen__").all()
    as_cat = frame.assign(cat=frame["cat"].astype("category"))
    out = fault("unseen_category").apply(as_cat, seed=1).frame["cat"]
    assert "__unseen__" in out.cat.categories and (out == "__unseen__").sum() == 100
    with pytest.raises(SpecError):
        fault("unseen_category", value="red").apply(frame, seed=1)
    with pytest.raises(SpecError):
        fault("unseen_category", columns=["f0"]).apply(frame, seed=1)


def test_drift_shifts_by_k_std(frame) -> None:
    result = build_fault({"fault": "drift", "columns": ["f3"], "k": 2.0}).apply(frame, seed=1)
    assert len(result.rows) == N  # default fraction 1.0
    shift = result.frame["f3"] - frame["f3"]
    assert np.allclose(shift, 2.0 * frame["f3"].std())
    ints = fault("drift").apply(frame, seed=1).frame["i1"]
    assert ints.dtype == np.int64


def test_duplicate_rows_appends_the_sampled_rows(frame) -> None:
    result = fault("duplicate_rows").apply(frame, seed=1)
    out = result.frame
    assert len(result.rows) == 100 and len(out) == N + 100
    pdt.assert_frame_equal(out.iloc[:N], frame)
    pdt.assert_frame_equal(
        out.iloc[N:].reset_index(drop=True), frame.iloc[result.rows].reset_index(drop=True)
    )
    assert isinstance(out.index, pd.RangeIndex)


def test_label_shuffle_permutes_within_the_sample(frame) -> None:
    result = fault("label_shuffle").apply(frame, seed=1)
    out = result.frame["label"]
    np.testing.assert_array_equal(changed(frame["label"], out), result.rows)
    assert result.details["shuffled_rows"] == 100
    assert out.sum() == frame["label"].sum()  # a permutation keeps the class balance
    assert 0 < len(result.rows) <= 100


def test_mislabel_flips_binary_and_moves_multiclass(frame) -> None:
    result = fault("mislabel").apply(frame, seed=1)
    np.testing.assert_array_equal(changed(frame["label"], result.frame["label"]), result.rows)
    assert len(result.rows) == 100
    assert result.details["mapping"] == {"0": 1, "1": 0}
    multi = frame.assign(label=np.arange(N) % 4)
    out = fault("mislabel").apply(multi, seed=1)
    moved = out.frame["label"].to_numpy()[out.rows]
    assert (moved != multi["label"].to_numpy()[out.rows]).all()
    assert set(moved) <= {0, 1, 2, 3} and len(set(moved)) == 4


def test_class_removal_drops_the_minority_class(frame) -> None:
    result = fault("class_removal").apply(frame, seed=1)
    minority = frame["label"].value_counts().idxmin()
    np.testing.assert_array_equal(result.rows, np.flatnonzero(frame["label"] == minority))
    pdt.assert_frame_equal(result.frame, frame[frame["label"] != minority])
    chosen = fault("class_removal", classes=0).apply(frame, seed=1)
    assert set(chosen.frame["label"]) == {1}
    with pytest.raises(SpecError):
        fault("class_removal", classes=[7]).apply(frame, seed=1)
    with pytest.raises(SafetyError):
        fault("class_removal", max_rows=10).apply(frame, seed=1)


def test_schema_faults(frame) -> None:
    dropped = fault("drop_column").apply(frame, seed=1)
    assert "f4" not in dropped.frame and dropped.columns == ["f4"] and len(dropped.rows) == 0
    renamed = fault("rename_column").apply(frame, seed=1)
    assert "f5_renamed" in renamed.frame and "f5" not in renamed.frame
    assert renamed.details["mapping"] == {"f5": "f5_renamed"}
    mapped = build_fault({"fault": "rename_column", "mapping": {"label": "target"}})
    assert list(mapped.apply(frame, seed=1).frame.columns)[-1] == "target"
    clash = build_fault({"fault": "rename_column", "mapping": {"f0": "f1"}})
    with pytest.raises(SpecError):
        clash.apply(frame, seed=1)
    with pytest.raises(SpecError):
        build_fault({"fault": "rename_column", "mapping": {"nope": "x"}}).apply(frame, seed=1)


# --------------------------------------------------------------- seeds, mutation, max_rows
@pytest.mark.parametrize("name", SAMPLED)
def test_same_seed_same_result_other_seed_other_rows(frame, name) -> None:
    a, b = fault(name).apply(frame, seed=3), fault(name).apply(frame, seed=3)
    pdt.assert_frame_equal(a.frame, b.frame)
    np.testing.assert_array_equal(a.rows, b.rows)
    assert not np.array_equal(a.rows, fault(name).apply(frame, seed=4).rows)


@pytest.mark.parametrize("name", list(ALL_FAULTS))
def test_input_is_never_mutated(frame, name) -> None:
    before = frame.copy(deep=True)
    result = fault(name).apply(frame, seed=1)
    pdt.assert_frame_equal(frame, before)
    if result.columns and result.columns[0] in result.frame:  # writing the result leaves input
        result.frame.iloc[:, 0] = 0
        pdt.assert_frame_equal(frame, before)


@pytest.mark.parametrize("name", SAMPLED)
def test_max_rows_caps_the_blast_radius(frame, name) -> None:
    result = fault(name, fraction=0.9, max_rows=7).apply(frame, seed=1)
    assert 0 < len(result.rows) <= 7
    if name != "label_shuffle":
        assert len(result.rows) == 7


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("name", list(ALL_FAULTS))
def test_bad_fraction_is_rejected(name) -> None:
    with pytest.raises(ValidationError):
        fault(name, fraction=3)


@pytest.mark.parametrize(
    "spec",
    [
        {"fault": "nulls", "columns": []},
        {"fault": "nulls", "columns": ["f0", "f0"]},
        {"fault": "drift", "columns": ["f0"], "k": 0},
        {"fault": "out_of_range", "columns": ["f0"], "factor": -1},
        {"fault": "rename_column"},
        {"fault": "rename_column", "columns": ["f0"], "mapping": {"f0": "x"}},
        {"fault": "mislabel"},
        {"fault": "nulls", "columns": ["f0"], "max_rows": -1},
        {"fault": "nulls", "columns": ["f0"], "surprise": 1},
    ],
)
def test_bad_params_are_rejected(spec) -> None:
    with pytest.raises(ValidationError):
        build_fault(spec)


@pytest.mark.parametrize("name", [n for n in ALL_FAULTS if n not in ("duplicate_rows",)])
def test_unknown_column_raises_spec_error(frame, name) -> None:
    key = "label" if "label" in ALL_FAULTS[name] else "columns"
    bad = "nope" if key == "label" else ["nope"]
    with pytest.raises(SpecError, match="nope"):
        fault(name, **{key: bad}).apply(frame, seed=1)


@pytest.mark.parametrize("name", ["out_of_range", "drift"])
def test_numeric_faults_reject_text_columns(frame, name) -> None:
    with pytest.raises(SpecError, match="numeric"):
        fault(name, columns=["cat"]).apply(frame, seed=1)


# ------------------------------------------------------------------------------- sampler
@pytest.mark.parametrize(
    "n,k",
    [(10, 0), (10, 10), (1000, 1), (1000, 100), (1000, 350), (1000, 450), (1000, 700)]
    + [(100_000, 40_000)],
)
def test_fast_sample_is_exact_sorted_distinct(n, k) -> None:
    rows = fast_sample(n, k, np.random.default_rng(0))
    assert len(rows) == k and rows.dtype == np.int64
    assert (np.diff(rows) > 0).all() and (k == 0 or (rows[0] >= 0 and rows[-1] < n))


def test_fast_sample_is_uniform() -> None:
    rng = np.random.default_rng(0)
    hits = np.zeros(20)
    for _ in range(4000):
        hits[fast_sample(20, 5, rng)] += 1
    expected = 4000 * 5 / 20
    assert np.abs(hits - expected).max() < 5 * np.sqrt(expected)  # ~5 sigma


@pytest.mark.parametrize("k", [6, 12, 27])  # geometric gaps; 27 of 60: a dense mask pass
def test_fast_sample_is_uniform_and_exact_on_both_paths(k) -> None:
    rng = np.random.default_rng(1)
    n, draws = 60, 6000
    hits = np.zeros(n)
    for _ in range(draws):
        rows = fast_sample(n, k, rng)
        assert len(rows) == k and (np.diff(rows) > 0).all()
        hits[rows] += 1
    expected = draws * k / n
    assert np.abs(hits - expected).max() < 5 * np.sqrt(expected)  # ~5 sigma


def test_bernoulli_gaps_are_geometric() -> None:
    p = 0.1
    pos = common._bernoulli_gaps(2_000_000, p, np.random.default_rng(3))
    gaps = np.diff(pos, prepend=-1)
    assert abs(len(pos) - 200_000) < 6 * np.sqrt(200_000 * p * (1 - p))
    for j in (1, 2, 10, 30):  # P(gap = j) = (1 - p)^(j - 1) p
        share, want = (gaps == j).mean(), (1 - p) ** (j - 1) * p
        assert abs(share - want) < 6 * np.sqrt(want / len(gaps))


def test_sample_trim_and_top_up_splice_like_numpy() -> None:
    rng = np.random.default_rng(4)
    for n in (1, 7, 300):
        pos = np.sort(rng.choice(3 * n, size=n, replace=False)).astype(np.int64)
        rest = np.setdiff1d(np.arange(3 * n), pos)
        for d in (0, 1, min(n, 5)):
            drop = rng.choice(n, size=d, replace=False)
            np.testing.assert_array_equal(common._without(pos, drop), np.delete(pos, drop))
            new = np.sort(rng.choice(rest, size=d, replace=False)).astype(np.int64)
            want = np.insert(pos, np.searchsorted(pos, new), new)
            np.testing.assert_array_equal(common._merged(pos, new), want)


def test_out_of_range_picks_each_side_by_a_fair_coin() -> None:
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=40_000)})
    result = build_fault({"fault": "out_of_range", "columns": ["x"], "fraction": 0.5}).apply(
        frame, seed=3
    )
    above = (result.frame["x"].to_numpy()[result.rows] > frame["x"].max()).mean()
    assert abs(above - 0.5) < 5 * np.sqrt(0.25 / len(result.rows))


# --------------------------------------------------------------------------------- arrow
def test_apply_to_arrow(frame) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    out, result = apply_to_arrow(fault("nulls"), table, seed=1)
    assert isinstance(out, pa.Table) and out.num_rows == N
    assert out.column("f0").null_count == 100 and out.column("cat").null_count == 100
    assert out.column("f1").equals(table.column("f1"))
    flipped, _ = apply_to_arrow(fault("type_flip"), table, seed=1)
    assert pa.types.is_string(flipped.schema.field("i0").type) or pa.types.is_large_string(
        flipped.schema.field("i0").type
    )


# ------------------------------------------------------------------ fast paths vs plain pandas
@pytest.fixture
def mixed() -> pd.DataFrame:
    """Every column kind the fast paths special-case, with missing values and a shuffled index."""
    rng = np.random.default_rng(3)
    words = np.array(["a", "bb", None, "dddd"], dtype=object)
    return pd.DataFrame(
        {
            "f": rng.normal(size=N),
            "b": rng.random(N) < 0.5,
            "t": pd.date_range("2024-01-01", periods=N, freq="h"),
            "n": pd.array(rng.integers(0, 5, size=N), dtype="Int64"),
            "s": pd.array(words[rng.integers(0, 4, size=N)], dtype="str"),
            "c": pd.Categorical(words[rng.integers(0, 2, size=N)]),
            "o": np.array([1, "x", 2.5, None] * (N // 4), dtype=object),
            "label": rng.integers(0, 3, size=N),
        },
        index=pd.Index(rng.permutation(N) * 7),
    )


def test_row_faults_match_pandas_and_do_not_share_memory(mixed) -> None:
    before = mixed.copy(deep=True)
    dup = fault("duplicate_rows").apply(mixed, seed=2)
    pdt.assert_frame_equal(dup.frame, pd.concat([mixed, mixed.iloc[dup.rows]]))
    plain = mixed.reset_index(drop=True)
    dup_plain = fault("duplicate_rows").apply(plain, seed=2).frame
    assert isinstance(dup_plain.index, pd.RangeIndex) and len(dup_plain) == N + 100
    gone = fault("class_removal", classes=1).apply(mixed, seed=2)
    pdt.assert_frame_equal(gone.frame, mixed[mixed["label"] != 1])
    for out in (dup.frame, dup_plain, gone.frame):
        out.iloc[:, :2] = [0.5, True]  # writable, and written without touching the input
    pdt.assert_frame_equal(mixed, before)


def test_unseen_category_on_arrow_strings_keeps_nulls_and_dtype(mixed) -> None:
    chunked = pa.chunked_array([pa.array(mixed["s"].iloc[:400]), pa.array(mixed["s"].iloc[400:])])
    for column in (mixed["s"], pd.Series(pd.array(chunked, dtype="str"), index=mixed.index)):
        data = mixed.assign(s=column)
        result = fault("unseen_category", columns=["s"], fraction=0.5).apply(data, seed=2)
        expected = data["s"].copy()
        expected.iloc[result.rows] = "__unseen__"
        pdt.assert_series_equal(result.frame["s"], expected)
        assert data["s"].iloc[result.rows].notna().all()
        assert len(result.rows) < N // 2  # the sampled missing cells were left alone


def test_type_flip_keeps_other_values_as_python_objects(mixed) -> None:
    spec = {"fault": "type_flip", "columns": ["f", "b", "t", "n"], "fraction": 0.3}
    result = build_fault(spec).apply(mixed, seed=2)
    untouched = np.setdiff1d(np.arange(N), result.rows)
    for c in spec["columns"]:
        got, ref = result.frame[c].to_numpy(), mixed[c].to_numpy(dtype=object)
        assert got.dtype == object
        pairs = zip(got[untouched], ref[untouched], strict=True)
        assert all(type(x) is type(y) and x == y for x, y in pairs)
        assert all(isinstance(x, str) for x in got[result.rows])


def test_apply_to_arrow_type_flip_keeps_missing_values_missing() -> None:
    table = pa.table({"x": pa.array([1.5, None, 2.5, None, 3.5] * 4)})
    flipped, result = apply_to_arrow(
        build_fault({"fault": "type_flip", "columns": ["x"], "fraction": 1.0}), table, seed=1
    )
    column = flipped.column("x")
    assert pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    assert column.null_count == 8 and "None" not in column.to_pylist()
    assert result.rows_changed == 12
