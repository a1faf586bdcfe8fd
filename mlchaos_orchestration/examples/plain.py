"""The example pipeline as a plain Python :class:`~mlchaos_orchestration.core.pipeline.Pipeline`
(what ``mlchaos run`` and the demo drive without an orchestrator)."""

from __future__ import annotations

from typing import Any

from mlchaos_orchestration.core.pipeline import Pipeline, Step
from mlchaos_orchestration.examples import GATE_SUITE_PATH
from mlchaos_orchestration.examples.locations import ExampleConfig


def build_pipeline(config: ExampleConfig | None = None, *, suite: Any = None) -> Pipeline:
    """events -> features -> features table -> GX gate -> train -> register (MLflow, with the
    promotion gate) -> serve_batch (loads the champion by alias); after the gate,
    materialize_online_features fills the Redis online store if one is configured.

    ``suite`` replaces the example gate suite (a path or a SuiteSpec), e.g. to check that an
    expectation suggested by the mutation report kills its mutant.
    """
    cfg = config or ExampleConfig.from_env()
    gate_suite = suite if suite is not None else GATE_SUITE_PATH

    def ingest() -> Any:
        from mlchaos_orchestration.examples.steps import ingest as read

        return read(cfg.raw_root, cfg.ds, retry_delay_s=0.05)

    def build_features(ingest: Any) -> Any:
        from mlchaos_orchestration.examples.steps import build_features as build

        return build(ingest)

    def store_features(build_features: Any) -> Any:
        from mlchaos_orchestration.examples.steps import read_features, write_features

        write_features(build_features, cfg.features_url, ds=cfg.ds)
        return read_features(cfg.features_url, ds=cfg.ds)

    def validate_features(store_features: Any) -> Any:
        from mlchaos_orchestration.gates.gx import assert_gate

        assert_gate(store_features, gate_suite)
        return store_features

    def train_model(validate_features: Any) -> Any:
        from mlchaos_orchestration.examples.steps import train

        return train(validate_features)

    def register_model(train_model: Any, validate_features: Any) -> Any:
        from mlchaos_orchestration.examples.model_registry import register_step

        model, metrics = train_model
        return register_step(model, metrics, validate_features, cfg, ds=cfg.ds)

    def materialize_online_features(validate_features: Any) -> Any:
        from mlchaos_orchestration.gameday.materialize import materialize_step

        return materialize_step(validate_features, cfg.online_store_url)

    def serve_batch(register_model: Any, validate_features: Any) -> Any:
        from mlchaos_orchestration.examples.model_registry import serve_step

        return serve_step(validate_features, cfg)

    return Pipeline(
        name="feature_pipeline",
        steps=[
            Step("ingest", ingest),
            Step("build_features", build_features, ("ingest",)),
            Step("store_features", store_features, ("build_features",)),
            Step("validate_features", validate_features, ("store_features",)),
            Step("train_model", train_model, ("validate_features",)),
            Step("register_model", register_model, ("train_model", "validate_features")),
            Step("serve_batch", serve_batch, ("register_model", "validate_features")),
            Step(
                "materialize_online_features",
                materialize_online_features,
                ("validate_features",),
            ),
        ],
        gate="validate_features",
        consumer="train_model",
        params={"profile": PROFILE_HINTS | {"ds": cfg.ds}},
    )


#: What the mutation report needs to know about the example data.
PROFILE_HINTS = {
    "key": "event_id",
    "label": "is_fraud",
    "timestamp_column": "event_ts",
    "reference": "${MLCHAOS_RAW_ROOT}",  # clean labelled data for the label-integrity check
}
