"""Data faults streamed over Parquet datasets row group by row group: same facts as in memory,
reproducible bytes, originals kept by rename and restored byte-exact, from any crash point, on a
local dataset and on S3 (moto server)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.safety import SafetySpec
from mlchaos_orchestration.core.session import apply_fault, restore_lease
from mlchaos_orchestration.faults import build_fault
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.data.parquet_stream import stream_fault
from mlchaos_orchestration.faults.environment.stored import StoredDataFault
from mlchaos_orchestration.settings import get_settings

N = 3_000
SPECS: dict[str, dict[str, Any]] = {
    "nulls": {"columns": ["f", "cat"]},
    "out_of_range": {"columns": ["f", "i"]},
    "type_flip": {"columns": ["f"]},
    "unseen_category": {"columns": ["cat"]},
    "drift": {"columns": ["f"], "fraction": 0.1},
    "duplicate_rows": {},
    "class_removal": {"label": "label"},
    "mislabel": {"label": "label"},
    "label_shuffle": {"label": "label", "fraction": 0.5},
    "drop_column": {"columns": ["f"]},
    "rename_column": {"columns": ["f"]},
}
#: faults whose streamed result is the in-memory result on the concatenated dataset, cell by cell
#: (no sample: the streamed sample is drawn row group by row group, a different draw of one law)
SAME_AS_IN_MEMORY = {"class_removal", "drop_column", "rename_column"}


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "f": rng.normal(size=N),
            "i": rng.integers(0, 100, N),
            "cat": pd.array(rng.choice(["a", "b", "c"], N), dtype="str"),
            "label": (rng.random(N) < 0.3).astype(np.int64),
        }
    )


def _write_dataset(folder: Path, frame: pd.DataFrame) -> list[Path]:
    """Two files with uneven row groups (the seams must not matter)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "part-0.parquet", folder / "part-1.parquet"]
    cut = 1_700
    for path, part, size in ((paths[0], frame.iloc[:cut], 400), (paths[1], frame.iloc[cut:], 550)):
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), path, row_group_size=size)
    return paths


