"""Data faults on XCom values, applied as a task pulls them (TaskFlow arguments, ``xcom_pull``).

Configure it in place of the XCom backend; it wraps the one you had::

    [core]
    xcom_backend = mlchaos_orchestration.airflow.xcom_backend.ChaosXCom
    [mlchaos]
    xcom_backend = my_company.xcom.S3XComBackend   # optional; default: Airflow's BaseXCom

Every call goes to the wrapped backend. On a pull (``get_one`` / ``get_all``, and their async
``aget_one`` / ``aget_all`` behind ``await ti.axcom_pull(...)`` in async tasks) in a task of a
chaos run (``mlchaos`` in ``dag_run.conf``), each data fault of the experiment whose ``target``
names the pulled XCom - ``xcom://<task_id>`` (key ``return_value``) or
``xcom://<task_id>/<key>`` - is applied to the pulled value when the pulling task is the fault's
``at:`` (or, without ``at:``, the run's gate or consumer). Dormant runs, other XComs and other
processes (API server, scheduler) get the wrapped backend's value untouched. XCom targets go
through the same guards as stored ones: the environment check and the allowlist
(``xcom://<task_id>`` allows every key of the task, ``xcom://<task_id>/<key>`` one key,
``xcom://*`` every XCom); a refused fault is not applied and the run records an ``error``.

Not wrapped: items of a mapped task's results read lazily (``LazyXComSequence``: a downstream
task iterating ``mapped.expand(...)`` output); the Task SDK deserialises those directly
(``XCom.deserialize_value``), bypassing every pull method, so faults on them are not applied.

What the task receives is a faulted *copy*: the stored XCom is never written, so there is
nothing to restore. Values of these shapes are faulted through a DataFrame and handed back in
their own shape: a ``pandas.DataFrame``; a list of records (dicts); a dict of equal-length
lists (columns); a dict of scalars (columns ``key`` and ``value``, e.g. ``{"1001": 301.27}``).
Any other value passes unchanged and the run records an ``error`` (its verdict is unreliable).

Evidence in the ledger, per pull: ``fault_applied`` (``site`` = the pulling task and the XCom,
``fingerprint`` of the faulted value, ``stored_fingerprint`` of the value as stored,
``rows_changed``) and ``target_read`` by the pulling task (role gate / consumer / task), linked by
a ``pull_id`` (the verdict's evidence lists the read under the fault).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.xcom import BaseXCom

if TYPE_CHECKING:  # pragma: no cover
    from mlchaos_orchestration.airflow.runtime import ChaosRun

__all__ = ["SCHEME", "ChaosXCom", "chaos_xcom_backend", "xcom_target"]

log = logging.getLogger(__name__)
SCHEME = "xcom://"
RETURN_KEY = BaseXCom.XCOM_RETURN_KEY


def xcom_target(target: Any) -> tuple[str, str] | None:
    """``(task_id, key)`` of an ``xcom://task_id[/key]`` target; None for any other target."""
    if not isinstance(target, str) or not target.startswith(SCHEME):
        return None
    task_id, _, key = target[len(SCHEME) :].strip("/").partition("/")
    return (task_id, key or RETURN_KEY) if task_id else None


def chaos_xcom_backend(inner: type[BaseXCom]) -> type[BaseXCom]:
    """A subclass of ``inner`` whose pulls apply the chaos run's XCom faults."""

    class _ChaosXCom(inner):  # type: ignore[valid-type, misc]
        @classmethod
        def get_one(cls, **kwargs: Any) -> Any:
            return _pulled(super().get_one(**kwargs), kwargs)

        @classmethod
        def get_all(cls, **kwargs: Any) -> Any:
            values = super().get_all(**kwargs)
            return values if values is None else [_pulled(v, kwargs) for v in values]

        @classmethod
        async def aget_one(cls, **kwargs: Any) -> Any:  # ti.axcom_pull (async tasks)
            return _pulled(await super().aget_one(**kwargs), kwargs)

        @classmethod
        async def aget_all(cls, **kwargs: Any) -> Any:
            values = await super().aget_all(**kwargs)
            return values if values is None else [_pulled(v, kwargs) for v in values]

    _ChaosXCom.__name__ = _ChaosXCom.__qualname__ = "ChaosXCom"
    _ChaosXCom.__doc__ = f"{inner.__name__} with mlchaos data faults on pulled values."
    return _ChaosXCom


def _configured_inner() -> type[BaseXCom]:
    from airflow.sdk.configuration import conf

    inner = conf.getimport("mlchaos", "xcom_backend", fallback=None) or BaseXCom
    if not (isinstance(inner, type) and issubclass(inner, BaseXCom)):
        raise TypeError(f"[mlchaos] xcom_backend {inner!r} is not a subclass of BaseXCom")
    if getattr(inner, "__name__", "") == "ChaosXCom":
        raise TypeError("[mlchaos] xcom_backend must name the backend to wrap, not ChaosXCom")
    return inner


ChaosXCom = chaos_xcom_backend(_configured_inner())


# ------------------------------------------------------------------------------------------- pull
def _pulled(value: Any, where: dict[str, Any]) -> Any:
    """``value`` as the pulling task should see it (faulted on chaos runs); never raises."""
    if value is None:
        return value
    try:
        found = _pulling_task()
        if found is None:
            return value
        run, task_id, dag_id = found
        if where.get("dag_id") not in (None, dag_id):
            return value
        entries = _entries(run, task_id, str(where.get("task_id")), str(where.get("key")))
        for entry in entries:
            value = _apply(run, entry, value, task_id, where)
    except Exception as exc:  # noqa: BLE001 - a pull must never break because of chaos
        log.warning("mlchaos: XCom fault not applied: %s", exc)
    return value


