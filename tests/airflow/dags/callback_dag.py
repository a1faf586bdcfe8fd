"""A small user DAG with its own failure callback, made chaos-ready by add_chaos(alert=...)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from airflow.sdk import DAG, task

from mlchaos_orchestration.airflow import MlchaosWebhookNotifier, add_chaos


def user_callback(context: dict) -> None:
    """The user's own alerting: appends the failed task id to a file."""
    marker = Path(os.environ["CALLBACK_MARKER"])
    with marker.open("a") as handle:
        handle.write(context["ti"].task_id + "\n")


with DAG(
    "callback_dag",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    default_args={"on_failure_callback": user_callback},
) as dag:

    @task
    def read_feed() -> int:
        return len(Path(os.environ["CALLBACK_FEED"]).read_text().splitlines())

    @task
    def train(rows: int) -> int:
        return rows

    train(read_feed())

add_chaos(
    dag,
    fault="upstream_outage",
    target="${CALLBACK_FEED}",
    mode="missing",
    before="read_feed",
    consumer="train",
    alert=MlchaosWebhookNotifier(),
)
