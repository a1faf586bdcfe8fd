"""The bundled demo: seeded sample data, a local webhook receiver standing in for Slack, and the
example experiment matrix run against the example pipeline on embedded defaults."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlchaos_orchestration.examples.locations import ExampleConfig, prepare

EXPERIMENTS_PATH = Path(__file__).resolve().parents[1] / "examples" / "experiments.yaml"


def demo_experiments(folder: Path) -> tuple[Path, list[str]]:
    """The example matrix the demo runs, and the experiments left out: with MLflow installed the
    whole file; without it a copy (in ``folder``) without the model-registry experiments, whose
    faults need an MLflow registry (the example registers to its file registry then)."""
    import shutil

    import yaml

    from mlchaos_orchestration.examples.model_registry import mlflow_available

    if mlflow_available():
        return EXPERIMENTS_PATH, []
    data = yaml.safe_load(EXPERIMENTS_PATH.read_text())

    def needs_mlflow(exp: dict) -> bool:
        return any(str(f.get("target", "")).startswith("mlflow://") for f in exp.get("faults", []))

    skipped = [e["name"] for e in data["experiments"] if needs_mlflow(e)]
    data["experiments"] = [e for e in data["experiments"] if not needs_mlflow(e)]
    gate_suite = data.get("defaults", {}).get("gate_suite")
    if gate_suite:  # relative to the file
        shutil.copyfile(EXPERIMENTS_PATH.with_name(gate_suite), folder / gate_suite)
    path = folder / EXPERIMENTS_PATH.name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, skipped


@contextmanager
def example_variables(
    config: ExampleConfig | None = None, extra: dict[str, str] | None = None
) -> Iterator[ExampleConfig]:
    """The example's ``${VAR}``s (MLCHAOS_RAW_ROOT, MLCHAOS_FEATURES_URL, ...) set in this
    process for the block, then restored."""
    cfg = config or ExampleConfig.from_env()
    values = {**cfg.export(), **(extra or {})}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield cfg
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def demo_environment(
    config: ExampleConfig | None = None, *, sample_data: bool = True
) -> Iterator[ExampleConfig]:
    """Prepare sample data (unless ``sample_data`` is false: the suite's workers write their
    own copies), export the example config and start a local alert receiver.

    The receiver is a real HTTP server on 127.0.0.1; alerts counted by the verdicts are the
    deliveries it acknowledged.
    """
    from mlchaos_orchestration.suite.receiver import WebhookReceiver

    cfg = config or ExampleConfig.from_env()
    if sample_data:
        prepare(cfg)
    with WebhookReceiver() as receiver:
        with example_variables(cfg, {"MLCHAOS_ALERT_WEBHOOK_URL": receiver.url}):
            yield cfg


def run_plain_demo(on_result: Callable[[str, dict], None] | None = None) -> list[dict]:
    """Run every example experiment with the plain Python runner; return the verdicts."""
    from mlchaos_orchestration.core.experiment import load_experiments
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.core.runner import run_experiment
    from mlchaos_orchestration.examples.plain import build_pipeline

    results = []
    with demo_environment() as cfg:
        spec = load_experiments(EXPERIMENTS_PATH)
        pipeline = build_pipeline(cfg)
        ledger = Ledger()
        for exp in spec.experiments:
            result = run_experiment(pipeline, exp, ledger=ledger, ds=cfg.ds)
            row = {
                "experiment": exp.name,
                "expect": exp.expect,
                "run_id": result.run_id,
                **result.verdict,
            }
            results.append(row)
            if on_result is not None:
                on_result(exp.name, row)
    return results
