"""Helpers shared by the Dagster adapter tests (not fixtures)."""

from __future__ import annotations

import hashlib
from pathlib import Path

DS = "2026-11-20"


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path -> digest)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def evaluate_alert_sensor(defs: object, result: object, instance: object) -> None:
    """What the daemon does for a failed run: evaluate our failure sensor for it once."""
    import dagster as dg

    sensor = defs.resolve_sensor_def("mlchaos_alert_on_failure")  # type: ignore[attr-defined]
    sensor(
        dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=result.get_run_failure_event(),  # type: ignore[attr-defined]
            dagster_instance=instance,
            dagster_run=result.dagster_run,  # type: ignore[attr-defined]
        ).for_run_failure()
    )
