"""Example pipeline pieces: generator, ingest (local and moto S3 over HTTP), SQL features, model."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from mlchaos_orchestration.examples import GATE_SUITE_PATH
from mlchaos_orchestration.examples import steps as pl
from mlchaos_orchestration.examples.sample_data import (
    COUNTRIES,
    DEVICES,
    generate_events,
    write_partitions,
)
from mlchaos_orchestration.gates import gx


def _digest(paths: list[str]) -> list[str]:
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


# --------------------------------------------------------------------------------------- generator
def test_partitions_are_byte_identical_for_the_same_seed(tmp_path: Path) -> None:
    first = write_partitions(tmp_path / "a", "2026-11-01", days=2, rows_per_day=500, seed=5)
    again = write_partitions(tmp_path / "b", "2026-11-01", days=2, rows_per_day=500, seed=5)
    other = write_partitions(tmp_path / "c", "2026-11-01", days=2, rows_per_day=500, seed=6)
    assert [Path(p).relative_to(tmp_path / "a").as_posix() for p in first] == [
        "ds=2026-11-01/part-0.parquet",
        "ds=2026-11-02/part-0.parquet",
    ]
    assert _digest(first) == _digest(again)
    assert _digest(first)[0] != _digest(other)[0]


def test_events_look_like_the_contract() -> None:
    events = generate_events("2026-11-03", 4000, seed=1)
    day = pd.Timestamp("2026-11-03")
    assert events["event_id"].is_unique and len(events) == 4000
    assert events["event_ts"].between(day, day + pd.Timedelta(days=1), inclusive="left").all()
    assert (events["amount"] > 0).all() and events["age"].between(18, 90).all()
    assert set(events["country"]) == set(COUNTRIES) and set(events["device"]) == set(DEVICES)
    assert 0.07 < events["is_fraud"].mean() < 0.13
    # ids never collide across days, so a replayed partition is detectable by id
    assert not set(events["event_id"]) & set(generate_events("2026-11-04", 4000, 1)["event_id"])


# ------------------------------------------------------------------------------------------ ingest
def test_ingest_reads_the_requested_partition(tmp_path: Path) -> None:
    write_partitions(tmp_path, "2026-11-01", days=2, rows_per_day=300, seed=2)
    frame = pl.ingest(tmp_path, "2026-11-02", retry_delay_s=0)
    pd.testing.assert_frame_equal(frame, generate_events("2026-11-02", 300, seed=2))
    assert frame.attrs["source_ds"] == "2026-11-02"


def test_ingest_swallows_a_missing_partition(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_partitions(tmp_path, "2026-11-01", days=2, rows_per_day=300, seed=2)
    write_partitions(tmp_path, "2026-11-05", days=1, rows_per_day=300, seed=2)  # a later day
    with caplog.at_level(logging.INFO, logger=pl.__name__):
        frame = pl.ingest(tmp_path, "2026-11-03", retries=2, retry_delay_s=0)
    assert frame.attrs["source_ds"] == "2026-11-02"
    pd.testing.assert_frame_equal(frame, generate_events("2026-11-02", 300, seed=2))
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retries) == 2
    assert len(warnings) == 1 and "using last available partition" in warnings[0].getMessage()


def test_ingest_raises_when_nothing_earlier_or_file_corrupt(tmp_path: Path) -> None:
    write_partitions(tmp_path, "2026-11-02", days=1, rows_per_day=100, seed=2)
    with pytest.raises(FileNotFoundError, match="ds=2026-11-01"):
        pl.ingest(tmp_path, "2026-11-01", retries=1, retry_delay_s=0)
    (tmp_path / "ds=2026-11-02" / "part-0.parquet").write_bytes(b"")  # truncated upstream file
    with pytest.raises(Exception) as info:
        pl.ingest(tmp_path, "2026-11-02", retries=1, retry_delay_s=0)
    assert not isinstance(info.value, FileNotFoundError)


def test_write_and_ingest_through_s3(s3_client, s3_bucket: str) -> None:
    root = f"s3://{s3_bucket}/raw/events"
    uris = write_partitions(root, "2026-11-01", days=2, rows_per_day=200, seed=4, client=s3_client)
    assert uris[1] == f"s3://{s3_bucket}/raw/events/ds=2026-11-02/part-0.parquet"
    assert pl.list_partitions(root, client=s3_client) == ["2026-11-01", "2026-11-02"]
    frame = pl.ingest(root, "2026-11-02", client=s3_client, retry_delay_s=0)
    pd.testing.assert_frame_equal(frame, generate_events("2026-11-02", 200, seed=4))
    fallback = pl.ingest(root, "2026-11-04", client=s3_client, retries=1, retry_delay_s=0)
    assert fallback.attrs["source_ds"] == "2026-11-02"


# ---------------------------------------------------------------------------------------- features
def test_build_features_is_vectorised_and_correct() -> None:
    events = generate_events("2026-11-01", 2000, seed=3)
    features = pl.build_features(events)
    assert list(features.columns) == pl.FEATURE_COLUMNS
    hours = events["event_ts"].dt.hour.to_numpy()
    expected_night = ((hours < 6) | (hours >= 22)).astype(int)
    np.testing.assert_array_equal(features["is_night"].to_numpy(), expected_night)
    np.testing.assert_allclose(features["amount_log"], np.log1p(events["amount"]))
    assert 0 < features["is_night"].mean() < 1


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'features.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def example_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Raw events of 5 days under MLCHAOS_RAW_ROOT: the example gate's label-check reference."""
    write_partitions(tmp_path / "raw", "2026-10-27", days=5, rows_per_day=2000, seed=7)
    monkeypatch.setenv("MLCHAOS_RAW_ROOT", str(tmp_path / "raw"))
    return tmp_path / "raw"


