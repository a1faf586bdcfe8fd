"""The example's serving side, prepared from the example pipeline: features built from the
seeded events, a model trained on them, the online features materialized into Redis and the
fallback defaults written beside the model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlchaos_orchestration.gameday.featurestore import ONLINE_FEATURES, FeatureStore

DAYS = ("2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20")
ROWS_PER_DAY = 2000
SEED = 42


@dataclass
class ServingAssets:
    """What the prediction API needs: the model file, the fallback defaults and the user ids
    whose features are in the store."""

    model_path: Path
    defaults_path: Path
    user_ids: list[int]


def example_features() -> Any:
    """The example pipeline's features for the demo days (seeded, same bytes every time)."""
    import pandas as pd

    from mlchaos_orchestration.examples.sample_data import generate_events
    from mlchaos_orchestration.examples.steps import build_features

    events = pd.concat([generate_events(ds, ROWS_PER_DAY, SEED) for ds in DAYS], ignore_index=True)
    return build_features(events)


def fallback_defaults(features: Any) -> dict[str, Any]:
    """Medians of numeric online features, most frequent value of categorical ones."""
    out: dict[str, Any] = {}
    for name in ONLINE_FEATURES:
        col = features[name]
        if col.dtype.kind in "iuf":
            out[name] = float(col.median())
        else:
            out[name] = str(col.mode().iloc[0])
    return out


def prepare_serving(redis_url: str, workdir: Path) -> ServingAssets:
    """Train the example model, write it and the defaults under ``workdir``, and materialize
    each user's latest online features into Redis."""
    import joblib

    from mlchaos_orchestration.examples.steps import train

    workdir.mkdir(parents=True, exist_ok=True)
    features = example_features()
    model, _metrics = train(features)
    model_path = workdir / "model.joblib"
    joblib.dump(model, model_path)
    defaults_path = workdir / "fallback_features.json"
    defaults_path.write_text(json.dumps(fallback_defaults(features), indent=2))
    users = materialize_online(features, redis_url)
    return ServingAssets(model_path, defaults_path, users)


def materialize_online(features: Any, redis_url: str) -> list[int]:
    """The example pipeline's materialize step: each user's latest online features (by
    ``event_ts``) written to the Redis feature store; returns the user ids written."""
    latest = features.sort_values("event_ts").drop_duplicates("user_id", keep="last")
    store = FeatureStore(redis_url, timeout_s=5.0)
    try:
        store.materialize(latest[["user_id", *ONLINE_FEATURES]].to_dict("records"))
    finally:
        store.close()
    return sorted(int(u) for u in latest["user_id"])


def materialize_step(features: Any, redis_url: str) -> dict[str, Any]:
    """What the example DAG / assets / plain pipeline run after the gate: materialize into the
    online store at ``redis_url`` (``MLCHAOS_ONLINE_STORE_URL``), or say why nothing was written."""
    if not redis_url:
        return {"users": 0, "skipped": "no online store (MLCHAOS_ONLINE_STORE_URL is not set)"}
    return {"users": len(materialize_online(features, redis_url)), "store": _redacted(redis_url)}


def _redacted(url: str) -> str:
    """The store URL without a password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def main(argv: list[str] | None = None) -> int:
    """``python -m mlchaos_orchestration.gameday.materialize REDIS_URL OUT_DIR``: prepare the
    serving side (the staging stack's one-shot ``serving-init``)."""
    import sys

    redis_url, out = (argv if argv is not None else sys.argv[1:])[:2]
    assets = prepare_serving(redis_url, Path(out))
    print(f"serving assets in {out}: {len(assets.user_ids)} users materialized")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
