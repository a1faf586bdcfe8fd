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


#: form sections: which faults use which fields (the form cannot hide fields per fault)
SECTION_INTENSITY = "Intensity - data faults and connector failure"
SECTION_COLUMNS = "Columns - nulls, out-of-range, unseen category, drop column, drift"
SECTION_OUTAGE = "Outage mode - upstream outage only"
#: faults that read each optional field (anything else ignores it)
FIELD_FAULTS: dict[str, frozenset[str]] = {
    "fraction": frozenset(FAULT_LABELS) - {"upstream_outage", "stale_partition_replay"},
    "columns": _COLUMN_FAULTS,
    "mode": frozenset({"upstream_outage"}),
}
#: where ``add_chaos`` notes the DAG ids it equipped (the form's suggestions), under MLCHAOS_HOME
REGISTRY_FILE = "airflow_chaos_dags.json"


def experiment_params(suggested_dags: list[str] | None = None) -> dict[str, Any]:
    """The DAG's ``params`` (``airflow.sdk.Param`` objects, JSON-schema validated on trigger).

    Airflow's form knows no conditional schemas, so the common fields come first (the form's
    open "Run Parameters" section) and each optional field sits in a section named after the
    faults that use it, has a default, and is ignored by the others. The intensity's
    range is in ``allOf`` (checked by the API on trigger, shown in the form's error box): a
    plain ``minimum``/``maximum`` makes the form's number box silently clamp 1.5 to 1.
    ``suggested_dags`` (default: the DAGs ``add_chaos`` has seen) are offered as you type."""
    from airflow.sdk import Param

    suggestions = known_chaos_dags() if suggested_dags is None else suggested_dags
    offered: dict[str, Any] = {"examples": suggestions} if suggestions else {}
    return {
        "target_dag": Param(
            suggestions[0] if len(suggestions) == 1 else None,
            type=["null", "string"],
            minLength=1,
            pattern=r"^[A-Za-z0-9_.\-]+$",
            **offered,
            title="Target DAG",
            description="A DAG that carries add_chaos (checked when the run starts).",
        ),
        "fault": Param(
            "nulls",
            type="string",
            enum=list(FAULT_LABELS),
            values_display=FAULT_LABELS,
            title="Fault",
        ),
        "target": Param(
            None,
            type=["null", "string"],
            title="Where the fault acts",
            description="Path, s3:// URI or SQLAlchemy URL; empty: the example "
            "pipeline's raw events / features database.",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Touch nothing: the run notes list what would be touched.",
        ),
        "seed": Param(0, type="integer", minimum=0, maximum=2**32 - 1, title="Seed"),
        "fraction": Param(
            0.2,
            type="number",
            allOf=[{"minimum": 0}, {"maximum": 1}],
            title="Intensity (0 to 1)",
            description="Share of rows (data faults) or of calls (connector failure).",
            section=SECTION_INTENSITY,
        ),
        "columns": Param(
            ["amount"],
            type=["null", "array"],
            items={"type": "string", "minLength": 1},
            title="Columns",
            description="Columns a column fault changes.",
            section=SECTION_COLUMNS,
        ),
        "mode": Param(
            "missing", type="string", enum=OUTAGE_MODES, title="Outage mode", section=SECTION_OUTAGE
        ),
    }


def _registry_path() -> Any:
    from mlchaos_orchestration.settings import get_settings

    return get_settings().data_dir / REGISTRY_FILE


def known_chaos_dags() -> list[str]:
    """DAG ids ``add_chaos`` equipped in this deployment (sorted; [] when none seen yet)."""
    import json

    try:
        return sorted(json.loads(_registry_path().read_text(encoding="utf-8")))
    except Exception:  # noqa: BLE001 - no registry (yet), or no settings: no suggestions
        return []


def remember_chaos_dag(dag_id: str) -> None:
    """Add ``dag_id`` to the registry (written only when new; never raises: a parse-time
    convenience for the form, not a source of truth)."""
    import json
    import os

    try:
        known = known_chaos_dags()
        if dag_id in known:
            return
        path = _registry_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
        tmp.write_text(json.dumps(sorted({*known, dag_id})), encoding="utf-8")
        tmp.replace(path)
    except Exception:  # noqa: BLE001 - never break a DAG file's parse
        pass


def check_target_dag(dag_id: str, chaos_dags: dict[str, bool]) -> None:
    """Raise SpecError (one line) unless ``dag_id`` is a DAG carrying ``add_chaos``.

    ``chaos_dags``: every DAG id of the deployment -> whether it carries the chaos tasks."""
    from mlchaos_orchestration.errors import SpecError

    equipped = sorted(d for d, chaos in chaos_dags.items() if chaos)
    choices = f"DAGs with add_chaos: {', '.join(equipped) or 'none'}"
    if dag_id not in chaos_dags:
        raise SpecError([f"target DAG {dag_id!r} does not exist ({choices})"])
    if not chaos_dags[dag_id]:
        raise SpecError([f"target DAG {dag_id!r} has no chaos tasks: add_chaos it ({choices})"])


def scan_chaos_dags(dags_folder: str | None = None) -> dict[str, bool]:
    """Parse the DAGs folder (Airflow's DagBag): DAG id -> carries ``add_chaos``. Run in the
    first task only (a parse costs seconds), never at parse time."""
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    from mlchaos_orchestration.airflow.runtime import SETUP_GROUP

    folder = dags_folder or conf.get("core", "dags_folder")
    bag = DagBag(dag_folder=folder, load_op_links=False)
    return {d: f"{SETUP_GROUP}.inject" in dag.task_dict for d, dag in bag.dags.items()}


def check_fields(params: dict[str, Any]) -> None:
    """What JSON schema cannot say about the form: the fields the chosen fault needs (one line)."""
    from mlchaos_orchestration.errors import SpecError

    if not params.get("target_dag"):
        choices = ", ".join(known_chaos_dags()) or "none seen yet"
        raise SpecError([f"choose a target DAG (DAGs with add_chaos: {choices})"])
    fault = str(params.get("fault"))
    if fault in FIELD_FAULTS["columns"] and not params.get("columns"):
        raise SpecError([f"fault {fault!r} needs at least one column (section Columns)"])
    if fault in FIELD_FAULTS["fraction"] and params.get("fraction") is None:
        raise SpecError([f"fault {fault!r} needs an intensity between 0 and 1"])


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

    check_fields(params)
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
