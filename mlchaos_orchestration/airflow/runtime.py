"""Airflow-free core of the adapter: which experiment a run asks for, and its ledger identity.

A run asks for chaos through ``dag_run.conf["mlchaos"]``:

* ``{"experiment": "<name>", "experiments_file": "<path>"}`` - an experiment of a YAML file
  (``experiments_file`` defaults to ``$MLCHAOS_EXPERIMENTS_FILE`` or the DAG's own default file);
* ``{"experiment": {...}}`` - an inline experiment mapping (validated by ``parse_experiment``);
* ``{}`` / ``{"enabled": true}`` - the DAG's default experiment (from ``add_chaos(fault=...)``).

``"dry_run": true`` makes injection only log what it would touch. Without the key a run is
*dormant*: chaos tasks touch nothing.

Run-time input only narrows: an experiment that came from the run conf (an inline mapping, or any
experiment of an ``experiments_file`` named in the conf) gets its safety bounded by the
deployment (``add_chaos(safety=...)``, the ``defaults.safety`` of the DAG's own experiments file
and of ``$MLCHAOS_EXPERIMENTS_FILE``, the environment settings) with
:func:`~mlchaos_orchestration.core.safety.bound_runtime_safety`; a request that widens anything
is refused in one line before anything is touched. With ``task_ids``, gate / consumer / ``at:``
names are checked against the DAG's tasks.
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
#: task group of the inject task (before the user's roots / ``before``)
SETUP_GROUP = "mlchaos_setup"
#: task group of restore + verdict (teardowns after every leaf)
TEARDOWN_GROUP = "mlchaos_teardown"
#: the ungrouped data-fault inject task (before the gate); others are ``<DATA_TASK>__<task>``
DATA_TASK = "mlchaos_inject_data"
CHAOS_TASK_IDS = (f"{SETUP_GROUP}.", f"{TEARDOWN_GROUP}.", DATA_TASK)


def data_task_id(task_id: str) -> str:
    """Id of the inject task placed just before ``task_id`` (for data faults ``at:`` it)."""
    return f"{DATA_TASK}__{task_id.replace('.', '__')}"


def is_chaos_task_id(task_id: str) -> bool:
    """Whether ``task_id`` is one of the tasks ``add_chaos`` adds."""
    return task_id.startswith(CHAOS_TASK_IDS)


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
    """The experiment a request names, falling back to the DAG's defaults (from add_chaos).

    An experiment taken from the run conf (inline, or from a file the conf names) has its safety
    bounded by the deployment's (:func:`deployment_safety`); widening raises SafetyError."""
    from mlchaos_orchestration.core.experiment import load_experiments, parse_experiment

    defaults = defaults or {}
    choice = request.get("experiment", defaults.get("experiment"))
    # run-time content: an inline mapping from the conf, or anything read from a conf-named file
    runtime = ("experiment" in request and isinstance(choice, dict)) or bool(
        request.get("experiments_file")
    )
    if isinstance(choice, dict):
        exp = parse_experiment(choice, f"dag_run.conf.{CONF_KEY}.experiment")
    elif isinstance(choice, str) and choice:
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
        exp = load_experiments(str(path)).get(choice)
    else:
        raise SpecError([f"dag_run.conf.{CONF_KEY}: name an experiment (no default on this DAG)"])
    if runtime:
        exp = bound_experiment(exp, defaults, where=f"dag_run.conf.{CONF_KEY}")
    return exp


def bound_experiment(exp: Experiment, defaults: dict[str, Any], *, where: str) -> Experiment:
    """``exp`` with its safety bounded by the deployment (raises SafetyError when it widens)."""
    from mlchaos_orchestration.core.safety import bound_runtime_safety

    bounded = bound_runtime_safety(
        exp.safety, deployment=deployment_safety(defaults), where=f"{where}: {exp.name}"
    )
    return exp.model_copy(update={"safety": bounded})


