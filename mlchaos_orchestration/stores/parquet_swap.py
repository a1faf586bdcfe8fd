"""Stored Parquet datasets faulted by streaming, with the original kept by rename as the backup.

Which targets stream: a local path or S3 object/prefix whose tabular files are all Parquet and
together hold at least ``MLCHAOS_PARQUET_STREAM_BYTES`` bytes (default 64 MiB; ``0``: always).
Smaller data keeps the in-memory path.

Local backup by move (no copy of the data, on disk or in memory): the backup records the
original's fingerprint and holds no payload yet. Each faulted file is written beside its original
(``.<name>.mlchaos-new-<backup id>``, hidden from dataset readers); then the original is renamed
into the backup folder and the faulted file renamed into place. A crash between the two renames
leaves the original in the backup and nothing at the path; restore renames every original back,
removes leftovers and anything the target did not hold, so any crash point recovers. The other
files of a dataset directory (markers, metadata: small) are copied into the backup, so a target
the pipeline deleted meanwhile comes back whole. The backup folder must be on the target's
filesystem (else the store copies, as for any other fault).

On S3 the backup stays the store's server-side copy; each object is rewritten through a multipart
upload that replaces the object only when it completes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from mlchaos_orchestration.core.targets import Target
    from mlchaos_orchestration.faults.base import ApplyContext, DataFault
    from mlchaos_orchestration.faults.data.parquet_stream import StreamOutcome

STREAM_BYTES_ENV = "MLCHAOS_PARQUET_STREAM_BYTES"
_DEFAULT_STREAM_BYTES = 64 << 20
_NEW = ".mlchaos-new-"
_REST = "rest"  # copies of the files a move backup does not rename
MOVE = "move"
_TABULAR = (".csv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")
_PARQUET = (".parquet", ".pq")


def stream_threshold() -> int:
    """Parquet bytes from which a stored data fault streams (``MLCHAOS_PARQUET_STREAM_BYTES``)."""
    value = os.environ.get(STREAM_BYTES_ENV, "").strip()
    return int(value) if value else _DEFAULT_STREAM_BYTES


def _streams(names_and_sizes: list[tuple[str, int]], fault: DataFault) -> bool:
    from mlchaos_orchestration.faults.data.parquet_stream import can_stream

    tabular = [(n, size) for n, size in names_and_sizes if n.lower().endswith(_TABULAR)]
    if not tabular or not can_stream(fault):
        return False
    if not all(n.lower().endswith(_PARQUET) for n, _ in tabular):
        return False
    return sum(size for _, size in tabular) >= stream_threshold()


# ------------------------------------------------------------------------------------ local
def local_parquet(path: Path) -> list[Path]:
    """The Parquet files of a local target (itself if a file), sorted; links skipped."""
    if path.is_symlink():
        return []
    if path.is_file():
        return [path] if path.name.lower().endswith(_PARQUET) else []
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and p.name.lower().endswith(_PARQUET)
        and not _hidden(p, path)
    )


def _hidden(file: Path, root: Path) -> bool:
    return any(part.startswith((".", "_")) for part in file.relative_to(root).parts)


def streams_local(fault: DataFault, path: Path) -> bool:
    """Whether ``fault`` on local ``path`` streams (all its tabular files Parquet, big enough)."""
    if not path.exists():
        return False
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return _streams([(p.name, p.stat().st_size) for p in files if not p.is_symlink()], fault)


def can_move(path: Path, folder: Path) -> bool:
    """Whether ``path``'s originals can be renamed into ``folder`` (same filesystem)."""
    try:
        return os.stat(folder).st_dev == os.stat(path if path.is_dir() else path.parent).st_dev
    except OSError:
        return False


def _payload_of(folder: Path, root: Path, file: Path) -> Path:
    from mlchaos_orchestration.stores.local import PAYLOAD

    if file == root:
        return folder / PAYLOAD
    return folder / PAYLOAD / file.relative_to(root)


def keep_rest(path: Path, folder: Path) -> None:
    """Copy into a move backup every file of directory ``path`` the streaming will not rename
    (markers, metadata, other formats: small), so the backup holds the whole target."""
    from mlchaos_orchestration.stores.local import copy_path

    if not path.is_dir() or path.is_symlink():
        return
    moved = set(local_parquet(path))
    for file in sorted(path.rglob("*")):
        if (file.is_file() or file.is_symlink()) and file not in moved:
            kept = folder / _REST / file.relative_to(path)
            kept.parent.mkdir(parents=True, exist_ok=True)
            copy_path(file, kept)


def swap_in(root: Path, file: Path, new: Path, folder: Path | None) -> None:
    """Put faulted ``new`` at ``file``; with a move backup in ``folder``, the original goes there
    first (once: a file already moved is the faulted one)."""
    if folder is not None:
        kept = _payload_of(folder, root, file)
        if not os.path.lexists(kept):
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, kept)
    os.replace(new, file)


def _new_temps(path: Path, backup_id: str) -> list[Path]:
    root = path if path.is_dir() and not path.is_symlink() else path.parent
    pattern = f"*{_NEW}{backup_id}"
    found = root.rglob(pattern) if root == path else root.glob(pattern)
    return [p for p in found if p.name.startswith(".")]


