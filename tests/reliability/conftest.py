"""Fixtures shared by the reliability tests: a CLI runner, a one-line-error check, a tiny
pipeline importable by CLI subprocesses. Fingerprints come from
mlchaos_orchestration.testing.torture
(sha256 per file/object, server-side row md5 per table), independent of the stores under test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlchaos_orchestration.testing.torture import AWS_TEST_ENV

CliRunner = Callable[..., subprocess.CompletedProcess[str]]

PIPELINE_MODULE = """
from mlchaos_orchestration.core.pipeline import Pipeline, Step

def read():
    return 1

def gate(read):
    return read

def train(gate):
    return gate

pipeline = Pipeline("tiny", [Step("read", read), Step("gate", gate, ("read",)),
                             Step("train", train, ("gate",))], gate="gate", consumer="train")
"""


def _run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **AWS_TEST_ENV, **(env or {})}
    full.pop("MLCHAOS_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "mlchaos_orchestration.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _assert_one_line_error(done: subprocess.CompletedProcess[str], needle: str = "") -> None:
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, "no error message"
    assert all(line.startswith("error: ") for line in lines), lines
    assert needle in done.stderr, done.stderr


@pytest.fixture
def cli() -> CliRunner:
    """``cli("restore", env={...})`` runs ``mlchaos restore`` in a subprocess."""
    return _run_cli


@pytest.fixture
def one_line_error() -> Callable[..., None]:
    """Check: non-zero exit, no traceback, every stderr line ``error: ...`` containing needle."""
    return _assert_one_line_error


@pytest.fixture
def tiny_pipeline(tmp_path: Path) -> dict[str, str]:
    """Env that makes ``--pipeline tinypipe:pipeline`` importable in a CLI subprocess."""
    folder = tmp_path / "pipemod"
    folder.mkdir()
    (folder / "tinypipe.py").write_text(PIPELINE_MODULE)
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    }