@pytest.mark.usefixtures("example_reference")
def test_features_round_trip_with_partition_replace(db_url: str) -> None:
    day1 = pl.build_features(generate_events("2026-11-01", 400, seed=8))
    day2 = pl.build_features(generate_events("2026-11-02", 300, seed=8))
    assert pl.write_features(day1, db_url, ds="2026-11-01") == 400
    assert pl.write_features(day2.iloc[:50], db_url, ds="2026-11-02") == 50
    assert pl.write_features(day2, db_url, ds="2026-11-02") == 300  # rerun replaces the day

    back = pl.read_features(db_url, ds="2026-11-02")
    pd.testing.assert_frame_equal(back, day2, check_dtype=False)
    assert back["event_ts"].dtype.kind == "M"
    assert len(pl.read_features(db_url, ds="2026-11-01")) == 400
    assert gx.validate_frame(back, gx.load_suite_specs(GATE_SUITE_PATH)).success


# ------------------------------------------------------------------------------------------- model
@pytest.fixture(scope="module")
def clean_features() -> pd.DataFrame:
    return pl.build_features(generate_events("2026-11-01", 5000, seed=21))


def test_train_learns_on_clean_data(clean_features: pd.DataFrame) -> None:
    model, metrics = pl.train(clean_features)
    assert metrics["auc"] > 0.6, metrics
    assert metrics["n_train"] + metrics["n_test"] == 5000
    assert pl.train(clean_features)[1] == metrics  # seeded
    shuffled = clean_features.assign(
        is_fraud=np.random.default_rng(0).permutation(clean_features["is_fraud"].to_numpy())
    )
    assert pl.train(shuffled)[1]["auc"] < metrics["auc"] - 0.1  # label faults hurt the model
    with pytest.raises(ValueError, match="single class"):
        pl.train(clean_features.assign(is_fraud=0))


def test_register_model_versions_artifacts(clean_features: pd.DataFrame, tmp_path: Path) -> None:
    model, metrics = pl.train(clean_features)
    first = pl.register_model(model, metrics, tmp_path / "registry")
    second = pl.register_model(model, metrics, tmp_path / "registry")
    assert (first.name, second.name) == ("v0001", "v0002")
    assert json.loads((second / "metrics.json").read_text()) == metrics
    loaded = joblib.load(first / "model.joblib")
    sample = clean_features.head(20)
    np.testing.assert_allclose(loaded.predict_proba(sample), model.predict_proba(sample))


@pytest.mark.usefixtures("example_reference")
def test_example_gate_passes_clean_days() -> None:
    suite = gx.load_suite_specs(GATE_SUITE_PATH)
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        frame = pl.build_features(generate_events(day, 2000, seed=99))
        result = gx.validate_frame(frame, suite)
        assert result.success, result.summary()