def restore_moved(path: Path, folder: Path, manifest: dict[str, Any], backup_id: str) -> None:
    """Rename every kept original back to ``path``; drop leftovers and what the target lacked.

    Idempotent: a second run finds nothing left to move.
    """
    from mlchaos_orchestration.stores.local import PAYLOAD, remove_path

    for temp in _new_temps(path, backup_id):
        remove_path(temp)
    payload = folder / PAYLOAD
    if manifest["kind"] == "file":
        if os.path.lexists(payload):
            if path.is_dir() and not path.is_symlink():
                remove_path(path)
            os.replace(payload, path)
        return
    if path.exists() and not path.is_dir():
        remove_path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name in manifest["files"]:
        if name.endswith("/") and name != "./":
            (path / name).mkdir(parents=True, exist_ok=True)
    if payload.is_dir():
        for kept in sorted(p for p in payload.rglob("*") if not p.is_dir() or p.is_symlink()):
            dst = path / kept.relative_to(payload)
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.is_dir() and not dst.is_symlink():
                remove_path(dst)
            os.replace(kept, dst)
    _put_back_rest(path, folder / _REST, manifest["files"])
    _drop_extras(path, manifest["files"])


def _put_back_rest(path: Path, rest: Path, wanted: dict[str, str]) -> None:
    """Copy back the small files that are missing or changed (untouched ones stay as they are)."""
    from mlchaos_orchestration.stores.local import copy_path, fingerprint, remove_path

    if not rest.is_dir():
        return
    for kept in sorted(p for p in rest.rglob("*") if not p.is_dir() or p.is_symlink()):
        rel = kept.relative_to(rest)
        dst = path / rel
        if fingerprint(dst).get(dst.name) == wanted.get(rel.as_posix()):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        remove_path(dst)
        copy_path(kept, dst)


def _drop_extras(path: Path, wanted: dict[str, str]) -> None:
    from mlchaos_orchestration.stores.local import remove_path

    for entry in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        rel = entry.relative_to(path).as_posix()
        is_dir = entry.is_dir() and not entry.is_symlink()
        if (rel + "/" if is_dir else rel) not in wanted:
            remove_path(entry)


def stream_local(fault: DataFault, target: Target, seed: int, folder: Path | None) -> StreamOutcome:
    """Stream ``fault`` over a local Parquet file or dataset directory and swap the results in.

    ``folder`` is the move backup's folder (originals are renamed into it), or ``None`` when the
    target was copied or not backed up (results replace the files).
    """
    from mlchaos_orchestration.faults.data.parquet_stream import stream_fault
    from mlchaos_orchestration.stores.local import remove_path

    root = Path(target.location)
    files = local_parquet(root)
    token = folder.name if folder is not None else str(os.getpid())
    sinks = [f.with_name(f".{f.name}{_NEW}{token}") for f in files]

    def swap(i: int) -> None:
        swap_in(root, files[i], sinks[i], folder)

    try:
        return stream_fault(
            fault, [str(f) for f in files], [str(s) for s in sinks], seed, on_written=swap
        )
    finally:
        for sink in sinks:
            remove_path(sink)


# --------------------------------------------------------------------------------------- S3
def streams_s3(fault: DataFault, sizes: dict[str, int]) -> bool:
    """Whether ``fault`` on S3 objects ``{key: size}`` streams."""
    return _streams(list(sizes.items()), fault)


def s3_filesystem(endpoint_url: str | None) -> Any:
    """A ``pyarrow.fs.S3FileSystem`` on ``endpoint_url`` (credentials from the environment)."""
    from urllib.parse import urlparse

    from pyarrow import fs

    if not endpoint_url:
        return fs.S3FileSystem(region=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    url = urlparse(endpoint_url)
    return fs.S3FileSystem(
        endpoint_override=url.netloc,
        scheme=url.scheme or "https",
        region=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )


def stream_s3(
    fault: DataFault, target: Target, keys: list[str], ctx: ApplyContext
) -> StreamOutcome:
    """Stream ``fault`` over S3 Parquet objects ``keys``: each faulted object is uploaded beside
    its original (hidden name), then copied over it server-side; the uploads are deleted."""
    from mlchaos_orchestration.faults.data.parquet_stream import stream_fault
    from mlchaos_orchestration.settings import get_settings
    from mlchaos_orchestration.stores.s3 import S3Store

    endpoint = ctx.s3_endpoint_url or get_settings().s3_endpoint_url
    store = S3Store(endpoint_url=endpoint)
    token = str(ctx.extra.get("backup_id") or os.getpid())
    temps = [_beside(k, token) for k in keys]

    def swap(i: int) -> None:
        store.client.copy(
            {"Bucket": target.bucket, "Key": temps[i]}, target.bucket, keys[i]
        )  # managed copy: multipart beyond 5 GB

    try:
        return stream_fault(
            fault,
            [f"{target.bucket}/{k}" for k in keys],
            [f"{target.bucket}/{t}" for t in temps],
            ctx.seed,
            filesystem=s3_filesystem(endpoint),
            on_written=swap,
        )
    finally:
        store.delete(target.bucket, temps)


def _beside(key: str, token: str) -> str:
    head, _, name = key.rpartition("/")
    return f"{head}/.{name}{_NEW}{token}" if head else f".{name}{_NEW}{token}"
