"""``benchmarks/run_all.py``: each benchmark in its own process, its summary lines kept, and an
exit status that never hides a failed or hung benchmark (fake benchmarks, real processes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

RUN_ALL = Path(__file__).resolve().parents[2] / "benchmarks" / "run_all.py"


@pytest.fixture
def run_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = importlib.util.spec_from_file_location("run_all_under_test", RUN_ALL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "HERE", tmp_path)  # the fake benchmarks live here
    return module


def _fake(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(body)


def test_summary_lines_exit_status_and_results_file(run_all: Any, tmp_path: Path) -> None:
    _fake(tmp_path, "good", "print('detail'); print('gate overhead: 1.02x raw GX'); print('tail')")
    _fake(tmp_path, "bad", "print('last words'); raise SystemExit(3)")
    good = run_all.Bench("good", [], (r"gate overhead:",))
    bad = run_all.Bench("bad", [], (r"never printed",))
    run_all.run(good, tmp_path / "good.log", timeout=60)
    run_all.run(bad, tmp_path / "bad.log", timeout=60)
    assert (good.status, good.summary_lines()) == ("ok", ["gate overhead: 1.02x raw GX"])
    assert (bad.status, bad.summary_lines()) == ("failed (exit 3)", ["last words"])  # last line
    assert "tail" in (tmp_path / "good.log").read_text()
    assert good.load and good.started and good.ended
    text = run_all.render([good, bad], "stamp")
    assert "good: ok" in text and "bad: failed (exit 3)" in text
    assert "    gate overhead: 1.02x raw GX" in text


def test_a_hung_benchmark_is_killed_and_reported(run_all: Any, tmp_path: Path) -> None:
    _fake(tmp_path, "hang", "import time; print('started', flush=True); time.sleep(60)")
    bench = run_all.Bench("hang", [], ())
    run_all.run(bench, tmp_path / "hang.log", timeout=2)
    assert bench.status.startswith("timed out") and bench.seconds < 30


def test_main_exits_1_when_any_benchmark_fails(
    run_all: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake(tmp_path, "gate", "raise SystemExit(1)")
    out = tmp_path / "results"
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--only", "gate", "--out", str(out)])
    assert run_all.main() == 1
    [summary] = out.glob("*.txt")
    assert "gate: failed (exit 1)" in summary.read_text()
