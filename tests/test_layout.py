"""The package's tree shows its architecture, and keeps doing so: rooms by role, one example
matrix, tests mirroring the package, runtime code free of test helpers, old paths deprecated."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlchaos_orchestration"
#: file names that several folders share on purpose: the same role in each folder
#: (an adapter's gate / runner, a folder's base classes) or the same backend (s3, sql)
SHARED_NAMES = {
    "__init__.py", "__main__.py", "base.py", "gate.py", "runner.py", "s3.py", "sql.py",
    "resilience.py",  # each adapter's weekly resilience run
}  # fmt: skip
#: test folders that mirror no package folder by design
NOT_MIRRORED = {"e2e", "reliability", "docker", "benchmarks"}  # benchmarks/: the scripts


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_top_level_keeps_at_most_five_modules() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 5, top


def test_one_experiments_file_for_the_example() -> None:
    found = [
        p.relative_to(ROOT)
        for p in ROOT.rglob("experiments.yaml")
        if not {".venv", "tests", ".git", ".mlchaos", "reports", "build", "dist"}
        & set(p.relative_to(ROOT).parts)
    ]
    assert found == [Path("mlchaos_orchestration/examples/experiments.yaml")]


def test_no_two_modules_share_a_name_with_different_roles() -> None:
    seen: dict[str, list[str]] = {}
    for path in _modules():
        seen.setdefault(path.name, []).append(str(path.relative_to(PACKAGE)))
    clashes = {n: p for n, p in seen.items() if len(p) > 1 and n not in SHARED_NAMES}
    assert clashes == {}


def test_tests_mirror_the_package() -> None:
    stray = []
    for test in ROOT.joinpath("tests").rglob("test_*.py"):
        folder = test.parent.relative_to(ROOT / "tests")
        if folder.parts and folder.parts[0] in NOT_MIRRORED:
            continue
        if not (PACKAGE / folder).is_dir():
            stray.append(str(test.relative_to(ROOT)))
    assert stray == []


def test_runtime_code_never_imports_the_test_helpers() -> None:
    offenders = []
    for path in _modules():
        if path.is_relative_to(PACKAGE / "testing"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if any(n.startswith("mlchaos_orchestration.testing") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning:mlchaos_orchestration", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_old_module_paths_still_work_with_a_deprecation_warning() -> None:
    code = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    import mlchaos_orchestration.experiment as old\n"
        "    from mlchaos_orchestration.hooks import install\n"
        "import mlchaos_orchestration.core.experiment as new\n"
        "import mlchaos_orchestration.interceptors as inter\n"
        "assert old is new and install is inter.install\n"
        "assert new.__spec__.name == 'mlchaos_orchestration.core.experiment', new.__spec__\n"
        "msgs = [str(w.message) for w in seen if w.category is DeprecationWarning]\n"
        "assert any('experiment moved to mlchaos_orchestration.core.experiment' in m\n"
        "           for m in msgs), msgs\n"
        "assert any('hooks moved to mlchaos_orchestration.interceptors' in m for m in msgs)\n"
        "print('ok')\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_public_api_is_importable_from_the_package() -> None:
    out = _python(
        "import sys\n"
        "from mlchaos_orchestration import parse_experiment, load_experiments, build_fault,"
        " Ledger, registry\n"
        "heavy = {'pandas', 'airflow', 'dagster', 'great_expectations'} & set(sys.modules)\n"
        "from mlchaos_orchestration.airflow import add_chaos\n"
        "from mlchaos_orchestration.dagster import with_chaos, run_experiment_dagster,"
        " gx_blocking_check\n"
        "assert all(map(callable, [add_chaos, with_chaos, run_experiment_dagster,"
        " gx_blocking_check, parse_experiment, load_experiments, build_fault, registry]))\n"
        "print(sorted(heavy))\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"  # the core API loads no orchestrator, pandas or GX
