"""The CLI: one-line errors, non-zero exits, no tracebacks, dry runs that touch nothing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

MLCHAOS = [sys.executable, "-m", "mlchaos_orchestration.cli"]


def run(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MLCHAOS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "ds=2026-01-01").mkdir(parents=True)
    (root / "ds=2026-01-01" / "part.csv").write_text("a,b\n1,2\n3,4\n")
    return root


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_faults_list_shows_every_fault() -> None:
    out = run(["faults", "list"])
    assert out.returncode == 0
    for name in (
        "nulls",
        "out_of_range",
        "type_flip",
        "unseen_category",
        "drop_column",
        "rename_column",
        "duplicate_rows",
        "label_shuffle",
        "mislabel",
        "class_removal",
        "drift",
        "upstream_outage",
        "stale_partition_replay",
        "connector_failure",
    ):
        assert f"\n{name} " in "\n" + out.stdout, name
    assert "fraction:" in out.stdout


@pytest.mark.parametrize(
    "text, needle",
    [
        ("experiments: [\n", "invalid YAML"),
        (
            "experiments:\n  - name: a\n    faults: [{fault: nullz, columns: [a]}]\n",
            "did you mean 'nulls'",
        ),
        (
            "experiments:\n  - name: a\n    faults: [{fault: nulls, columns: [a], fraction: 3}]\n",
            "experiments[0].faults[0].fraction: must be <= 1",
        ),
        (
            "experiments:\n  - name: a\n    faults: [{fault: upstream_outage, mode: missing}]\n",
            "experiments[0].faults[0].target: required",
        ),
    ],
)
def test_validate_reports_one_line_errors(tmp_path: Path, text: str, needle: str) -> None:
    out = run(["validate", str(write(tmp_path, text))])
    assert out.returncode == 1
    assert needle in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_run_refuses_non_allowlisted_target_and_touches_nothing(
    tmp_path: Path, data_dir: Path
) -> None:
    before = tree_digest(data_dir)
    spec = write(
        tmp_path,
        f"""
pipeline: mlchaos_orchestration.examples.plain:build_pipeline
experiments:
  - name: outage
    faults: [{{fault: upstream_outage, target: "{data_dir}/ds=2026-01-01", mode: missing}}]
""",
    )
    out = run(["run", str(spec)], env={"MLCHAOS_HOME": str(tmp_path / "home")})
    assert out.returncode == 1, out.stdout
    assert "not in the allowlist" in out.stderr or "no allowed targets" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert tree_digest(data_dir) == before


def allowed_outage(tmp_path: Path, data_dir: Path) -> Path:
    """An experiments file emptying one allowlisted partition of ``data_dir``."""
    return write(
        tmp_path,
        f"""
pipeline: mlchaos_orchestration.examples.plain:build_pipeline
defaults: {{safety: {{allowed_targets: ["{data_dir}"]}}}}
experiments:
  - name: outage
    faults: [{{fault: upstream_outage, target: "{data_dir}/ds=2026-01-01", mode: empty}}]
