"""The example's serving side as a plain pipeline: today's requests -> serving contract check (the
gate) -> score with ``models:/fraud_model@champion`` (the consumer). Registry experiments
(``registry_experiments.yaml``) run against it; :func:`~.model_registry.prepare_registry` fills the
registry first."""

from __future__ import annotations

from typing import Any

from mlchaos_orchestration.core.pipeline import Pipeline, Step
from mlchaos_orchestration.examples.locations import ExampleConfig

REQUESTS = 200


def build_pipeline(config: ExampleConfig | None = None) -> Pipeline:
    """requests -> check_model (gate) -> score (consumer)."""
    cfg = config or ExampleConfig.from_env()

    def requests() -> Any:
        from mlchaos_orchestration.examples.steps import build_features, ingest

        return build_features(ingest(cfg.raw_root, cfg.ds, retries=0)).head(REQUESTS)

    def check_model(requests: Any) -> Any:
        from mlchaos_orchestration.examples import model_registry as registry
        from mlchaos_orchestration.gates.promotion import check_serving

        check_serving(
            registry.MODEL,
            registry.ALIAS,
            registry.contract(),
            tracking_uri=registry.tracking_uri(),
        )
        return requests

    def score(check_model: Any) -> Any:
        from mlchaos_orchestration.examples.model_registry import serve

        return serve(check_model)

    return Pipeline(
        name="serving_pipeline",
        steps=[
            Step("requests", requests),
            Step("check_model", check_model, ("requests",)),
            Step("score", score, ("check_model",)),
        ],
        gate="check_model",
        consumer="score",
    )
