"""Fixtures for the Dagster adapter tests: the example pipeline's data under a temp MLCHAOS_HOME,
a real temporary Dagster instance, the alert webhook receiver wired through its env var."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # dagster_support, before test modules load

from dagster_support import DS  # noqa: E402


@pytest.fixture(params=["sqlite"])
def features_url(request: pytest.FixtureRequest, mlchaos_home: Path) -> str:
    """Where the example's features table lives (parametrise with ``postgresql`` for real PG)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{mlchaos_home / 'example' / 'features.db'}"


@pytest.fixture
def example_env(
    mlchaos_home: Path, features_url: str, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """Five days of seeded raw events, the features DB, model dir; env vars set."""
    from mlchaos_orchestration.examples.locations import ExampleConfig, prepare

    base = mlchaos_home / "example"
    config = ExampleConfig(
        raw_root=str(base / "raw" / "events"),
        features_url=features_url,
        model_dir=str(base / "models"),
        ds=DS,
    )
    prepare(config, rows_per_day=1500)
    for key, value in config.export().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLCHAOS_ALERT_WEBHOOK_URL", webhook.url)
    return config


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Any]:
    """A real Dagster instance in a temp directory (SQLite run/event storage)."""
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as inst:
        yield inst


@pytest.fixture
def chaos_defs(example_env: Any) -> Any:
    """The example Definitions wrapped by with_chaos."""
    from mlchaos_orchestration.examples.definitions import chaos_pipeline_defs

    return chaos_pipeline_defs()


@pytest.fixture
def matrix(example_env: Any) -> Any:
    """The example experiment matrix (loaded after the env vars are set)."""
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.examples.definitions import EXPERIMENTS_FILE

    return load_experiments(EXPERIMENTS_FILE)