def deployment_safety(defaults: dict[str, Any] | None = None) -> list[Any]:
    """The trusted safety specs of a DAG: ``add_chaos(safety=...)``, the safety of a default
    experiment written in DAG code, and ``defaults.safety`` of the DAG's experiments file and of
    ``$MLCHAOS_EXPERIMENTS_FILE`` (the environment settings are added by the bound itself)."""
    defaults = defaults or {}
    specs: list[Any] = []
    if isinstance(defaults.get("safety"), dict):
        specs.append(_safety(defaults["safety"]))
    default_exp = defaults.get("experiment")
    if isinstance(default_exp, dict) and isinstance(default_exp.get("safety"), dict):
        specs.append(_safety(default_exp["safety"]))
    for path in (defaults.get("experiments_file"), os.environ.get(FILE_ENV)):
        spec = file_default_safety(path) if path else None
        if spec is not None:
            specs.append(spec)
    return specs


def _safety(safety: dict[str, Any]) -> Any:
    """A validated SafetySpec (``${VAR}`` in allowed_targets expanded, as in experiment files)."""
    from mlchaos_orchestration.core.experiment import parse_experiment

    return parse_experiment({"name": "deployment", "control": True, "safety": safety}).safety


#: parsed ``defaults`` of experiments files, by their text
_FILE_DEFAULTS: dict[str, Any] = {}


def file_default_safety(path: str) -> Any:
    """``defaults.safety`` of an experiments file (``${VAR}`` expanded), or None."""
    from pathlib import Path

    import yaml

    file = Path(path)
    if not file.is_file():
        return None
    text = file.read_text(encoding="utf-8")  # every task of every run asks: parse it once
    if text not in _FILE_DEFAULTS:
        raw = yaml.safe_load(text) or {}
        if len(_FILE_DEFAULTS) >= 16:  # bounded: edited files leave stale versions behind
            _FILE_DEFAULTS.clear()
        _FILE_DEFAULTS[text] = raw.get("defaults") if isinstance(raw, dict) else None
    defaults = _FILE_DEFAULTS[text]
    safety = defaults.get("safety") if isinstance(defaults, dict) else None
    return _safety(safety) if isinstance(safety, dict) else None


def check_names(
    exp: Experiment,
    gate: str | None,
    consumer: str | None,
    task_ids: Any,
    pipeline: str,
    defaults: dict[str, Any] | None = None,
) -> None:
    """Refuse (one line, SpecError) a gate / consumer / ``at:`` that is not a task of the DAG, or
    an ``at:`` that has no inject point (an inject task just before it)."""
    known = set(task_ids)
    dag = f"DAG {pipeline!r}" if pipeline else "the DAG"
    for role, name in (("gate", gate), ("consumer", consumer)):
        if name and name not in known:
            raise SpecError([f"experiment {exp.name!r}: {role} {name!r} is not a task of {dag}"])
    defaults = defaults or {}
    if "inject_at" not in defaults:
        return
    points = set(defaults.get("inject_at") or [])
    for entry in exp.data_faults:
        if not entry.at or entry.at in points or entry.at == defaults.get("before"):
            continue
        if entry.at not in known:
            raise SpecError([f"experiment {exp.name!r}: at {entry.at!r} is not a task of {dag}"])
        if defaults.get("before") is not None or entry.at not in defaults.get("roots", [entry.at]):
            raise SpecError(
                [
                    f"experiment {exp.name!r}: at {entry.at!r} has no inject task in {dag} "
                    f"(inject points: {', '.join(sorted(points)) or 'none'}); name it in the "
                    "DAG's experiments file"
                ]
            )


def inject_point(entry: Any, defaults: dict[str, Any]) -> str | None:
    """The task before which ``entry`` is applied: a data fault's ``at:`` (or the gate) when the
    DAG has an inject task there; None = the setup inject task (before ``before`` / the roots)."""
    if entry.fault.family != "data":
        return None
    point = entry.at or defaults.get("data_default")
    return point if point in (defaults.get("inject_at") or []) else None


def resolve(
    conf: Any,
    run_key: str,
    defaults: dict[str, Any] | None = None,
    pipeline: str = "",
    task_ids: Any = None,
) -> ChaosRun | None:
    """The chaos run of a DAG run, or None when the run is dormant.

    With ``task_ids`` (the DAG's task ids) the run's gate / consumer / ``at:`` are checked."""
    from mlchaos_orchestration.core.control import run_id_for

    request = requested(conf)
    if request is None:
        return None
    defaults = defaults or {}
    exp = resolve_experiment(request, defaults)
    if task_ids is not None:
        check_names(
            exp,
            exp.gate or defaults.get("gate"),
            exp.consumer or defaults.get("consumer"),
            task_ids,
            pipeline,
            defaults,
        )
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