""",
    )


def test_dry_run_reports_and_touches_nothing(tmp_path: Path, data_dir: Path) -> None:
    before = tree_digest(data_dir)
    spec = allowed_outage(tmp_path, data_dir)
    out = run(["run", str(spec), "--dry-run"], env={"MLCHAOS_HOME": str(tmp_path / "home")})
    assert out.returncode == 0, out.stderr
    assert "would touch" in out.stdout and "ds=2026-01-01" in out.stdout
    assert tree_digest(data_dir) == before


def test_production_environment_is_refused(tmp_path: Path, data_dir: Path) -> None:
    before = tree_digest(data_dir)
    spec = allowed_outage(tmp_path, data_dir)
    out = run(
        ["run", str(spec)],
        env={"MLCHAOS_HOME": str(tmp_path / "home"), "MLCHAOS_ENVIRONMENT": "production"},
    )
    assert out.returncode == 1 and "production" in out.stderr
    assert tree_digest(data_dir) == before


def test_status_abort_restore_on_empty_ledger(tmp_path: Path) -> None:
    env = {"MLCHAOS_HOME": str(tmp_path / "home")}
    assert "active faults: 0" in run(["status"], env).stdout
    assert run(["abort"], env).returncode == 0
    assert "restored: 0/0" in run(["restore"], env).stdout


def test_unexpected_errors_are_one_line(tmp_path: Path) -> None:
    out = run(["status"], env={"MLCHAOS_LEDGER_URL": "nosuchdb://x"})
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_an_optional_command_that_cannot_load_says_why() -> None:
    code = (
        "import sys; sys.modules['mlchaos_orchestration.cli.suite'] = None\n"
        "from mlchaos_orchestration.cli.commands import main\n"
        "sys.argv = ['mlchaos', 'suite', 'experiments.yaml']; main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "'mlchaos suite' is unavailable here" in out.stderr
    assert "ModuleNotFoundError: import of mlchaos_orchestration.cli.suite halted" in out.stderr


# ------------------------------------------------------------------------- gate suites (issue 9)
SUITE = """
name: orders
expectations:
  - {type: ExpectColumnToExist, kwargs: {column: amount}}
  - {type: %s, kwargs: {column: amount}}
"""


def _with_suite(tmp_path: Path, expectation: str, where: str = "defaults") -> Path:
    (tmp_path / "suites").mkdir(exist_ok=True)
    (tmp_path / "suites" / "orders.yaml").write_text(SUITE % expectation)
    ref = "gate_suite: suites/orders.yaml"
    if where == "defaults":
        text = f"defaults:\n  {ref}\nexperiments:\n  - {{name: c, control: true}}\n"
    else:
        text = (
            f"experiments:\n  - {{name: c, control: true}}\n  - {{name: d, control: true, {ref}}}\n"
        )
    return write(tmp_path, text)


@pytest.mark.parametrize("where", ["defaults", "experiment"])
def test_validate_refuses_a_misspelled_expectation_in_a_named_gate_suite(
    tmp_path: Path, where: str
) -> None:
    path = _with_suite(tmp_path, "ExpectColumnValuesToNotBeNul", where)
    out = subprocess.run(
        [*MLCHAOS, "validate", path.name], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 1, out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "gate_suite suites/orders.yaml: expectations[1]" in lines[0]
    assert "did you mean 'ExpectColumnValuesToNotBeNull'" in lines[0]
    assert "Traceback" not in out.stderr


def test_validate_loads_a_good_gate_suite(tmp_path: Path) -> None:
    path = _with_suite(tmp_path, "ExpectColumnValuesToNotBeNull")
    out = run(["validate", str(path)])
    assert out.returncode == 0, out.stderr
    assert "1 gate suite checked" in out.stdout
    (tmp_path / "suites" / "orders.yaml").unlink()
    missing = run(["validate", str(path)])
    assert missing.returncode == 1 and "gate_suite suites/orders.yaml" in missing.stderr


def test_check_labels_exit_codes_and_one_line(tmp_path: Path) -> None:
    from mlchaos_orchestration.faults import build_fault
    from mlchaos_orchestration.testing.frames import labelled_frame

    labelled_frame(20_000, seed=1).to_parquet(tmp_path / "ref.parquet")
    clean = labelled_frame(20_000, seed=2)
    clean.to_csv(tmp_path / "clean.csv", index=False)
    shuffle = build_fault({"fault": "label_shuffle", "label": "label", "fraction": 0.3})
    shuffle.apply(clean, 3).frame.to_parquet(tmp_path / "shuffled.parquet")
    base = ["check-labels", "--reference", str(tmp_path / "ref.parquet"), "--label", "label"]
    ok = run([*base, "--candidate", str(tmp_path / "clean.csv")])
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("labels consistent") and ok.stdout.count("\n") == 1
    bad = run([*base, "--candidate", str(tmp_path / "shuffled.parquet")])
    assert bad.returncode == 1
    assert "less consistent with the features" in bad.stdout and bad.stdout.count("\n") == 1
    missing = run([*base, "--candidate", str(tmp_path / "nope.csv")])
    assert missing.returncode == 2 and "no such file" in missing.stderr


# ------------------------------------------------------------ issue 15: output people can read
def test_faults_list_marks_required_parameters_and_shows_defaults_readably() -> None:
    from mlchaos_orchestration.faults import registry

    text = run(["faults", "list"])
    as_json = run(["faults", "list", "--json"])
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    for bad in ("PydanticUndefined", "np.float64", "NoneType", "typing.", "Optional"):
        assert bad not in text.stdout + as_json.stdout, bad
    import json

    items = {i["name"]: i for i in json.loads(as_json.stdout)}
    assert set(items) == set(registry())
    for name, cls in registry().items():
        details = {p["name"]: p for p in items[name]["parameter_details"]}
        assert list(details) == list(cls.model_fields), name
        block = _block(text.stdout, name)
        for pname, info in cls.model_fields.items():
            assert details[pname]["required"] == info.is_required(), (name, pname)
            shown = next(x for x in block if x.split()[:1] == [f"{pname}:"])
            marked = "REQUIRED" in shown and "REQUIRED" in items[name]["parameters"][pname]
            assert marked == info.is_required(), (name, pname, shown)
    row = {
        (n, p["name"]): items[n]["parameters"][p["name"]]
        for n in items
        for p in items[n]["parameter_details"]
    }
    assert row[("upstream_outage", "target")].startswith("str or mapping str -> any, REQUIRED")
    assert row[("upstream_outage", "mode")].startswith(
        "one of missing, empty, truncated, late, error, default missing"
    )
    assert row[("stale_partition_replay", "timestamp_columns")] == "list of str, default []"
    assert row[("nulls", "columns")].startswith("list of str, REQUIRED (at least 1 item")
    assert row[("nulls", "fraction")].startswith("float, default 0.1 (>= 0, <= 1")
    assert row[("nulls", "max_rows")].startswith("int, optional")
    assert row[("class_removal", "fraction")].startswith("float, ignored by this fault")
    assert row[("stale_partition_replay", "shift_timestamps")] == "bool, default false"
    assert items["connector_failure"]["rules"] == [
        "give exactly one of url (SQL) or s3 (s3://bucket/prefix)"
    ]
    assert "    rule: give exactly one of mapping or columns" in text.stdout


def test_dry_run_lists_every_experiment_with_its_own_problem(
    tmp_path: Path, data_dir: Path
) -> None:
    before = tree_digest(data_dir)
    elsewhere = tmp_path / "elsewhere"
    spec = write(
        tmp_path,
        f"""
