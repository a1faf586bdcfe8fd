"""Thin Great Expectations 1.x gate adapter: validate a pandas frame against a suite of specs.

Suites are plain data (:class:`SuiteSpec`, loaded from YAML or a GX suite JSON export), so that
experiments, reports and DAG files can carry them without importing ``great_expectations``; GX is
imported on the first :func:`validate_frame` call only (it costs seconds and ~200 MB).

Only GX's public API is used: an ephemeral data context, a pandas data source with one dataframe
asset and a whole-dataframe batch definition, ``gx.ExpectationSuite`` and ``batch.validate``.
That context is built once per process (with progress bars off) and reused; each call passes its
own frame as a batch parameter, under a lock.

An existing GX project works as the gate too (:class:`GXProject`, :func:`validate_project`): its
file data context, a checkpoint (run with its own actions: Data Docs, stores, notifications) or a
suite of it. Expectation names match GX's classes whatever their case or spelling
(``expect_column_kl_divergence_to_be_less_than`` is ``ExpectColumnKLDivergenceToBeLessThan``).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlchaos_orchestration.errors import MlchaosError, SpecError, did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "ExpectationSpec",
    "GXProject",
    "GateFailed",
    "GateResult",
    "SuiteSpec",
    "assert_gate",
    "expectation_types",
    "load_suite_specs",
    "suite_problems",
    "validate_frame",
    "validate_project",
]

_INDEX_KEY = "mlchaos_index"
_LOCK = threading.Lock()
_BATCH_DEFINITION: Any = None


# ------------------------------------------------------------------------------------------- specs
class ExpectationSpec(BaseModel):
    """One expectation as data: the GX class name and its keyword arguments.

    ``type`` accepts the class name (``ExpectColumnValuesToNotBeNull``) or the snake_case name GX
    writes in suite exports (``expect_column_values_to_not_be_null``); it is checked against
    ``great_expectations.expectations`` when the suite is built, not here (that import is heavy).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(min_length=1)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _camel(cls, value: str) -> str:
        value = value.strip()
        if "_" in value or value[:1].islower():
            return "".join(part[:1].upper() + part[1:] for part in value.split("_") if part)
        return value

    def render(self) -> str:
        """``ExpectColumnValuesToNotBeNull(column="amount")``."""
        from mlchaos_orchestration.gates.mutation import render

        return render(self.model_dump())


class SuiteSpec(BaseModel):
    """A named list of expectation specs (a GX expectation suite as plain data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    expectations: list[ExpectationSpec] = Field(default_factory=list)

    def with_expectations(self, *extra: ExpectationSpec | dict[str, Any]) -> SuiteSpec:
        """A copy of this suite with ``extra`` expectations appended."""
        added = [e if isinstance(e, ExpectationSpec) else ExpectationSpec(**e) for e in extra]
        return self.model_copy(update={"expectations": [*self.expectations, *added]})


def load_suite_specs(source: str | Path | dict[str, Any]) -> SuiteSpec:
    """Load a suite from a YAML file, a GX suite JSON export, or an already-parsed mapping.

    YAML shape: ``{name: ..., expectations: [{type: ExpectX, kwargs: {...}}, ...]}``. GX exports
    (``expectation_type`` / ``expectation_suite_name`` of 0.x, ``type`` / ``name`` of 1.x) load
    too; their ``id``, ``notes`` and other bookkeeping keys are ignored.
    """
    data = source if isinstance(source, dict) else _read_mapping(Path(source))
    if not isinstance(data, dict):
        raise SpecError([f"suite: expected a mapping, got {type(data).__name__}"])
    name = data.get("name") or data.get("expectation_suite_name")
    items = data.get("expectations") or []
    if not isinstance(items, list):
        raise SpecError(["suite.expectations: expected a list"])
    try:
        return SuiteSpec(name=name or "suite", expectations=[_spec_from_item(i) for i in items])
    except ValidationError as exc:
        raise SpecError([_pydantic_problem(exc, "suite")]) from None


def _read_mapping(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError([f"suite file {str(path)!r}: {exc.strerror or exc}"]) from None
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError([f"suite file {str(path)!r}: not valid YAML/JSON: {first}"]) from None


def _spec_from_item(item: Any) -> ExpectationSpec:
    if not isinstance(item, dict):
        raise SpecError([f"suite expectation: expected a mapping, got {item!r}"])
    return ExpectationSpec(
        type=item.get("type") or item.get("expectation_type") or "",
        kwargs=item.get("kwargs") or {},
        meta=item.get("meta") or {},
    )


def _pydantic_problem(exc: ValidationError, prefix: str) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{prefix}.{where}: {err.get('msg', 'invalid')}" if where else f"{prefix}: {err['msg']}"


# ------------------------------------------------------------------------------------------ result
@dataclass
class GateResult:
    """Outcome of one gate validation; JSON-serialisable through :meth:`to_dict`.

    ``failed`` holds one dict per failed expectation: ``expectation`` (class name), ``column``,
    ``kwargs``, ``observed_value``, ``unexpected_count``, ``unexpected_percent`` and ``exception``
    (message when GX raised while evaluating it, e.g. a missing column).
    """

    success: bool
    evaluated: int
    duration_s: float
    suite: str = ""
    rows: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: Data Docs sites of a GX project's checkpoint run (``file://`` / ``s3://`` URLs)
    data_docs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line: ``2/9 expectations failed: ExpectX(column="a") [unexpected 20.0%]; ...``."""
        if self.success:
            return f"{self.evaluated} expectations passed"
        parts = [_describe_failure(f) for f in self.failed]
        return f"{len(self.failed)}/{self.evaluated} expectations failed: " + "; ".join(parts)


