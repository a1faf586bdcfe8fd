"""Local files and directories: byte-exact backup/restore through temp names and renames.

A backup lives in ``<backup_root>/<backup_id>/``: ``payload`` (a copy of the target, moved into
place by one rename) and ``manifest.json`` (written last; its presence marks the backup complete).
Symlinks inside a target are copied as links, never followed.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import RestoreError, TargetError
from mlchaos_orchestration.stores.base import Store

MANIFEST = "manifest.json"
PAYLOAD = "payload"
_RESTORE_TMP = ".mlchaos-restore-"
_BACKUP_TMP = ".tmp-"
DIR_MARK = "<dir>"
OUTAGE_MARKER = "mlchaos-outage"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _link_mark(path: Path) -> str:
    return "symlink:" + hashlib.sha256(os.readlink(path).encode()).hexdigest()


def fingerprint(path: Path) -> dict[str, str]:
    """``{relative name: sha256}`` of a file or a directory tree; links and dirs are marked."""
    if path.is_symlink():
        return {path.name: _link_mark(path)}
    if path.is_file():
        return {path.name: _sha256_file(path)}
    if not path.is_dir():
        return {}
    out: dict[str, str] = {"./": DIR_MARK}
    for root, dirs, files in os.walk(path, followlinks=False):
        base = Path(root)
        for name in dirs + files:
            full = base / name
            rel = full.relative_to(path).as_posix()
            if full.is_symlink():
                out[rel] = _link_mark(full)
            elif full.is_dir():
                out[rel + "/"] = DIR_MARK
            else:
                out[rel] = _sha256_file(full)
    return out


def copy_path(src: Path, dst: Path) -> None:
    """Copy a file, link or tree to ``dst`` keeping mtimes and links (``dst`` must not exist)."""
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)


def remove_path(path: Path) -> None:
    """Remove whatever is at ``path`` (file, link, directory); nothing there is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + _BACKUP_TMP + str(os.getpid()))
    tmp.write_bytes(data)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class LocalStore(Store):
    """Backups of local files/directories under ``backup_root``."""

    def __init__(self, backup_root: str | os.PathLike[str]):
        self.backup_root = Path(backup_root)

    # ------------------------------------------------------------------ contract
    def exists(self, target: Target) -> bool:
        return os.path.lexists(self._path(target))

    def checksum(self, target: Target) -> dict[str, str]:
        return fingerprint(self._path(target))

    def backup(self, target: Target, backup_id: str, *, move: bool = False) -> dict[str, Any]:
        """Copy the target; with ``move``, copy nothing: the fault renames each original into
        the backup before it puts a changed file in place (see :mod:`.parquet_swap`)."""
        from mlchaos_orchestration.stores import parquet_swap

        path = self._path(target)
        folder = self._folder(backup_id)
        manifest_path = folder / MANIFEST
        if manifest_path.exists():  # completed by an earlier call: never overwrite it
            return self._ref(backup_id, json.loads(manifest_path.read_text()))
        self._check_apart(path)
        self.discard_partial(target, backup_id)
        folder.mkdir(parents=True)
        existed = os.path.lexists(path)
        move = move and existed and parquet_swap.can_move(path, folder)
        kind = None
        if existed:
            kind = "dir" if path.is_dir() and not path.is_symlink() else "file"
        if existed and not move:
            staging = folder / (PAYLOAD + _BACKUP_TMP + "copy")
            copy_path(path, staging)
            os.replace(staging, folder / PAYLOAD)
        if move:
            parquet_swap.keep_rest(path, folder)
        manifest = {
            "target": str(path),
            "existed": existed,
            "kind": kind,
            "files": fingerprint(path if move else folder / PAYLOAD) if existed else {},
            **({"mode": parquet_swap.MOVE} if move else {}),
        }
        _write_atomic(manifest_path, json.dumps(manifest, sort_keys=True).encode())
        return self._ref(backup_id, manifest)

    def restore(self, target: Target, ref: dict[str, Any]) -> None:
        path = self._path(target)
        folder = Path(ref["folder"])
        self._clean_restore_temps(path)
        if not (folder / MANIFEST).exists():
            if self.checksum(target) == self._expected(path, ref):
                return  # already restored and discarded
            raise RestoreError(f"backup {ref.get('backup_id')} of {path} is missing or incomplete")
        manifest = json.loads((folder / MANIFEST).read_text())
        if not manifest["existed"]:
            remove_path(path)
            return
        if manifest.get("mode") == "move":
            from mlchaos_orchestration.stores.parquet_swap import restore_moved

            restore_moved(path, folder, manifest, ref["backup_id"])
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}{_RESTORE_TMP}{ref['backup_id']}")
        copy_path(folder / PAYLOAD, staging)
        remove_path(path)
        os.replace(staging, path)

    def discard(self, ref: dict[str, Any]) -> None:
        shutil.rmtree(ref["folder"], ignore_errors=True)

    def discard_partial(self, target: Target, backup_id: str) -> None:
        """Drop an incomplete backup copy (a crash mid-backup)."""
        shutil.rmtree(self._folder(backup_id), ignore_errors=True)

    # ------------------------------------------------------------------ mutations used by faults
    def files(self, target: Target) -> list[Path]:
        """Regular files of the target (itself if a file), sorted; links are skipped."""
        path = self._path(target)
        if path.is_symlink():
            return []
        if path.is_file():
            return [path]
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())

    def remove(self, target: Target) -> None:
        """Delete the target (file or directory)."""
        remove_path(self._path(target))

    def rewrite(self, target: Target, transform: Callable[[str, bytes], bytes]) -> int:
        """Replace each file's bytes by ``transform(name, data)``; return the number of files."""
        files = self.files(target)
        for file in files:
            _write_atomic(file, transform(file.name, file.read_bytes()))
        return len(files)

    def swap_kind(self, target: Target) -> str:
        """Swap a file for a directory or a directory for an empty file; return the new kind.

        The directory holds one empty file, so dataset readers (pyarrow) fail too instead of
        reading an empty directory as an empty table; ``open()`` raises IsADirectoryError.
        """
        path = self._path(target)
        if not os.path.lexists(path):
            raise TargetError(f"{path}: does not exist")
        was_dir = path.is_dir() and not path.is_symlink()
        remove_path(path)
        if was_dir:
            path.touch()
            return "file"
        path.mkdir()
        (path / OUTAGE_MARKER).touch()
        return "dir"

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _path(target: Target) -> Path:
        if target.kind != "local":
            raise TargetError(f"not a local target: {target.describe()}")
        return Path(os.path.normpath(target.location))

    def _check_apart(self, path: Path) -> None:
        """Refuse targets that contain the backup root or lie inside it."""
        root, real = self.backup_root.resolve(), path.resolve()
        if root == real or root.is_relative_to(real) or real.is_relative_to(root):
            raise TargetError(f"{path}: overlaps the backup directory {self.backup_root}")

    def _folder(self, backup_id: str) -> Path:
        if not backup_id or "/" in backup_id or backup_id in (".", ".."):
            raise TargetError(f"invalid backup id {backup_id!r}")
        return self.backup_root / backup_id

    def _ref(self, backup_id: str, manifest: dict[str, Any]) -> dict[str, Any]:
        return {
            "kind": "local",
            "backup_id": backup_id,
            "folder": str(self._folder(backup_id)),
            "existed": manifest["existed"],
            "files": manifest["files"],
            **({"mode": manifest["mode"]} if "mode" in manifest else {}),
        }

    @staticmethod
    def _expected(path: Path, ref: dict[str, Any]) -> dict[str, str]:
        files = dict(ref.get("files") or {})
        if len(files) == 1 and "./" not in files:  # a single file: named after the target
            return {path.name: next(iter(files.values()))}
        return files

    @staticmethod
    def _clean_restore_temps(path: Path) -> None:
        if not path.parent.is_dir():
            return
        for stale in path.parent.glob(glob.escape(f".{path.name}{_RESTORE_TMP}") + "*"):
            remove_path(stale)