def _read(paths: list[Path]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", list(SPECS))
def test_streamed_fault_reports_what_the_in_memory_fault_does(name: str, tmp_path: Path) -> None:
    frame = _frame()
    sources = _write_dataset(tmp_path / "in", frame)
    sinks = [tmp_path / f"out-{i}.parquet" for i in range(2)]
    fault = build_fault({"fault": name, **SPECS[name]})
    outcome = stream_fault(fault, [str(p) for p in sources], [str(p) for p in sinks], seed=11)
    memory = fault.apply(frame, 11)
    got = _read(sinks)
    assert outcome.rows_read == N
    assert len(got) == len(memory.frame)
    if name == "type_flip":  # Parquet holds no mixed column: the whole column is text
        assert outcome.rows_changed == N and got["f"].map(type).eq(str).all()
    elif name == "label_shuffle":  # labels moved among 1,500 sampled rows, balance kept
        assert outcome.details["shuffled_rows"] == 1_500
        assert got["label"].sum() == frame["label"].sum()
        moved = int((got["label"] != frame["label"]).sum())
        assert outcome.rows_changed == moved and 500 < moved < 1_000
    else:
        assert outcome.rows_changed == memory.rows_changed
    if name in SAME_AS_IN_MEMORY:
        pdt.assert_frame_equal(got, memory.frame.reset_index(drop=True), check_dtype=False)
    if name == "duplicate_rows":  # 300 exact copies of original rows, the originals in order
        assert int(got.duplicated().sum()) == 300
        pdt.assert_frame_equal(got.drop_duplicates(ignore_index=True), frame)
    if name in ("nulls", "unseen_category", "mislabel"):  # exactly the sampled cells changed
        column = SPECS[name].get("label") or SPECS[name]["columns"][-1]
        assert int((got[column] != frame[column]).sum()) == 300
    if name == "out_of_range":  # 300 sampled cells, the same in both columns, beyond the range
        changed = np.flatnonzero(got["f"].to_numpy() != frame["f"].to_numpy())
        np.testing.assert_array_equal(
            changed, np.flatnonzero(got["i"].to_numpy() != frame["i"].to_numpy())
        )
        outside = (got["f"].iloc[changed] > frame["f"].max()) | (
            got["f"].iloc[changed] < frame["f"].min()
        )
        assert len(changed) == 300 and outside.all() and got["i"].dtype == np.int64
    if name == "drift":
        assert outcome.details["shift"]["f"] == pytest.approx(memory.details["shift"]["f"])
    assert [pq.ParquetFile(p).num_row_groups for p in sinks] == [5, 3]  # boundaries kept


def test_streaming_is_reproducible_byte_for_byte(tmp_path: Path) -> None:
    sources = [str(p) for p in _write_dataset(tmp_path / "in", _frame())]
    fault = build_fault({"fault": "out_of_range", "columns": ["f", "i"]})
    digests = []
    for run in range(2):
        sinks = [tmp_path / f"run{run}-{i}.parquet" for i in range(2)]
        stream_fault(fault, sources, [str(p) for p in sinks], seed=4)
        digests.append([_sha(p) for p in sinks])
    assert digests[0] == digests[1]


# ------------------------------------------------------------------------- through the session
@pytest.fixture
def streaming(mlchaos_home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Stream every Parquet target (threshold 0); a ledger whose allowlist holds ``allowed``."""
    monkeypatch.setenv("MLCHAOS_PARQUET_STREAM_BYTES", "0")

    def make(*allowed: str) -> tuple[Ledger, Any]:
        monkeypatch.setenv("MLCHAOS_ALLOWED_TARGETS", ",".join(allowed))
        settings = get_settings()
        return Ledger(settings.ledger_url), settings

    return make


def _stored(spec: dict[str, Any], target: str) -> StoredDataFault:
    return StoredDataFault(inner=build_fault(spec), target=target)


def _apply(ledger: Ledger, settings: Any, fault: StoredDataFault) -> Any:
    ctx = ApplyContext(seed=9)
    return apply_fault(ledger, fault, ctx, run_id="r", safety=SafetySpec(), settings=settings)


def _state(folder: Path) -> dict[str, tuple[str, int]]:
    """(sha256, inode) of every file: a restore by rename gives back the very same inodes."""
    return {
        p.relative_to(folder).as_posix(): (_sha(p), p.stat().st_ino)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_local_dataset_swaps_by_rename_and_restores_the_same_files(
    tmp_path: Path, streaming: Any
) -> None:
    folder = tmp_path / "events"
    _write_dataset(folder, _frame())
    (folder / "_SUCCESS").write_text("")
    before = _state(folder)
    ledger, settings = streaming(str(folder))
    applied = _apply(ledger, settings, _stored({"fault": "nulls", "columns": ["f"]}, str(folder)))

    event = next(e for e in ledger.events("r") if e.kind == "fault_applied")
    assert event.data["rows_changed"] == 300 and str(folder) in event.data["fingerprint"]
    backup = next(iter(ledger.backups(applied.lease.id)))
    kept = Path(backup.ref["folder"]) / "payload"
    assert backup.ref["mode"] == "move"
    # the Parquet originals now live in the backup (same inodes: nothing was copied); the
    # small files the fault does not rewrite are copied there
    in_backup = _state(kept)
    assert {n: v for n, v in in_backup.items() if n.endswith(".parquet")} == {
        n: v for n, v in before.items() if n.endswith(".parquet")
    }
    assert _state(kept.parent / "rest")["_SUCCESS"][0] == before["_SUCCESS"][0]
    after = _state(folder)
    assert after["_SUCCESS"] == before["_SUCCESS"]
    assert (
        int(_read([folder / "part-0.parquet", folder / "part-1.parquet"])["f"].isna().sum()) == 300
    )
    assert not [p for p in folder.iterdir() if ".mlchaos-new-" in p.name]

    (folder / "part-2.parquet").write_bytes(b"written by the pipeline meanwhile")
    assert restore_lease(ledger, applied.lease.id, settings=settings).restored
    assert _state(folder) == before
    assert not kept.parent.exists()


def test_dataset_removed_by_the_pipeline_comes_back_whole(tmp_path: Path, streaming: Any) -> None:
    folder = tmp_path / "events"
    _write_dataset(folder / "ds=1", _frame())
    (folder / "_SUCCESS").write_text("done")
    (folder / "empty").mkdir()
    before = {n: sha for n, (sha, _) in _state(folder).items()}
    ledger, settings = streaming(str(folder))
    applied = _apply(ledger, settings, _stored({"fault": "drift", "columns": ["f"]}, str(folder)))
    shutil.rmtree(folder)  # the pipeline wipes its output while the fault is active
    assert restore_lease(ledger, applied.lease.id, settings=settings).restored
    assert {n: sha for n, (sha, _) in _state(folder).items()} == before
    assert (folder / "empty").is_dir()


def test_failed_swap_is_restored_by_the_session(
    tmp_path: Path, streaming: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "events"
    _write_dataset(folder, _frame())
    before = _state(folder)
    ledger, settings = streaming(str(folder))
    real_replace = os.replace
    calls: list[int] = []

    def flaky(src: Any, dst: Any) -> None:
        calls.append(1)
        if len(calls) == 4:  # second file: original moved aside, faulted copy not yet in place
            raise OSError("disk went away")
        real_replace(src, dst)

    monkeypatch.setattr("mlchaos_orchestration.stores.parquet_swap.os.replace", flaky)
    with pytest.raises(OSError, match="disk went away"):
        _apply(ledger, settings, _stored({"fault": "duplicate_rows"}, str(folder)))
    monkeypatch.setattr("mlchaos_orchestration.stores.parquet_swap.os.replace", real_replace)
    assert _state(folder) == before
    assert [lease.state for lease in ledger.leases()] == ["restored"]


CRASH = """
import os, sys
from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.safety import SafetySpec
from mlchaos_orchestration.core.session import apply_fault
from mlchaos_orchestration.faults import build_fault
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.environment.stored import StoredDataFault
from mlchaos_orchestration.settings import get_settings
from mlchaos_orchestration.stores import parquet_swap

real, calls = os.replace, []
def dying(src, dst):
    calls.append(1)
    if len(calls) == int(sys.argv[2]):
        os._exit(9)  # killed between two renames
    real(src, dst)
parquet_swap.os.replace = dying
settings = get_settings()
fault = StoredDataFault(inner=build_fault({"fault": "label_shuffle", "label": "label"}),
                        target=sys.argv[1])
apply_fault(Ledger(settings.ledger_url), fault, ApplyContext(seed=1), run_id="r",
            safety=SafetySpec(), settings=settings)
"""


@pytest.mark.parametrize("crash_at", [1, 2, 3])
def test_crash_between_swap_steps_recovers_byte_exact(
    tmp_path: Path, streaming: Any, crash_at: int
) -> None:
    folder = tmp_path / "events"
    _write_dataset(folder, _frame())
    before = _state(folder)
    ledger, settings = streaming(str(folder))
    child = subprocess.run(
        [sys.executable, "-c", CRASH, str(folder), str(crash_at)],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 9, child.stderr
    assert _state(folder) != before or crash_at == 1  # left half-faulted
    (lease,) = ledger.live_leases()
    assert restore_lease(ledger, lease.id, settings=settings).restored
    assert _state(folder) == before
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_small_parquet_keeps_the_in_memory_path(
    tmp_path: Path, streaming: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCHAOS_PARQUET_STREAM_BYTES", str(1 << 30))
    folder = tmp_path / "events"
    _write_dataset(folder, _frame())
    ledger, settings = streaming(str(folder))
    applied = _apply(ledger, settings, _stored({"fault": "nulls", "columns": ["f"]}, str(folder)))
    backup = next(iter(ledger.backups(applied.lease.id)))
    assert "mode" not in backup.ref and (Path(backup.ref["folder"]) / "payload").is_dir()
    assert restore_lease(ledger, applied.lease.id, settings=settings).restored


def test_s3_parquet_object_streams_and_restores(
    streaming: Any, s3_client: Any, s3_bucket: str
) -> None:
    body = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(_frame(), preserve_index=False), body, row_group_size=500)
    original = body.getvalue().to_pybytes()
    key = "raw/events/part-0.parquet"
    s3_client.put_object(Bucket=s3_bucket, Key=key, Body=original)
    target = f"s3://{s3_bucket}/raw/events/"
    ledger, settings = streaming(target)
    spec = {"fault": "class_removal", "label": "label"}
    applied = _apply(ledger, settings, _stored(spec, target))
    faulted = s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    frame = pq.read_table(pa.BufferReader(faulted)).to_pandas()
    assert len(frame) == N - int(_frame()["label"].sum()) and frame["label"].eq(0).all()
    assert pq.ParquetFile(pa.BufferReader(faulted)).num_row_groups == 6
    assert applied.details["rows_changed"] == int(_frame()["label"].sum())
    listed = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="raw/")["Contents"]
    assert [o["Key"] for o in listed] == [key]  # the upload beside it is gone
    assert restore_lease(ledger, applied.lease.id, settings=settings).restored
    assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == original


def test_row_group_sampler_is_exact_and_uniform() -> None:
    from mlchaos_orchestration.faults.data.parquet_stream import _Sampler

    sizes, k, draws = [3, 5, 2, 6], 5, 4_000
    hits = np.zeros(sum(sizes))
    for seed in range(draws):
        sampler = _Sampler(sizes, k, seed, np.random.default_rng(seed))
        starts = np.cumsum([0, *sizes[:-1]])
        rows = np.concatenate([sampler.rows(i, m) + starts[i] for i, m in enumerate(sizes)])
        assert len(rows) == k == sampler.k and len(set(rows.tolist())) == k
        hits[rows] += 1
    expected = draws * k / sum(sizes)
    assert np.abs(hits - expected).max() < 5 * expected**0.5  # every row equally likely


def test_transform_error_in_the_lookahead_reaches_the_caller_and_stops(tmp_path: Path) -> None:
    """The next row group is transformed on a worker thread: its error is the caller's error,
    raised at that group, and no later group is prepared."""
    from mlchaos_orchestration.faults.data.parquet_stream import _Dataset

    paths = _write_dataset(tmp_path / "in", _frame())
    seen: list[int] = []

    def transform(table: pa.Table, offset: int, index: int) -> tuple[pa.Table, int]:
        seen.append(index)
        if index == 2:
            raise ValueError("bad group 2")
        return table, 0

    sinks = [str(tmp_path / f"out-{i}.parquet") for i in range(len(paths))]
    with pytest.raises(ValueError, match="bad group 2"):
        _Dataset([str(p) for p in paths], None).rewrite(transform, sinks, {}, None)
    assert seen == [0, 1, 2]
    assert not any(t.name.startswith("mlchaos-parquet") for t in threading.enumerate())