def _pulling_task() -> tuple[ChaosRun, str, str] | None:
    """(chaos run, pulling task id, dag id) inside a task of a chaos run; None otherwise."""
    try:
        from airflow.sdk import get_current_context

        context = get_current_context()
    except Exception:  # noqa: BLE001 - not in a task (API server, scheduler, tests)
        return None
    from mlchaos_orchestration.airflow.context import chaos_run
    from mlchaos_orchestration.airflow.runtime import is_chaos_task_id, requested

    dag_run = context.get("dag_run")
    if requested(getattr(dag_run, "conf", None)) is None:
        return None  # dormant: nothing more is read
    task_id = str(context["ti"].task_id)
    run = chaos_run(context)
    if run is None or is_chaos_task_id(task_id):
        return None
    return run, task_id, str(getattr(dag_run, "dag_id", ""))


def _entries(run: ChaosRun, puller: str, producer: str, key: str) -> list[Any]:
    roles = {run.gate, run.consumer} - {None}
    return [
        e
        for e in run.experiment.faults
        if e.fault.family == "data"
        and xcom_target(e.target) == (producer, key)
        and (e.at == puller if e.at else puller in roles)
    ]


def _apply(run: ChaosRun, entry: Any, value: Any, puller: str, where: dict[str, Any]) -> Any:
    import uuid

    from mlchaos_orchestration.core.control import record
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.core.safety import (
        check_environment,
        check_xcom_target,
        effective_allowlist,
    )
    from mlchaos_orchestration.errors import SafetyError
    from mlchaos_orchestration.settings import get_settings

    ledger = Ledger()
    target = f"{SCHEME}{where.get('task_id')}/{where.get('key')}"
    if ledger.get_run(run.run_id) is None:
        log.warning("mlchaos: no chaos run %s begun (add_chaos missing?): %s", run.run_id, target)
        return value
    settings, safety = get_settings(), run.experiment.safety
    try:  # the same guards as a stored target: environment, then the allowlist
        check_environment(settings, safety)
        check_xcom_target(target, effective_allowlist(settings, safety))
    except SafetyError as exc:
        record(run.run_id, "error", source=puller, stage="xcom_fault", message=str(exc))
        log.warning("mlchaos: %s not applied: %s", entry.fault.name, exc)
        return value
    role = "gate" if puller == run.gate else "consumer" if puller == run.consumer else "task"
    stored = fingerprint(value)
    try:
        frame, back = as_frame(value)
    except TypeError as exc:
        record(run.run_id, "error", source=puller, stage="xcom_fault", message=str(exc))
        return value
    result = entry.fault.apply(frame, run.seed)
    faulted = back(result.frame)
    summary = result.summary()
    fp = fingerprint(faulted)
    pull_id = uuid.uuid4().hex  # links the read to this application (no lease: nothing stored)
    record(
        run.run_id,
        "fault_applied",
        source=puller,
        ledger=ledger,
        fault=entry.fault.name,
        at=puller,
        params=entry.fault.spec(),
        seed=run.seed,
        details=summary,
        site={"step": puller, "input": target},
        targets=[target],
        fingerprint={target: fp},
        stored_fingerprint=stored,
        rows_changed=int(summary.get("rows_changed") or 0),
        pull_id=pull_id,
    )
    record(
        run.run_id,
        "target_read",
        source=puller,
        ledger=ledger,
        task=puller,
        role=role,
        target=target,
        fingerprint=fp,
        matches=True,
        checked_by="xcom_pull",
        pull_id=pull_id,
    )
    log.info("mlchaos: %s applied to %s as %s pulled it", entry.fault.name, target, puller)
    return faulted


# ----------------------------------------------------------------------------------------- shapes
def as_frame(value: Any) -> tuple[Any, Any]:
    """``(DataFrame, back)``: ``value`` as a frame and the function giving a frame back in the
    value's own shape. Raises TypeError for a shape data faults cannot act on."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value, lambda frame: frame
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        return pd.DataFrame.from_records(value), _records
    if isinstance(value, dict) and value:
        items = list(value.values())
        if all(isinstance(v, list) for v in items) and len({len(v) for v in items}) == 1:
            return pd.DataFrame(value), _columns
        if all(v is None or isinstance(v, (str, int, float, bool)) for v in items):
            frame = pd.DataFrame({"key": list(value), "value": items})
            return frame, _mapping
    raise TypeError(
        f"XCom value of type {type(value).__name__} is not a DataFrame, a list of records or a "
        "dict of columns / scalars: data faults cannot act on it"
    )


def _records(frame: Any) -> list[dict[str, Any]]:
    return [{k: _scalar(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _columns(frame: Any) -> dict[str, list[Any]]:
    return {str(c): [_scalar(v) for v in frame[c].tolist()] for c in frame.columns}


def _mapping(frame: Any) -> dict[Any, Any]:
    pairs = zip(frame["key"].tolist(), frame["value"].tolist(), strict=True)
    return {k: _scalar(v) for k, v in pairs}


def _scalar(value: Any) -> Any:
    """numpy scalars as Python ones (the task gets JSON-able values, as from the store)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def fingerprint(value: Any) -> str:
    """``sha256:<hex>`` of a value's content (frames by their rows, others as sorted JSON)."""
    import pandas as pd

    digest = hashlib.sha256()
    if isinstance(value, pd.DataFrame):
        digest.update(json.dumps([str(c) for c in value.columns]).encode())
        digest.update(pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes())
    else:
        digest.update(json.dumps(value, sort_keys=True, default=repr).encode())
    return "sha256:" + digest.hexdigest()
