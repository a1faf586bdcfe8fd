"""Great Expectations gate adapter and mutation suggestions, on real frames through real GX."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlchaos_orchestration.errors import MlchaosError, SpecError
from mlchaos_orchestration.examples import GATE_SUITE_PATH
from mlchaos_orchestration.examples.sample_data import generate_events, write_partitions
from mlchaos_orchestration.examples.steps import build_features
from mlchaos_orchestration.gates import gx, mutation


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_features(generate_events("2026-11-02", 3000, seed=11))


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gx.SuiteSpec]:
    # the example gate's label check reads its reference, the raw events, from MLCHAOS_RAW_ROOT
    raw = tmp_path_factory.mktemp("raw")
    write_partitions(raw, "2026-10-29", 5, 3000, seed=11)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLCHAOS_RAW_ROOT", str(raw))
        yield gx.load_suite_specs(GATE_SUITE_PATH)


@pytest.fixture(scope="module")
def profile(features: pd.DataFrame) -> dict:
    return mutation.profile_frame(
        features, key="event_id", label="is_fraud", ds="2026-11-02", timestamp_column="event_ts"
    )


def test_import_does_not_load_great_expectations() -> None:
    code = (
        "import sys, mlchaos_orchestration.gates.gx as g;"
        "import mlchaos_orchestration.gates.mutation as m;"
        "s = g.load_suite_specs({'name': 'x', 'expectations': [{'type': 'ExpectColumnToExist',"
        " 'kwargs': {'column': 'a'}}]});"
        "m.render(m.killing_expectation({'fault': 'nulls', 'columns': ['a']}));"
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_clean_frame_passes_example_gate(features: pd.DataFrame, suite: gx.SuiteSpec) -> None:
    result = gx.validate_frame(features, suite)
    assert result.success, result.summary()
    assert result.evaluated == len(suite.expectations) == 10
    assert result.failed == [] and result.rows == len(features)
    assert gx.assert_gate(features, suite).success


def test_failing_suite_reports_each_failure(features: pd.DataFrame, suite: gx.SuiteSpec) -> None:
    bad = features.copy()
    bad.loc[:99, "amount"] = np.nan
    bad.loc[[3, 4], "country"] = "XX"
    extended = suite.with_expectations(
        {"type": "ExpectColumnToExist", "kwargs": {"column": "merchant"}}
    )
    result = gx.validate_frame(bad, extended)

    assert not result.success and result.evaluated == 11
    by_type = {(f["expectation"], f["column"]): f for f in result.failed}
    assert set(by_type) == {
        ("ExpectColumnValuesToNotBeNull", "amount"),
        ("ExpectColumnValuesToBeInSet", "country"),
        ("ExpectColumnToExist", "merchant"),
    }
    nulls = by_type["ExpectColumnValuesToNotBeNull", "amount"]
    assert nulls["unexpected_count"] == 100
    assert nulls["unexpected_percent"] == pytest.approx(100 / len(bad) * 100)
    assert by_type["ExpectColumnValuesToBeInSet", "country"]["unexpected_count"] == 2
    assert by_type["ExpectColumnValuesToBeInSet", "country"]["kwargs"]["value_set"][0] == "US"
    # failures come back in suite order, and the whole result survives a JSON round trip
    assert [f["expectation"] for f in result.failed][-1] == "ExpectColumnToExist"
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()
    assert result.duration_s > 0


def test_gate_failed_is_one_line_listing_failures(
    features: pd.DataFrame, suite: gx.SuiteSpec
) -> None:
    bad = features.assign(age=features["age"].where(features.index % 10 != 0))
    with pytest.raises(gx.GateFailed) as info:
        gx.assert_gate(bad, suite)
    message = str(info.value)
    assert isinstance(info.value, MlchaosError) and "\n" not in message
    assert 'ExpectColumnValuesToNotBeNull(column="age")' in message
    assert "1/10 expectations failed" in message and "unexpected 10%" in message
    assert info.value.result.failed[0]["unexpected_count"] == 300


def test_unknown_expectation_type_suggests_the_right_one(features: pd.DataFrame) -> None:
    suite = gx.load_suite_specs(
        {
            "name": "typo",
            "expectations": [
                {"type": "ExpectColumnValuesToNotBeNul", "kwargs": {"column": "amount"}}
            ],
        }
    )
    with pytest.raises(SpecError, match="did you mean 'ExpectColumnValuesToNotBeNull'"):
        gx.validate_frame(features, suite)


def test_bad_kwargs_are_a_spec_error(features: pd.DataFrame) -> None:
    suite = {
        "name": "bad",
        "expectations": [{"type": "ExpectColumnValuesToBeBetween", "kwargs": {"colum": "amount"}}],
    }
    with pytest.raises(SpecError, match="ExpectColumnValuesToBeBetween: invalid kwargs"):
        gx.validate_frame(features, suite)


def test_loads_gx_json_export_with_snake_case_types(tmp_path, features: pd.DataFrame) -> None:
    export = {
        "name": "exported",
        "id": "0b1c",
        "notes": None,
        "meta": {"great_expectations_version": "1"},
        "expectations": [
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "age"},
                "meta": {},
                "id": "e1",
            },
            {
                "expectation_type": "expect_table_row_count_to_be_between",
                "kwargs": {"min_value": 1, "max_value": 10},
            },
        ],
    }
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(export))
    suite = gx.load_suite_specs(path)
    assert [e.type for e in suite.expectations] == [
        "ExpectColumnValuesToNotBeNull",
        "ExpectTableRowCountToBeBetween",
    ]
    result = gx.validate_frame(features, suite)
    assert [f["expectation"] for f in result.failed] == ["ExpectTableRowCountToBeBetween"]
    assert result.failed[0]["observed_value"] == len(features)


def test_bad_suite_file_is_one_line_error(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nexpectations: [ {type: \n")
    with pytest.raises(SpecError, match="not valid YAML"):
        gx.load_suite_specs(path)
    with pytest.raises(SpecError, match="suite file"):
        gx.load_suite_specs(tmp_path / "missing.yaml")


# ------------------------------------------------------------------------------------ mutation
_ALL_FAULTS = [
    {"fault": "nulls", "columns": ["amount"]},
    {"fault": "out_of_range", "columns": ["age"]},
    {"fault": "type_flip", "columns": ["age"]},
    {"fault": "unseen_category", "column": "country"},
    {"fault": "drop_column", "column": "device"},
    {"fault": "rename_column", "column": "device"},
    {"fault": "duplicate_rows"},
    {"fault": "drift", "columns": ["amount"]},
    {"fault": "label_shuffle", "label": "is_fraud"},
    {"fault": "mislabel", "label": "is_fraud"},
    {"fault": "class_removal", "label": "is_fraud"},
    {"fault": "upstream_outage"},
    {"fault": "stale_partition_replay"},
]


def test_every_suggestion_is_a_real_gx_expectation(
    profile: dict, features: pd.DataFrame, tmp_path: Path
) -> None:
    known = set(gx.expectation_types())
    reference = tmp_path / "reference.parquet"  # label checks need clean labelled data
    features.to_parquet(reference)
    profile = {**profile, "reference": str(reference)}
    suggestions = [mutation.killing_expectation(f, profile) for f in _ALL_FAULTS]
    assert all(s is not None for s in suggestions)
    assert {s["type"] for s in suggestions} <= known
    for suggestion in suggestions:  # kwargs are accepted by GX itself
        gx._build(gx._import_gx(), gx.ExpectationSpec(**suggestion), 0)
    assert mutation.killing_expectation({"fault": "connector_failure_rate"}, profile) is None


def test_render_is_readable_code() -> None:
    spec = mutation.killing_expectation({"fault": "nulls", "columns": ["amount"]})
    assert mutation.render(spec) == 'ExpectColumnValuesToNotBeNull(column="amount")'
    assert gx.ExpectationSpec(**spec).render() == mutation.render(spec)


def _faulted(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    if name == "nulls":
        return frame.assign(amount=frame["amount"].mask(rng.random(len(frame)) < 0.05))
    if name == "duplicate_rows":
        return pd.concat([frame, frame.sample(frac=0.05, random_state=3)], ignore_index=True)
    return frame.assign(amount=frame["amount"] * 1.5)  # drift: every amount 50% larger


@pytest.mark.parametrize(
    "fault",
    [
        {"fault": "nulls", "columns": ["amount"]},
        {"fault": "duplicate_rows"},
        {"fault": "drift", "columns": ["amount"]},
    ],
)
def test_suggestion_kills_the_surviving_mutant(
    fault: dict, features: pd.DataFrame, suite: gx.SuiteSpec, profile: dict
) -> None:
    faulted = _faulted(fault["fault"], features)
    suggestion = mutation.killing_expectation(fault, profile)
    stronger = suite.with_expectations(suggestion)
    if fault["fault"] != "nulls":  # nulls are already caught by the example gate
        assert gx.validate_frame(faulted, suite).success, "mutant should survive the example gate"
    assert gx.validate_frame(features, stronger).success, "suggestion must accept clean data"
    result = gx.validate_frame(faulted, stronger)
    assert not result.success
    assert suggestion["type"] in {f["expectation"] for f in result.failed}


def test_duplicate_suggestion_without_key_uses_all_columns(profile: dict) -> None:
    spec = mutation.killing_expectation({"fault": "duplicate_rows"}, {**profile, "key": None})
    assert spec["type"] == "ExpectCompoundColumnsToBeUnique"
    assert spec["kwargs"]["column_list"] == profile["columns"]
    assert mutation.killing_expectation({"fault": "drift", "columns": ["amount"]}) is None


def test_suggestions_read_the_registered_faults_own_params(profile: dict) -> None:
    from mlchaos_orchestration.faults import get_fault_class

    nulls = get_fault_class("nulls")(columns=["age"]).spec()
    assert mutation.killing_expectation(nulls)["kwargs"] == {"column": "age"}
    renamed = {"fault": "rename_column", "mapping": {"device": "dev"}}
    assert mutation.killing_expectation(renamed)["kwargs"] == {"column": "device"}
    stale = {"fault": "stale_partition_replay", "ds": "2026-11-02", "timestamp_columns": ["ts"]}
    spec = mutation.killing_expectation(stale)
    assert spec["kwargs"]["column"] == "ts" and spec["kwargs"]["min_value"].startswith("2026-11-02")


def test_stale_replay_suggestion_rejects_yesterdays_rows(
    features: pd.DataFrame, suite: gx.SuiteSpec, profile: dict
) -> None:
    yesterday = build_features(generate_events("2026-11-01", 3000, seed=11))
    spec = mutation.killing_expectation({"fault": "stale_partition_replay"}, profile)
    assert gx.validate_frame(yesterday, suite).success  # the example gate misses a replay
    assert gx.validate_frame(features, suite.with_expectations(spec)).success
    failed = gx.validate_frame(yesterday, suite.with_expectations(spec)).failed
    assert [(f["column"], f["unexpected_percent"]) for f in failed] == [("event_ts", 100.0)]


def test_gate_messages_stored_in_the_ledger_show_plain_numbers() -> None:
    import pandas as pd

    from mlchaos_orchestration.gates.gx import GateFailed, assert_gate

    suite = {
        "name": "s",
        "expectations": [
            {"type": "ExpectColumnMaxToBeBetween", "kwargs": {"column": "a", "max_value": 1}}
        ],
    }
    with pytest.raises(GateFailed) as failed:
        assert_gate(pd.DataFrame({"a": [0.5, 114.99]}), suite)
    assert "114.99" in str(failed.value) and "np.float64" not in str(failed.value)
