"""The Airflow side of ``mlchaos suite``: one experiment = one real ``dag.test()`` run in this
worker process (its own migrated SQLite metadata DB under MLCHAOS_HOME).

The example DAG is exposed to Airflow by a one-line DAG file written under MLCHAOS_HOME (it
imports :mod:`mlchaos_orchestration.examples.dag`), so an installed wheel runs it anywhere; the
user's DAGs run from their own folder (:mod:`.user_targets`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

DAG_ID = "feature_pipeline"
EXAMPLE_DAG_FILE = (
    '"""airflow DAG file written by mlchaos: the bundled example DAG."""\n'
    "from mlchaos_orchestration.examples.dag import dag  # noqa: F401\n"
)
_READY: dict[str, bool] = {}


def prepare_airflow_home(home: Path, dags_folder: Path) -> dict[str, str]:
    """Point this process at a migrated Airflow home whose DAGs folder is ``dags_folder``
    (before importing Airflow); migrate and serialize the DAGs once per home, Airflow version
    and DAG files (a stamp in the home: later suites reuse its metadata DB as it is)."""
    from mlchaos_orchestration.suite.user_targets import airflow_env

    env = airflow_env(home, dags_folder)
    os.environ.update(env)
    if not _READY.get(str(home)):
        home.mkdir(parents=True, exist_ok=True)
        stamp, key = home / _STAMP, _home_key(env, dags_folder)
        fresh = (home / "airflow.db").is_file() and stamp.is_file() and stamp.read_text() == key
        if not fresh:
            stamp.unlink(missing_ok=True)
            subprocess.run(
                [sys.executable, "-c", _MIGRATE_AND_SERIALIZE],
                env={**os.environ},
                check=True,
                capture_output=True,
                timeout=600,
            )
            stamp.write_text(key)
        _READY[str(home)] = True
    return env


_STAMP = ".mlchaos-migrated"
#: ``airflow db migrate`` then ``airflow dags reserialize``, in one process (one Airflow import)
_MIGRATE_AND_SERIALIZE = """
from airflow.cli import cli_parser
from airflow.configuration import write_default_airflow_configuration_if_needed

write_default_airflow_configuration_if_needed()
parser = cli_parser.get_parser()
for argv in (["db", "migrate"], ["dags", "reserialize"]):
    args = parser.parse_args(argv)
    args.func(args)
"""


def _home_key(env: dict[str, str], dags_folder: Path) -> str:
    """What the migrated, serialized metadata DB of a home depends on: the Airflow version,
    the home's settings and the DAG files (names and contents)."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256(json.dumps(env, sort_keys=True).encode())
    for version_of in ("apache-airflow", "apache-airflow-core", "mlchaos-orchestration"):
        try:
            digest.update(f"{version_of}={version(version_of)}".encode())
        except PackageNotFoundError:  # not installed under this name: nothing to key on
            digest.update(version_of.encode())
    for path in sorted(Path(dags_folder).rglob("*.py")):
        digest.update(str(path.relative_to(dags_folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def logical_date(ds: str, suite_id: str) -> str:
    """The run's logical date: ``ds`` at midnight plus a few microseconds unique to the suite.

    ``dag.test()`` names a run after its logical date, and the ledger names a chaos run after
    the Airflow run: without the offset, the same experiment on the same day in a later suite
    would reuse the earlier suite's ledger run. The date (``ds``) and the data interval of
    daily schedules are unchanged."""
    import hashlib

    micro = int(hashlib.sha256(suite_id.encode()).hexdigest(), 16) % 999_999 + 1
    return f"{ds}T00:00:00.{micro:06d}"


def example_dags_folder(root: Path) -> Path:
    """A DAGs folder under ``root`` holding only the example DAG's one-line file."""
    folder = root / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{DAG_ID}.py"
    if not path.is_file() or path.read_text() != EXAMPLE_DAG_FILE:
        path.write_text(EXAMPLE_DAG_FILE)
    return folder


def run_one(exp: Any, *, suite_id: str, config: Any) -> dict[str, Any]:
    """Run ``exp`` (inline in the run conf) against the example DAG for ``config.ds``."""
    from mlchaos_orchestration.settings import get_settings

    root = get_settings().data_dir / "suite" / "airflow"
    prepare_airflow_home(root / "airflow_home", example_dags_folder(root))
    from mlchaos_orchestration.airflow.dagtest import run

    conf = {"mlchaos": {"experiment": exp.spec(), "suite_id": suite_id}}
    return run(DAG_ID, conf, logical_date(config.ds, suite_id))