def _describe_failure(failure: dict[str, Any]) -> str:
    from mlchaos_orchestration.gates.mutation import render

    text = render({"type": failure["expectation"], "kwargs": failure["kwargs"]}, max_len=80)
    if failure.get("exception"):
        return f"{text} [error: {failure['exception']}]"
    if failure.get("unexpected_percent") is not None:
        return f"{text} [unexpected {failure['unexpected_percent']:.4g}%]"
    if failure.get("observed_value") is not None:
        return f"{text} [observed {_short(failure['observed_value'])}]"
    return text


def _short(value: Any, limit: int = 60) -> str:
    from mlchaos_orchestration.core.text import plain

    text = repr(plain(value))  # 115.0, not np.float64(115.0), in messages stored in the ledger
    return text if len(text) <= limit else text[: limit - 3] + "..."


class GateFailed(MlchaosError):
    """The gate's suite failed on the data; ``result`` carries the details."""

    def __init__(self, result: GateResult):
        self.result = result
        super().__init__(f"gate {result.suite!r} failed: {result.summary()}")


# -------------------------------------------------------------------------------------- validation
def expectation_types() -> list[str]:
    """Names of every expectation class in ``great_expectations.expectations`` (imports GX)."""
    gx = _import_gx()
    return sorted(
        n
        for n in dir(gx.expectations)
        if n.startswith("Expect") and isinstance(getattr(gx.expectations, n), type)
    )


def suite_problems(source: SuiteSpec | dict[str, Any] | str | Path) -> list[str]:
    """Every problem of a gate suite, one line each, found by building each expectation with
    GX's real classes (imports GX): an unknown type with a did-you-mean hint, kwargs GX
    rejects, an unreadable file. Empty when the suite would run."""
    try:
        spec = source if isinstance(source, SuiteSpec) else load_suite_specs(source)
    except SpecError as exc:
        return list(exc.problems)
    if not spec.expectations:
        return ["suite: no expectations (a gate that checks nothing passes everything)"]
    gx = _import_gx()
    problems: list[str] = []
    for index, expectation in enumerate(spec.expectations):
        try:
            _build(gx, expectation, index)
        except SpecError as exc:
            problems += [f"expectations[{index}]: {p}" for p in exc.problems]
    return problems


def validate_frame(
    frame: pd.DataFrame, suite: SuiteSpec | dict[str, Any] | str | Path
) -> GateResult:
    """Validate ``frame`` against ``suite`` with GX; never raises on failed expectations.

    Raises :class:`~mlchaos_orchestration.errors.SpecError` for an unknown expectation type (with
    a did-you-mean hint) or kwargs GX rejects.
    """
    spec = suite if isinstance(suite, SuiteSpec) else load_suite_specs(suite)
    start = time.perf_counter()
    gx = _import_gx()
    gx_suite = gx.ExpectationSuite(
        name=spec.name, expectations=[_build(gx, e, i) for i, e in enumerate(spec.expectations)]
    )
    with _LOCK:
        batch = _batch_definition(gx).get_batch(batch_parameters={"dataframe": frame})
        outcome = batch.validate(gx_suite, result_format="SUMMARY").to_json_dict()
    failed = [_failure(r, spec) for r in outcome["results"] if not r["success"]]
    failed.sort(key=lambda f: f.pop("_index"))
    return GateResult(
        success=bool(outcome["success"]),
        evaluated=int(outcome["statistics"]["evaluated_expectations"]),
        duration_s=round(time.perf_counter() - start, 6),
        suite=spec.name,
        rows=int(len(frame)),
        failed=failed,
    )


