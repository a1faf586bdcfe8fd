"""Example production-like pipeline (events -> features -> gate -> train) shared by the Airflow
example DAG and the Dagster example Definitions. Orchestrator-free; heavy imports are lazy.
"""

from __future__ import annotations

from pathlib import Path

GATE_SUITE_PATH = Path(__file__).with_name("gate_suite.yaml")
"""The example gate's GX suite spec (deliberately incomplete; see the comments in the file)."""
