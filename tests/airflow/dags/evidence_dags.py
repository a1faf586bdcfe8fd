"""User-style DAGs for the verdict-evidence matrix (tests/airflow/test_evidence_matrix.py).

Everything lives under ``$EV_DIR`` (set by the test; a harmless default lets the DAG folder parse
anywhere). Alerts go through the users' own channels: the Slack provider's
``SlackWebhookNotifier`` (connections ``ev_slack`` / ``ev_slack_bad``) and the SMTP provider's
``SmtpNotifier`` (connection ``ev_smtp``).

* ``ev_orders`` / ``ev_orders_500`` / ``ev_orders_typo``: ``produce`` rewrites ``orders.csv`` from
  ``source.csv`` on every run -> ``check_orders`` (GX gate reading orders.csv; the ``_typo``
  variant's suite misspells an expectation) -> ``train`` (reads orders.csv).
* ``ev_mail``: classic operators with ``default_args`` retries: ``produce`` (BashOperator) ->
  ``check_orders`` (PythonOperator: a transient ConnectionResetError on its first attempt of
  each run, then ``DataQualityCheckFailed`` on nulls) -> ``train`` (BashOperator).
* ``ev_fail`` / ``ev_fail_chaos``: the same user DAG without / with add_chaos; ``transform``
  fails unless ``$EV_DIR/transform_ok`` exists; a branch skips one path; the DAG-level
  ``on_failure_callback`` / ``on_success_callback`` append to ``dag_callbacks.txt``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.sdk import DAG, task

from mlchaos_orchestration.airflow import add_chaos
from mlchaos_orchestration.airflow.gate import GreatExpectationsGateOperator

EV_DIR = os.environ.get("EV_DIR", "/nonexistent/ev")
EXPERIMENTS = str(Path(__file__).with_name("evidence_experiments.yaml"))
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _suite(typo: bool) -> dict[str, Any]:
    return {
        "name": "orders_gate",
        "expectations": [
            {"type": "ExpectTableRowCountToBeBetween", "kwargs": {"min_value": 1}},
            {
                "type": "ExpectColumnValuesToNotBeNul" if typo else "ExpectColumnValuesToNotBeNull",
                "kwargs": {"column": "amount"},
            },
        ],
    }


def produce_orders() -> int:
    """The producer: rewrites orders.csv from the source on every run."""
    text = Path(EV_DIR, "source.csv").read_text()
    Path(EV_DIR, "orders.csv").write_text(text)
    return len(text.splitlines()) - 1


def orders_dag(dag_id: str, conn_id: str, typo: bool = False) -> DAG:
    with DAG(
        dag_id,
        schedule=None,
        start_date=START,
        default_args={
            "on_failure_callback": SlackWebhookNotifier(
                slack_webhook_conn_id=conn_id, text="{{ ti.task_id }} failed in {{ dag.dag_id }}"
            )
        },
    ) as dag:
        produce = PythonOperator(task_id="produce", python_callable=produce_orders)
        gate = GreatExpectationsGateOperator(
            task_id="check_orders", suite=_suite(typo), path=f"{EV_DIR}/orders.csv"
        )

        @task
        def train() -> int:
            import pandas as pd

            return int(pd.read_csv(Path(EV_DIR, "orders.csv"))["amount"].notna().sum())

        produce >> gate >> train()
    add_chaos(dag, experiments_file=EXPERIMENTS, before="produce", consumer="train")
    return dag


ev_orders = orders_dag("ev_orders", "ev_slack")
ev_orders_500 = orders_dag("ev_orders_500", "ev_slack_bad")
ev_orders_typo = orders_dag("ev_orders_typo", "ev_slack", typo=True)


class DataQualityCheckFailed(Exception):
    """A user's own check exception (a detection by its name)."""


def check_orders_flaky(**context: Any) -> int:
    """A hand-written gate: its connection resets on the first attempt of every run."""
    import pandas as pd

    marker = Path(EV_DIR, f"attempted_{context['run_id'].replace(':', '_')}")
    if not marker.exists():
        marker.write_text("1")
        raise ConnectionResetError("connection reset by peer (transient)")
    nulls = int(pd.read_csv(Path(EV_DIR, "orders.csv"))["amount"].isna().sum())
    if nulls:
        raise DataQualityCheckFailed(f"{nulls} null amounts")
    return nulls


with DAG(
    "ev_mail",
    schedule=None,
    start_date=START,
    default_args={
        "retries": 1,
        "retry_delay": dt.timedelta(seconds=1),
        "on_failure_callback": SmtpNotifier(
            to="oncall@example.org",
            from_email="airflow@example.org",
            subject="{{ ti.task_id }} failed",
            html_content="{{ dag.dag_id }}: {{ ti.task_id }} failed",
            smtp_conn_id="ev_smtp",
        ),
    },
) as ev_mail:
    (
        BashOperator(task_id="produce", bash_command=f"cp {EV_DIR}/source.csv {EV_DIR}/orders.csv")
        >> PythonOperator(task_id="check_orders", python_callable=check_orders_flaky)
        >> BashOperator(task_id="train", bash_command=f"wc -l < {EV_DIR}/orders.csv")
    )
add_chaos(ev_mail, experiments_file=EXPERIMENTS, before="produce", consumer="train")


def _dag_callback(kind: str) -> Any:
    def callback(context: dict[str, Any]) -> None:
        ti = context.get("ti") or context.get("task_instance")
        with Path(EV_DIR, "dag_callbacks.txt").open("a") as out:
            out.write(f"{context['dag'].dag_id} {kind} {getattr(ti, 'task_id', None)}\n")

    return callback


def fail_dag(dag_id: str) -> DAG:
    with DAG(
        dag_id,
        schedule=None,
        start_date=START,
        on_failure_callback=_dag_callback("failure"),
        on_success_callback=_dag_callback("success"),
    ) as dag:

        @task
        def extract() -> int:
            return 3

        @task
        def transform(n: int) -> int:
            if not Path(EV_DIR, "transform_ok").exists():
                raise ValueError("bad input")
            return n * 2

        @task
        def load(n: int) -> int:
            return n

        @task
        def side() -> str:
            return "side"

        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "left")

        @task
        def left() -> str:
            return "left"

        @task
        def right() -> str:
            return "right"

        load(transform(extract()))
        side()
        branch >> [left(), right()]
    return dag


ev_fail = fail_dag("ev_fail")
ev_fail_chaos = fail_dag("ev_fail_chaos")
add_chaos(ev_fail_chaos, fault="nulls", columns=["amount"], target=f"{EV_DIR}/orders.csv")