def assert_gate(
    frame: pd.DataFrame, suite: SuiteSpec | dict[str, Any] | str | Path | GXProject
) -> GateResult:
    """:func:`validate_frame` (or :func:`validate_project` for a :class:`GXProject`), raising
    :class:`GateFailed` when any expectation fails."""
    if isinstance(suite, GXProject):
        result = validate_project(suite, frame)
    else:
        result = validate_frame(frame, suite)
    if not result.success:
        raise GateFailed(result)
    return result


# ------------------------------------------------------------------------------- a GX project
@dataclass(frozen=True)
class GXProject:
    """An existing GX project as the gate: its file data context (``project_dir``: the folder
    holding ``gx/``, or ``gx/`` itself) and a ``checkpoint`` (run with its actions) or a
    ``suite_name`` (validated against the frame; no actions)."""

    project_dir: str
    checkpoint: str | None = None
    suite_name: str | None = None

    def __post_init__(self) -> None:
        if bool(self.checkpoint) == bool(self.suite_name):
            raise SpecError(["GX project gate: give exactly one of checkpoint or suite_name"])

    @property
    def label(self) -> str:
        what = f"checkpoint {self.checkpoint}" if self.checkpoint else f"suite {self.suite_name}"
        return f"{what} of GX project {self.project_dir}"


def validate_project(project: GXProject, frame: pd.DataFrame | None = None) -> GateResult:
    """Run ``project``'s checkpoint (``frame``, if given, is the batch of its dataframe assets;
    without it the checkpoint reads its own data) with its actions, or validate ``frame``
    against one of its suites; never raises on failed expectations.

    A missing project / checkpoint / suite, or a checkpoint GX cannot run, raises
    :class:`~mlchaos_orchestration.errors.SpecError` (the suite is unusable: a crash, not a
    detection)."""
    context = _project_context(project)
    if project.suite_name:
        if frame is None:
            raise SpecError([f"{project.label}: a suite needs the frame to validate"])
        try:
            suite = context.suites.get(project.suite_name)
        except Exception as exc:  # noqa: BLE001 - GX's not-found errors vary by store
            raise SpecError([f"{project.label}: {_first_line(exc)}"]) from None
        return validate_frame(frame, load_suite_specs(suite.to_json_dict()))
    start = time.perf_counter()
    try:
        checkpoint = context.checkpoints.get(project.checkpoint)
    except Exception as exc:  # noqa: BLE001
        raise SpecError([f"{project.label}: {_first_line(exc)}"]) from None
    batch = {"dataframe": frame} if frame is not None else None
    try:
        outcome = checkpoint.run(batch_parameters=batch)
    except Exception as exc:  # noqa: BLE001 - a checkpoint that cannot run checked nothing
        raise SpecError([f"{project.label}: {type(exc).__name__}: {_first_line(exc)}"]) from None
    runs = [r.to_json_dict() for r in outcome.run_results.values()]
    failed = [_failure(x, None) for r in runs for x in r["results"] if not x["success"]]
    for item in failed:
        item.pop("_index")
    return GateResult(
        success=bool(outcome.success),
        evaluated=sum(int(r["statistics"]["evaluated_expectations"]) for r in runs),
        duration_s=round(time.perf_counter() - start, 6),
        suite=str(project.checkpoint),
        rows=0 if frame is None else int(len(frame)),
        failed=failed,
        data_docs=_updated_docs(context, checkpoint),
    )


def _updated_docs(context: Any, checkpoint: Any) -> list[str]:
    """The Data Docs sites the checkpoint's UpdateDataDocsAction wrote (none without one)."""
    if not any(getattr(a, "type", "") == "update_data_docs" for a in checkpoint.actions or []):
        return []
    return [str(site.get("site_url")) for site in context.get_docs_sites_urls() or []]


