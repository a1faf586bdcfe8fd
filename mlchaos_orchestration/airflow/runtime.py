"""Airflow-free core of the adapter: which experiment a run asks for, and its ledger identity.

A run asks for chaos through ``dag_run.conf["mlchaos"]``:

* ``{"experiment": "<name>", "experiments_file": "<path>"}`` - an experiment of a YAML file
  (``experiments_file`` defaults to ``$MLCHAOS_EXPERIMENTS_FILE`` or the DAG's own default file);
* ``{"experiment": {...}}`` - an inline experiment mapping (validated by ``parse_experiment``);
* ``{}`` / ``{"enabled": true}`` - the DAG's default experiment (from ``add_chaos(fault=...)``).

``"dry_run": true`` makes injection only log what it would touch. Without the key a run is
*dormant*: chaos tasks touch nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlchaos_orchestration.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from mlchaos_orchestration.core.experiment import Experiment

#: verdicts that make a verdict task fail (red in the UI) unless configured otherwise
FAIL_ON = ("silent", "unalerted", "false_alarm", "error")
CONF_KEY = "mlchaos"
FILE_ENV = "MLCHAOS_EXPERIMENTS_FILE"
CHAOS_GROUP = "mlchaos"


@dataclass(frozen=True)
class ChaosRun:
    """A chaos run resolved from a DAG run: the experiment, its ledger run id, gate, consumer."""

    experiment: Experiment
    run_key: str
    run_id: str
    gate: str | None
    consumer: str | None
    dry_run: bool = False
    pipeline: str = ""
    suite_id: str | None = None

    @property
    def seed(self) -> int:
        from mlchaos_orchestration.core.control import seed_for

        return seed_for(self.experiment.seed, self.run_key)


def requested(conf: Any) -> dict[str, Any] | None:
    """The ``mlchaos`` request of a run's conf, or None for a dormant run."""
    if not isinstance(conf, dict) or CONF_KEY not in conf:
        return None
    raw = conf[CONF_KEY]
    if raw is None or raw is False:
        return None
    if raw is True:
        return {}
    if not isinstance(raw, dict):
        raise SpecError([f"dag_run.conf.{CONF_KEY}: must be a mapping"])
    if raw.get("enabled", True) is False:
        return None
    return raw


def resolve_experiment(
    request: dict[str, Any], defaults: dict[str, Any] | None = None
) -> Experiment:
    """The experiment a request names, falling back to the DAG's defaults (from add_chaos)."""
    from mlchaos_orchestration.core.experiment import load_experiments, parse_experiment

    defaults = defaults or {}
    choice = request.get("experiment", defaults.get("experiment"))
    if isinstance(choice, dict):
        return parse_experiment(choice, f"dag_run.conf.{CONF_KEY}.experiment")
    if isinstance(choice, str) and choice:
        path = (
            request.get("experiments_file")
            or defaults.get("experiments_file")
            or os.environ.get(FILE_ENV)
        )
        if not path:
            raise SpecError(
                [
                    f"experiment {choice!r}: no experiments_file given "
                    f"(conf.{CONF_KEY}.experiments_file or ${FILE_ENV})"
                ]
            )
        return load_experiments(str(path)).get(choice)
    raise SpecError([f"dag_run.conf.{CONF_KEY}: name an experiment (no default on this DAG)"])


def resolve(
    conf: Any, run_key: str, defaults: dict[str, Any] | None = None, pipeline: str = ""
) -> ChaosRun | None:
    """The chaos run of a DAG run, or None when the run is dormant."""
    from mlchaos_orchestration.core.control import run_id_for

    request = requested(conf)
    if request is None:
        return None
    defaults = defaults or {}
    exp = resolve_experiment(request, defaults)
    return ChaosRun(
        experiment=exp,
        run_key=run_key,
        run_id=run_id_for(run_key, exp.name),
        gate=exp.gate or defaults.get("gate"),
        consumer=exp.consumer or defaults.get("consumer"),
        dry_run=bool(request.get("dry_run", False)),
        pipeline=pipeline,
        suite_id=str(request["suite_id"]) if request.get("suite_id") else None,
    )


def default_experiment(
    name: str,
    fault: str,
    params: dict[str, Any],
    *,
    gate: str | None,
    consumer: str | None,
    safety: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The experiment mapping built from ``add_chaos(fault=..., **params)`` (a parse-time value)."""
    exp: dict[str, Any] = {"name": name, "faults": [{"fault": fault, **params}]}
    for key, value in (("gate", gate), ("consumer", consumer), ("safety", safety)):
        if value:
            exp[key] = value
    return exp
