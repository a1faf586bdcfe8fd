"""The Params form of the ``mlchaos_experiment`` DAG and its translation into an experiment.

The form is validated by Airflow's JSON schema (unknown fault, fraction outside [0, 1], missing
target DAG are refused before anything runs); :func:`params_to_experiment` then builds the
experiment mapping, which :func:`form_experiment` validates once more in the first task and
bounds by the deployment's safety: the form is run-time input, it can only narrow (a target
outside the deployment allowlist is refused there, in one line, before anything is touched; the
target DAG bounds the experiment once more by its own deployment).
"""

from __future__ import annotations

from typing import Any

#: fault -> label shown in the form (values_display)
FAULT_LABELS: dict[str, str] = {
    "upstream_outage": "Upstream outage (partition missing / empty / truncated)",
    "stale_partition_replay": "Stale partition replay (yesterday served as today)",
    "connector_failure": "Connector failure (a share of DB calls fail)",
    "nulls": "Nulls in columns",
    "out_of_range": "Out-of-range values in columns",
    "unseen_category": "Unseen category in columns",
    "drop_column": "Drop columns",
    "duplicate_rows": "Duplicate rows",
    "drift": "Distribution drift in columns",
    "label_shuffle": "Shuffle labels",
}
OUTAGE_MODES = ["missing", "empty", "truncated"]
#: where faults act when the form leaves ``target`` empty (the example pipeline's storage)
DEFAULT_RAW = "${MLCHAOS_RAW_ROOT}"
DEFAULT_DB = "${MLCHAOS_FEATURES_URL}"
_COLUMN_FAULTS = frozenset({"nulls", "out_of_range", "unseen_category", "drop_column", "drift"})


def experiment_params() -> dict[str, Any]:
    """The DAG's ``params`` (``airflow.sdk.Param`` objects, JSON-schema validated)."""
    from airflow.sdk import Param

    return {
        "target_dag": Param(
            type="string",
            minLength=1,
            pattern=r"^[A-Za-z0-9_.\-]+$",
            title="Target DAG",
            description="DAG id to run the experiment against (it must carry add_chaos).",
        ),
        "fault": Param(
            "nulls",
            type="string",
            enum=list(FAULT_LABELS),
            values_display=FAULT_LABELS,
            title="Fault",
        ),
        "fraction": Param(
            0.2,
            type="number",
            minimum=0,
            maximum=1,
            title="Intensity",
            description="Share of rows (data faults) or of calls (connector).",
        ),
        "columns": Param(
            ["amount"],
            type="array",
            items={"type": "string", "minLength": 1},
            title="Columns",
            description="Columns a data fault changes.",
        ),
        "mode": Param("missing", type="string", enum=OUTAGE_MODES, title="Outage mode"),
        "target": Param(
            None,
            type=["null", "string"],
            title="Where the fault acts",
            description="Path, s3:// URI or SQLAlchemy URL; empty: the example "
            "pipeline's raw events / features database.",
        ),
        "seed": Param(0, type="integer", minimum=0, maximum=2**32 - 1, title="Seed"),
        "dry_run": Param(
            False, type="boolean", title="Dry run", description="Only report what would be touched."
        ),
    }


def export_example_defaults() -> None:
    """Put the example pipeline's default locations in ``os.environ`` where unset, so the
    ``${MLCHAOS_RAW_ROOT}`` / ``${MLCHAOS_FEATURES_URL}`` defaults above resolve."""
    import os

    from mlchaos_orchestration.examples.locations import ExampleConfig

    for key, value in ExampleConfig.from_env().export().items():
        if key != "MLCHAOS_DS":
            os.environ.setdefault(key, value)


def form_experiment(params: dict[str, Any]) -> dict[str, Any]:
    """The validated experiment of a form; raises SpecError / SafetyError (one line) when it is
    invalid or asks for more than the deployment allows (environment settings and the
    ``defaults.safety`` of ``$MLCHAOS_EXPERIMENTS_FILE``): the form's own ``target`` must lie
    inside that allowlist. The experiment grants itself nothing (no ``safety``)."""
    from mlchaos_orchestration.airflow.runtime import deployment_safety
    from mlchaos_orchestration.core.experiment import parse_experiment
    from mlchaos_orchestration.core.safety import SafetySpec, bound_runtime_safety

    experiment = params_to_experiment(params)
    exp = parse_experiment(experiment)
    deployment, where = deployment_safety({}), f"trigger form: {exp.name}"
    bound_runtime_safety(exp.safety, deployment=deployment, where=where)
    target = str(params.get("target") or "")
    if target:
        entry = _allow_entry(str(params["fault"]), target)
        bound_runtime_safety(
            SafetySpec(allowed_targets=[entry]), deployment=deployment, where=where
        )
    return experiment


def _allow_entry(fault: str, target: str) -> str:
    """The allowlist entry a form's own ``target`` asks for (nothing wider). ``${VAR}`` are
    expanded from the environment first, as in experiment files."""
    import os

    target = os.path.expandvars(target)
    if fault == "connector_failure" or (
        "://" in target and not target.startswith(("s3://", "file://"))
    ):
        return f"{target}#*"
    head = target.split("{", 1)[0]
    return head if head == target else os.path.dirname(head.rstrip("/")) or head


def params_to_experiment(params: dict[str, Any]) -> dict[str, Any]:
    """The experiment mapping for validated form values (checked by ``parse_experiment``)."""
    fault = str(params["fault"])
    target = str(params.get("target") or "")
    fraction = float(params.get("fraction", 0.2))
    entry: dict[str, Any] = {"fault": fault}
    if fault == "upstream_outage":
        entry.update(target=target or f"{DEFAULT_RAW}/ds={{ds}}", mode=params.get("mode"))
    elif fault == "stale_partition_replay":
        entry.update(template=target or f"{DEFAULT_RAW}/ds={{ds}}/", lag_days=1)
    elif fault == "connector_failure":
        entry.update(url=target or DEFAULT_DB, rate=fraction, on=["execute"])
    else:
        entry["fraction"] = fraction
        if fault in _COLUMN_FAULTS:
            entry["columns"] = list(params.get("columns") or [])
        if fault == "label_shuffle":
            entry["label"] = "is_fraud"
        if target:
            entry["target"] = target
    exp: dict[str, Any] = {
        "name": f"ui-{fault}",
        "seed": int(params.get("seed", 0)),
        "faults": [entry],
    }
    return exp  # no safety: the deployment's allowlist applies (the form grants nothing)