def _project_context(project: GXProject) -> Any:
    """The project's file data context; never scaffolds a new project where none is."""
    root = Path(project.project_dir).expanduser().resolve()
    if (root / "great_expectations.yml").is_file() and root.name == "gx":
        root = root.parent  # given the gx/ folder itself
    if not (root / "gx" / "great_expectations.yml").is_file():
        raise SpecError([f"{project.label}: no GX project there (no gx/great_expectations.yml)"])
    gx = _import_gx()
    try:
        return gx.get_context(mode="file", project_root_dir=str(root))
    except Exception as exc:  # noqa: BLE001 - a broken great_expectations.yml
        raise SpecError([f"{project.label}: {type(exc).__name__}: {_first_line(exc)}"]) from None


def _import_gx() -> Any:
    """Import GX with its import-time INFO logging silenced (unless the user configured it)."""
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    import great_expectations as gx

    import mlchaos_orchestration.gates.gx_label  # noqa: F401 - registers the label expectation

    return gx


def quiet_context(gx: Any) -> Any:
    """An ephemeral in-memory GX context without progress bars, docs sites or analytics (the
    gate's own, also what ``benchmarks/gate.py`` gives raw GX so the two compare fairly)."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _batch_definition(gx: Any) -> Any:
    """The process-wide whole-dataframe batch definition (built once; caller holds ``_LOCK``)."""
    global _BATCH_DEFINITION
    if _BATCH_DEFINITION is None:
        context = quiet_context(gx)
        asset = context.data_sources.add_pandas("mlchaos").add_dataframe_asset("frame")
        _BATCH_DEFINITION = asset.add_batch_definition_whole_dataframe("whole_frame")
    return _BATCH_DEFINITION


def _canonical_type(gx: Any, name: str) -> str | None:
    """GX's class name for ``name`` whatever its case or underscores
    (``ExpectColumnKlDivergence...`` / ``expect_column_kl_divergence...`` ->
    ``ExpectColumnKLDivergence...``), or None."""
    if isinstance(getattr(gx.expectations, name, None), type) and name.startswith("Expect"):
        return name
    folded = {n.lower(): n for n in expectation_types()}
    return folded.get(name.replace("_", "").lower())


def _build(gx: Any, spec: ExpectationSpec, index: int) -> Any:
    name = _canonical_type(gx, spec.type)
    cls = getattr(gx.expectations, name) if name else None
    if cls is None:
        suggestion = did_you_mean(spec.type, expectation_types())
        hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
        raise SpecError([f"unknown expectation type {spec.type!r}{hint}"])
    try:
        return cls(**spec.kwargs, meta={**spec.meta, _INDEX_KEY: index})
    except (ValidationError, TypeError, ValueError) as exc:
        raise SpecError([f"{name}: invalid kwargs {spec.kwargs!r}: {_first_line(exc)}"]) from None


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        return f"{where}: {err.get('msg', '')}" if where else str(err.get("msg", ""))
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _failure(result: dict[str, Any], suite: SuiteSpec | None) -> dict[str, Any]:
    config = result.get("expectation_config") or {}
    index = int((config.get("meta") or {}).get(_INDEX_KEY, -1))
    specs = suite.expectations if suite is not None else []
    spec = specs[index] if 0 <= index < len(specs) else None
    name = spec.type if spec else ExpectationSpec(type=config.get("type", "?")).type
    details = result.get("result") or {}
    exception = result.get("exception_info") or {}
    if "raised_exception" not in exception:  # a metric's error, keyed by its configuration id
        errors = [e for e in exception.values() if isinstance(e, dict)]
        exception = next((e for e in errors if e.get("raised_exception")), {})
    kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
    message = exception.get("exception_message") if exception.get("raised_exception") else None
    return {
        "_index": index,
        "expectation": _canonical_type(_import_gx(), name) or name,
        "column": kwargs.get("column", kwargs.get("column_list")),
        "kwargs": kwargs,
        "observed_value": details.get("observed_value"),
        "unexpected_count": details.get("unexpected_count"),
        "unexpected_percent": details.get("unexpected_percent"),
        "exception": _one_line(message) if message else None,
    }


def _one_line(text: str, limit: int = 200) -> str:
    line = re.sub(r"\s+", " ", str(text)).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."
