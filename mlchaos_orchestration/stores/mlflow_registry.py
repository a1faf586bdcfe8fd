"""MLflow registered models: exact backup/restore of one model's registry rows and model files.

A target of kind ``mlflow`` names a SQL tracking store (``location``: a SQLAlchemy URL, SQLite by
default, PostgreSQL in staging) and a registered model (``table``). What a backup holds:

- every row of ``registered_models``, ``registered_model_tags``, ``registered_model_aliases``,
  ``model_versions`` and ``model_version_tags`` of that model (versions, stages, aliases, tags,
  descriptions, timestamps);
- the metrics of the versions' runs (``metrics``, ``latest_metrics``, ``logged_model_metrics``);
- the ``MLmodel`` file (where the signature lives) of every version stored on local disk.

The copy is ``<backup_root>/<backup_id>/manifest.json`` (rows and file copies' hashes; written
last, so a manifest that exists is complete) plus ``files/``. Restore writes the ``MLmodel`` files
back (temp file + rename), then in one transaction deletes the scoped rows (children first) and
inserts the backed-up rows (parents first): idempotent, safe to re-run after a kill at any point.
``scratch/`` in the same folder holds files a fault creates (a new version's model files); it goes
away with the backup once the restore is verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import RestoreError, TargetError
from mlchaos_orchestration.stores.base import Store
from mlchaos_orchestration.stores.local import _write_atomic
from mlchaos_orchestration.stores.sql import sql_engine

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.engine import Connection

#: registry tables keyed by the model name, parents first (insert order; delete is reversed)
MODEL_TABLES = (
    "registered_models",
    "model_versions",
    "registered_model_tags",
    "registered_model_aliases",
    "model_version_tags",
)
#: run-level metric tables of the versions' runs, with their run id column
RUN_TABLES = (
    ("metrics", "run_uuid"),
    ("latest_metrics", "run_uuid"),
    ("logged_model_metrics", "run_id"),
)
MANIFEST = "manifest.json"
MLMODEL = "MLmodel"


def model_dir(version_row: dict[str, Any]) -> Path | None:
    """Local directory of a version's model files (``storage_location`` or ``source``), or None
    when they are not on local disk (S3, ``models:/`` without a storage location...)."""
    for uri in (version_row.get("storage_location"), version_row.get("source")):
        if not uri:
            continue
        parsed = urlparse(str(uri))
        if parsed.scheme == "file":
            return Path(unquote(parsed.path))
        if parsed.scheme == "" and os.path.isabs(str(uri)):
            return Path(str(uri))
    return None


def read_scope(conn: Connection, model: str) -> dict[str, list[dict[str, Any]]]:
    """Every scoped row (see the module docstring), by table; missing tables are skipped."""
    import sqlalchemy as sa

    present = set(sa.inspect(conn).get_table_names())
    rows: dict[str, list[dict[str, Any]]] = {}
    for name in MODEL_TABLES:
        if name in present:
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            rows[name] = _rows(conn, sa.select(table).where(table.c.name == model))
    run_ids = sorted({str(r["run_id"]) for r in rows.get("model_versions", []) if r.get("run_id")})
    for name, column in RUN_TABLES:
        if name in present:
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            rows[name] = _rows(conn, sa.select(table).where(table.c[column].in_(run_ids)))
    return rows


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    out = [dict(r._mapping) for r in conn.execute(query)]
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MlflowRegistryStore(Store):
    """Backups of one registered model (rows + ``MLmodel`` files) under ``backup_root``."""

    def __init__(self, backup_root: str | os.PathLike[str]):
        self.backup_root = Path(backup_root)

    # ------------------------------------------------------------------ contract
    def exists(self, target: Target) -> bool:
        return bool(self._scope(target).get("registered_models"))

    def checksum(self, target: Target) -> dict[str, str]:
        """``{"rows:<table>": sha256, "file:v<N>/MLmodel": sha256}``; ``{}`` if no such model."""
        rows = self._scope(target)
        if not rows.get("registered_models"):
            return {}
        out = {
            f"rows:{name}": _sha(json.dumps(table, sort_keys=True, default=str).encode())
            for name, table in sorted(rows.items())
        }
        for version, path in self._model_files(rows):
            out[f"file:v{version}/{MLMODEL}"] = (
                _sha(path.read_bytes()) if path.exists() else "absent"
            )
        return out

    def backup(self, target: Target, backup_id: str) -> dict[str, Any]:
        folder = self._folder(backup_id)
        manifest_path = folder / MANIFEST
        if manifest_path.exists():  # completed by an earlier call: never overwrite it
            return self._ref(backup_id)
        rows = self._scope(target)
        if not rows.get("registered_models"):
            raise TargetError(f"{target.describe()}: no such registered model")
        (folder / "files").mkdir(parents=True, exist_ok=True)
        files: dict[str, dict[str, str]] = {}
        for version, path in self._model_files(rows):
            if path.exists():
                data = path.read_bytes()
                _write_atomic(folder / "files" / f"v{version}", data)
                files[str(version)] = {"path": str(path), "sha256": _sha(data)}
        manifest = {"target": target.model_dump(mode="json"), "rows": rows, "files": files}
        _write_atomic(manifest_path, json.dumps(manifest, sort_keys=True, default=str).encode())
        return self._ref(backup_id)

    def restore(self, target: Target, ref: dict[str, Any]) -> None:
        import sqlalchemy as sa

        folder = Path(ref["folder"])
        if not (folder / MANIFEST).exists():
            raise RestoreError(f"backup {ref.get('backup_id')} of {target.describe()} is missing")
        manifest = json.loads((folder / MANIFEST).read_text())
        for version, entry in manifest["files"].items():
            data = (folder / "files" / f"v{version}").read_bytes()
            if _sha(data) != entry["sha256"]:
                raise RestoreError(f"backup copy of v{version}/{MLMODEL} is corrupt")
            path = Path(entry["path"])
            if not path.exists() or _sha(path.read_bytes()) != entry["sha256"]:
                _write_atomic(path, data)
        saved: dict[str, list[dict[str, Any]]] = manifest["rows"]
        with sql_engine(target.connect_url()) as engine, engine.begin() as conn:
            current = read_scope(conn, str(target.table))
            run_ids = {
                str(r["run_id"])
                for r in current.get("model_versions", []) + saved.get("model_versions", [])
                if r.get("run_id")
            }
            tables = {name: sa.Table(name, sa.MetaData(), autoload_with=conn) for name in saved}
            for name in reversed(MODEL_TABLES):
                if name in tables:
                    conn.execute(sa.delete(tables[name]).where(tables[name].c.name == target.table))
            for name, column in RUN_TABLES:
                if name in tables:
                    conn.execute(sa.delete(tables[name]).where(tables[name].c[column].in_(run_ids)))
            order = [*MODEL_TABLES, *(n for n, _ in RUN_TABLES)]
            for name in order:
                if saved.get(name):
                    conn.execute(sa.insert(tables[name]), saved[name])

    def discard(self, ref: dict[str, Any]) -> None:
        shutil.rmtree(ref["folder"], ignore_errors=True)

    def discard_partial(self, target: Target, backup_id: str) -> None:
        """Drop an incomplete backup copy (a crash mid-backup)."""
        shutil.rmtree(self._folder(backup_id), ignore_errors=True)

    # ------------------------------------------------------------------ used by faults
    def scratch_dir(self, backup_id: str) -> Path:
        """A folder for files a fault creates; deleted with the backup after the restore."""
        path = self._folder(backup_id) / "scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def scope(self, target: Target) -> dict[str, list[dict[str, Any]]]:
        """The model's scoped rows as they are now (see :func:`read_scope`)."""
        return self._scope(target)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _scope(target: Target) -> dict[str, list[dict[str, Any]]]:
        if target.kind != "mlflow":
            raise TargetError(f"not an MLflow registry target: {target.describe()}")
        with sql_engine(target.connect_url()) as engine, engine.connect() as conn:
            return read_scope(conn, str(target.table))

    @staticmethod
    def _model_files(rows: dict[str, list[dict[str, Any]]]) -> list[tuple[int, Path]]:
        out = []
        for row in rows.get("model_versions", []):
            folder = model_dir(row)
            if folder is not None:
                out.append((int(row["version"]), folder / MLMODEL))
        return sorted(out)

    def _folder(self, backup_id: str) -> Path:
        if not backup_id or "/" in backup_id or backup_id in (".", ".."):
            raise TargetError(f"invalid backup id {backup_id!r}")
        return self.backup_root / backup_id

    def _ref(self, backup_id: str) -> dict[str, Any]:
        return {"kind": "mlflow", "backup_id": backup_id, "folder": str(self._folder(backup_id))}


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` when it names a database, else ``sqlite:///$MLCHAOS_HOME/mlflow.db``."""
    from mlchaos_orchestration.settings import get_settings

    env = os.environ.get("MLFLOW_TRACKING_URI", "")
    if "://" in env and not env.startswith(("http://", "https://", "file:", "databricks")):
        return env
    return f"sqlite:///{get_settings().data_dir / 'mlflow.db'}"
