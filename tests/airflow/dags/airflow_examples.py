"""Two of Airflow's own example DAGs, loaded unmodified from the installed packages, each twice:
the plain DAG keeps its id, the copy is renamed ``<id>_chaos`` and carries add_chaos.

* ``example_bash_operator`` (standard provider: classic BashOperator / EmptyOperator, an
  ``exit 99`` skip, multiple_outputs XComs);
* ``example_short_circuit_operator`` (standard provider: ShortCircuitOperator skips, an
  ``all_done`` join).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from airflow.providers.standard import example_dags

from mlchaos_orchestration.airflow import add_chaos

_ROOT = os.path.dirname(example_dags.__file__)


def _load(module: str, alias: str) -> Any:
    """A fresh execution of the example's own file (so each copy has its own DAG object)."""
    spec = importlib.util.spec_from_file_location(alias, os.path.join(_ROOT, f"{module}.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.dag


bash_plain = _load("example_bash_operator", "_mlchaos_ex_bash_plain")
bash_chaos = _load("example_bash_operator", "_mlchaos_ex_bash_chaos")
bash_chaos.dag_id = "example_bash_operator_chaos"
add_chaos(
    bash_chaos,
    fault="upstream_outage",
    target=os.environ.get("EV_DIR", "/nonexistent/ev") + "/source.csv",
    mode="missing",
    consumer="run_this_last",
)

short_plain = _load("example_short_circuit_operator", "_mlchaos_ex_short_plain")
short_chaos = _load("example_short_circuit_operator", "_mlchaos_ex_short_chaos")
short_chaos.dag_id = "example_short_circuit_operator_chaos"
add_chaos(
    short_chaos,
    fault="upstream_outage",
    target=os.environ.get("EV_DIR", "/nonexistent/ev") + "/source.csv",
    mode="missing",
)
