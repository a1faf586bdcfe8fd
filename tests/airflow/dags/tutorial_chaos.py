"""Airflow's own ``tutorial_taskflow_api`` example, unmodified, plus copies carrying add_chaos.

The plain DAG keeps its id; the chaos copy is built by calling the same ``@dag`` function again
and renamed ``tutorial_taskflow_api_chaos`` before ``add_chaos`` adds the mlchaos group.
"""

from __future__ import annotations

import os

from airflow.example_dags.tutorial_taskflow_api import tutorial_taskflow_api as build

from mlchaos_orchestration.airflow import add_chaos

plain = build()
chaos = build()
chaos.dag_id = "tutorial_taskflow_api_chaos"
# data faults act on a file standing in for the orders feed (the DAG itself reads none)
add_chaos(
    chaos,
    before="extract",
    gate="transform",
    consumer="load",
    fault="nulls",
    columns=["amount"],
    fraction=0.5,
    target=os.environ.get("MLCHAOS_TUTORIAL_FEED", "/nonexistent/orders.csv"),
)

# a third copy whose default experiment faults the XCom extract passes to transform, as transform
# pulls it (mlchaos_orchestration.airflow.xcom_backend; tests/airflow/test_xcom_backend.py)
xcom_chaos = build()
xcom_chaos.dag_id = "tutorial_taskflow_api_xcom"
add_chaos(
    xcom_chaos,
    consumer="transform",
    experiment={
        "name": "xcom-out-of-range",
        "safety": {"allowed_targets": ["xcom://extract"]},  # XCom targets need the allowlist too
        "faults": [
            {
                "fault": "out_of_range",
                "columns": ["value"],
                "fraction": 0.34,
                "target": "xcom://extract",
                "at": "transform",
            }
        ],
    },
)