pipeline: mlchaos_orchestration.examples.plain:build_pipeline
defaults: {{safety: {{allowed_targets: ["{data_dir}"]}}}}
experiments:
  - name: ok-outage
    faults: [{{fault: upstream_outage, target: "{data_dir}/ds=2026-01-01", mode: empty}}]
  - name: needs-ds
    faults: [{{fault: upstream_outage, target: "{data_dir}/ds={{ds}}", mode: empty}}]
  - name: not-allowed
    faults: [{{fault: upstream_outage, target: "{elsewhere}", mode: empty}}]
  - name: bad-step
    faults: [{{fault: nulls, columns: [a], at: no_such_step}}]
  - name: ok-nulls
    faults: [{{fault: nulls, columns: [a], at: validate_features}}]
""",
    )
    env = {"MLCHAOS_HOME": str(tmp_path / "home")}
    out = run(["run", str(spec), "--dry-run"], env=env)
    assert out.returncode == 1, out.stdout
    assert "Traceback" not in out.stderr
    names = ["ok-outage", "needs-ds", "not-allowed", "bad-step", "ok-nulls"]
    heads = [line for line in out.stdout.splitlines() if not line.startswith(" ")]
    assert [h.split(":")[0] for h in heads[:5]] == names, out.stdout
    assert heads[0] == "ok-outage: ok, would touch:" and heads[4] == "ok-nulls: ok, would touch:"
    block = {name: "\n".join(_block(out.stdout, name)) for name in names}
    assert "needs a run date: pass --ds" in block["needs-ds"]
    assert "allowlist" in block["not-allowed"] or "allowed" in block["not-allowed"]
    assert "'no_such_step' is not a step of pipeline" in block["bad-step"]
    assert "ds=2026-01-01" in block["ok-outage"] and "problem" not in block["ok-outage"]
    assert "PROBLEM" not in block["ok-nulls"]
    err = out.stderr.strip().splitlines()
    assert [line.split(":")[1].strip() for line in err[:-1]] == [
        "needs-ds",
        "not-allowed",
        "bad-step",
    ]
    assert all(line.startswith("error: ") for line in err)
    assert err[-1] == (
        "error: dry run: 3 of 5 experiments have a problem: needs-ds, not-allowed, bad-step"
    )
    assert tree_digest(data_dir) == before and not elsewhere.exists()

    fine = run(
        ["run", str(spec), "--dry-run", "--ds", "2026-01-01", "-e", "ok-outage", "-e", "needs-ds"],
        env=env,
    )
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "dry run: 2 experiments, no problems" in fine.stdout
    assert tree_digest(data_dir) == before


def test_cli_prints_gate_summaries_with_plain_numbers(tmp_path: Path) -> None:
    (tmp_path / "np_pipe.py").write_text(
        "import numpy as np\n"
        "from mlchaos_orchestration.gates.gx import GateFailed, GateResult\n"
        "def build():\n"
        "    failed = [{'expectation': 'ExpectColumnMaxToBeBetween', 'column': 'amount',\n"
        "               'kwargs': {'column': 'amount', 'max_value': np.float64(100.0)},\n"
        "               'observed_value': np.float64(114.99999999999999),\n"
        "               'unexpected_percent': None, 'exception': None}]\n"
        "    raise GateFailed(GateResult(False, 3, 0.1, 'orders', failed=failed))\n"
    )
    spec = write(tmp_path, "pipeline: np_pipe:build\nexperiments:\n  - {name: c, control: true}\n")
    out = run(
        ["run", str(spec)],
        env={"MLCHAOS_HOME": str(tmp_path / "home"), "PYTHONPATH": str(tmp_path)},
    )
    assert out.returncode == 1
    assert "gate 'orders' failed" in out.stderr  # the gate summary reached the user ...
    assert "max_value=100.0" in out.stderr and "[observed 114.99999999999999]" in out.stderr
    assert "np.float64" not in out.stderr + out.stdout  # ... with plain numbers


def _block(stdout: str, head: str) -> list[str]:
    """The lines of ``stdout`` from the unindented line starting with ``head`` up to the next
    unindented line (one fault of ``faults list``, one experiment of a dry run)."""
    lines = stdout.splitlines()
    start = next(i for i, x in enumerate(lines) if x.split(":")[0].split()[0] == head)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), None)
    return [x.strip() for x in lines[start:end]]


def test_sweep_of_the_example_runs_outside_the_example_environment(tmp_path: Path) -> None:
    from mlchaos_orchestration.suite.demo import EXPERIMENTS_PATH

    env = {k: "" for k in ("MLCHAOS_RAW_ROOT", "MLCHAOS_FEATURES_URL", "MLCHAOS_MODEL_DIR")}
    env["MLCHAOS_HOME"] = str(tmp_path / "home")
    args = ["suite", str(EXPERIMENTS_PATH), "--orchestrator", "plain", "--sweep", "nulls-amount"]
    args += ["--intensities", "0.001,0.2", "--reports-dir", str(tmp_path / "reports")]
    out = run(args, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "plain: minimum intensity detected for nulls-amount: 0.001" in out.stdout
    journal = next((tmp_path / "reports").glob("*/journal.json")).read_text()
    assert "nulls-amount@0.2" in journal and "nulls-amount@0.001" in journal
