"""Experiments: faults + gate + consumer + hypothesis + safety + seed, loadable from YAML.

``load_experiments(path)`` reports *every* problem with its path in the file, e.g.
``experiments[2].faults[0].fraction: must be <= 1``. YAML is read with ``yaml.safe_load`` only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mlchaos_orchestration.core.safety import SafetySpec
from mlchaos_orchestration.errors import SpecError, UnknownFaultError, did_you_mean
from mlchaos_orchestration.faults.base import Fault
from mlchaos_orchestration.faults.catalog import get_fault_class, registry

VerdictKind = Literal[
    "caught",
    "silent",
    "unalerted",
    "false_alarm",
    "not_applied",
    "not_reached",
    "gate_crashed",
    "error",
    "clean",
]
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,99}$")
MAX_FILE_BYTES = 1_000_000
MAX_SEED = 2**32 - 1


class FaultEntry(BaseModel):
    """One fault of an experiment plus where it acts (``at``: the step/task/asset whose input
    it changes, for data faults)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    fault: Fault
    at: str | None = None
    target: str | dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.fault.name

    def spec(self) -> dict[str, Any]:
        out = self.fault.spec()
        if self.at:
            out["at"] = self.at
        if self.target is not None:
            out["target"] = self.target
        return out


class AlertSpec(BaseModel):
    """Where alerts go. The webhook URL is a secret: name the env var holding it, not the URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url_env: str = Field("MLCHAOS_ALERT_WEBHOOK_URL", pattern=r"^[A-Z_][A-Z0-9_]{0,99}$")
    timeout_s: float = Field(5.0, gt=0, le=60)
    expected: bool = Field(
        True,
        description="false: the pipeline has no alert channel; the verdict is still "
        "'unalerted' (flagged alert_expected: false) but --fail-on / VerdictOperator skip it "
        "unless 'unalerted!' is asked",
    )


class Experiment(BaseModel):
    """One chaos experiment (a control run has no faults)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    hypothesis: str = Field("", max_length=2000)
    faults: list[FaultEntry] = Field(default_factory=list, max_length=50)
    gate: str | None = Field(None, max_length=200)
    consumer: str | None = Field(None, max_length=200)
    gate_suite: str | None = Field(
        None,
        max_length=1000,
        description="YAML/JSON gate suite the gate runs (checked by `mlchaos validate`)",
    )
    expect: VerdictKind | None = None
    seed: int = Field(0, ge=0, le=MAX_SEED)
    safety: SafetySpec = Field(default_factory=SafetySpec)
    alert: AlertSpec = Field(default_factory=AlertSpec)
    control: bool = False
    tags: dict[str, str] = Field(default_factory=dict, max_length=50)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("must be 1-100 characters of letters, digits, '_', '.', '@', '-'")
        return value

    @property
    def data_faults(self) -> list[FaultEntry]:
        return [f for f in self.faults if f.fault.family == "data"]

    @property
    def environment_faults(self) -> list[FaultEntry]:
        return [f for f in self.faults if f.fault.family == "environment"]

    def spec(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"faults"})
        data["faults"] = [f.spec() for f in self.faults]
        return data


REF_RE = r"^[A-Za-z_][A-Za-z0-9_.]{0,199}:[A-Za-z_][A-Za-z0-9_]{0,99}$"


class AirflowTargetSpec(BaseModel):
    """The user's Airflow DAG (run with ``dag.test()``; ``dags_folder`` relative to the file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dag_id: str = Field(..., pattern=r"^[A-Za-z0-9_.\-]{1,250}$")
    dags_folder: str | None = Field(None, min_length=1, max_length=1000)


class DagsterTargetSpec(BaseModel):
    """The user's Dagster ``Definitions`` (``module:attribute``, or a factory returning them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defs: str = Field(..., pattern=REF_RE)
    job: str | None = Field(None, min_length=1, max_length=200)


class PlainTargetSpec(BaseModel):
    """A plain Python pipeline (``module:attribute``; default: the file's ``pipeline:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: str | None = Field(None, pattern=REF_RE)


class PipelineTarget(BaseModel):
    """One entry of ``targets:``: exactly one of ``airflow``, ``dagster``, ``plain``.

    A string is a shorthand: ``{airflow: my_dag}``, ``{dagster: "mod:defs"}``,
    ``{plain: "mod:build"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    airflow: AirflowTargetSpec | None = None
    dagster: DagsterTargetSpec | None = None
    plain: PlainTargetSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        keys = {"airflow": "dag_id", "dagster": "defs", "plain": "pipeline"}
        return {k: {keys[k]: v} if k in keys and isinstance(v, str) else v for k, v in data.items()}

    @model_validator(mode="after")
    def _exactly_one(self) -> PipelineTarget:
        given = [k for k in ("airflow", "dagster", "plain") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of airflow, dagster, plain")
        return self


class ExperimentFile(BaseModel):
    """A YAML file of experiments (the same format drives plain Python, Airflow and Dagster)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    pipeline: str | None = Field(None, description="module:attribute of a plain Python pipeline")
    targets: list[PipelineTarget] | None = Field(
        None,
        min_length=1,
        max_length=50,
        description="the pipelines `mlchaos suite` runs the experiments on (one report)",
    )
    experiments: list[Experiment] = Field(default_factory=list, max_length=500)

    def get(self, name: str) -> Experiment:
        for exp in self.experiments:
            if exp.name == name:
                return exp
        names = [e.name for e in self.experiments]
        hint = did_you_mean(name, names)
        suffix = f" (did you mean {hint!r}?)" if hint else ""
        raise SpecError([f"no experiment {name!r}{suffix}"])


# ------------------------------------------------------------------------------------- loading
_TOP_KEYS = {"version", "pipeline", "targets", "defaults", "experiments"}
_DEFAULT_KEYS = {"seed", "safety", "gate", "consumer", "gate_suite", "alert", "tags"}


def load_experiments(source: str | Path | dict[str, Any]) -> ExperimentFile:
    """Load and validate an experiments file (path, YAML text or parsed mapping)."""
    raw = _read(source)
    return parse_experiments(raw)


def _read(source: str | Path | dict[str, Any]) -> Any:
    import yaml

    if isinstance(source, dict):
        return source
    text: str
    if isinstance(source, Path) or (isinstance(source, str) and not _looks_like_yaml(source)):
        path = Path(source)
        try:
            if not path.is_file():
                raise SpecError([f"{path}: no such file"])
            if path.stat().st_size > MAX_FILE_BYTES:
                raise SpecError([f"{path}: larger than {MAX_FILE_BYTES} bytes"])
            text = path.read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError) as exc:
            raise SpecError([f"{str(path)[:200]}: cannot read: {type(exc).__name__}"]) from None
    else:
        text = str(source)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SpecError([f"invalid YAML: {where}{problem}"]) from None
    except RecursionError:
        raise SpecError(["invalid YAML: nested too deeply"]) from None


def _looks_like_yaml(text: str) -> bool:
    stripped = text.strip()
    return "\n" in stripped or stripped[:1] in ("{", "[") or ": " in stripped


def parse_experiments(raw: Any) -> ExperimentFile:
    """Validate parsed YAML into an ExperimentFile, collecting every problem with its path."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise SpecError(["top level: must be a mapping with an 'experiments' list"])
    for key in raw:
        if key not in _TOP_KEYS:
            problems.append(_unknown(str(key), _TOP_KEYS, str(key)))
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        problems.append("defaults: must be a mapping")
        defaults = {}
    for key in defaults:
        if key not in _DEFAULT_KEYS:
            problems.append(_unknown(f"defaults.{key}", _DEFAULT_KEYS, str(key)))
    exps = raw.get("experiments")
    if not isinstance(exps, list) or not exps:
        problems.append("experiments: must be a non-empty list")
        exps = []
    built: list[Experiment] = []
    for i, exp in enumerate(exps):
        exp_obj = _parse_experiment(exp, defaults, f"experiments[{i}]", problems)
        if exp_obj is not None:
            built.append(exp_obj)
    names = [e.name for e in built]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"experiments: duplicate name {name!r}")
    if problems:
        raise SpecError(problems)
    try:
        return ExperimentFile(
            version=raw.get("version", 1),
            pipeline=raw.get("pipeline"),
            targets=raw.get("targets"),
            experiments=built,
        )
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, "")) from None


def parse_experiment(raw: Any, path: str = "experiment") -> Experiment:
    """Validate one experiment mapping (e.g. from Airflow Params) or raise SpecError."""
    problems: list[str] = []
    exp = _parse_experiment(raw, {}, path, problems)
    if problems or exp is None:
        raise SpecError(problems or [f"{path}: invalid"])
    return exp


def _parse_experiment(
    raw: Any, defaults: dict[str, Any], path: str, problems: list[str]
) -> Experiment | None:
    if not isinstance(raw, dict):
        problems.append(f"{path}: must be a mapping")
        return None
    data = {k: v for k, v in defaults.items() if k in _DEFAULT_KEYS}
    if isinstance(defaults.get("safety"), dict) and isinstance(raw.get("safety"), dict):
        data["safety"] = {**defaults["safety"], **raw["safety"]}
    data.update(
        {
            k: v
            for k, v in raw.items()
            if k != "safety" or "safety" not in data or not isinstance(v, dict)
        }
    )
    if isinstance(data.get("gate_suite"), str):
        data["gate_suite"] = _expand(data["gate_suite"])
    safety = data.get("safety")
    if isinstance(safety, dict) and isinstance(safety.get("allowed_targets"), list):
        try:
            data["safety"] = {**safety, "allowed_targets": _expand(safety["allowed_targets"])}
        except RecursionError:
            problems.append(f"{path}.safety.allowed_targets: nested too deeply")
            return None
    faults_raw = data.pop("faults", [])
    entries: list[FaultEntry] = []
    ok = True
    if not isinstance(faults_raw, list):
        problems.append(f"{path}.faults: must be a list")
        faults_raw, ok = [], False
    for j, fraw in enumerate(faults_raw):
        entry = _parse_fault(fraw, f"{path}.faults[{j}]", problems)
        if entry is None:
            ok = False
        else:
            entries.append(entry)
    if not entries and not data.get("control") and ok:
        problems.append(f"{path}.faults: an experiment needs at least one fault (or control: true)")
        ok = False
    try:
        exp = Experiment.model_validate({**data, "faults": entries})
    except ValidationError as exc:
        problems.extend(format_validation_error(exc, path))
        return None
    return exp if ok else None


def _parse_fault(raw: Any, path: str, problems: list[str]) -> FaultEntry | None:
    if not isinstance(raw, dict):
        problems.append(f"{path}: must be a mapping with a 'fault' name")
        return None
    odd = [k for k in raw if not isinstance(k, str)]
    if odd:
        problems.append(
            f"{path}: field name {odd[0]!r} is not a string (YAML reads unquoted "
            'on/off/yes/no as booleans: quote the key, e.g. "on")'
        )
        return None
    name = raw.get("fault")
    if not isinstance(name, str):
        problems.append(f"{path}.fault: required, a fault name (one of {', '.join(registry())})")
        return None
    try:
        params = {
            k: _expand(v) if k in _EXPANDED and not _is_sql_location(raw, k) else v
            for k, v in raw.items()
        }
    except RecursionError:
        problems.append(f"{path}: nested too deeply")
        return None
    params.pop("fault", None)
    at = params.pop("at", None)
    stored_target = params.pop("target", None) if name in _DATA_FAULT_NAMES() else None
    try:
        cls = get_fault_class(name)
    except UnknownFaultError as exc:
        problems.append(f"{path}.fault: {exc}")
        return None
    if at is not None and (not isinstance(at, str) or not 0 < len(at) <= 200):
        problems.append(f"{path}.at: must be a step/task name")
        return None
    try:
        fault = cls.model_validate(params)
    except ValidationError as exc:
        problems.extend(format_validation_error(exc, path, known=set(cls.model_fields)))
        return None
    except (ValueError, TypeError, RecursionError) as exc:
        problems.append(f"{path}: {_short(str(exc))}")
        return None
    if stored_target is not None and not isinstance(stored_target, (str, dict)):
        problems.append(f"{path}.target: must be a path, an s3:// URI or {{url, table}}")
        return None
    return FaultEntry(fault=fault, at=at, target=stored_target)


#: Fields whose ``${VAR}`` references are expanded from the environment (locations only).
#: SQL target URLs keep their references: they are expanded only to connect, so a password
#: held in an environment variable never reaches the ledger.
_EXPANDED = frozenset({"target", "template", "url", "s3"})


def _is_sql_location(raw: dict[str, Any], key: str) -> bool:
    if key == "target":
        return isinstance(raw.get("target"), dict) and "url" in raw["target"]
    return key == "url" and raw.get("fault") != "connector_failure"


def _expand(value: Any) -> Any:
    import os

    if isinstance(value, str):
        return os.path.expandvars(value)
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _DATA_FAULT_NAMES() -> set[str]:  # noqa: N802 - constant-like accessor
    return {name for name, cls in registry().items() if cls.family == "data"}


# ------------------------------------------------------------------------------ error messages
def format_validation_error(
    exc: ValidationError, prefix: str, known: set[str] | None = None
) -> list[str]:
    """Turn pydantic errors into ``path: message`` lines."""
    out = []
    for err in exc.errors():
        loc = _loc(prefix, err.get("loc", ()))
        out.append(f"{loc}: {_message(err, known)}")
    return out


def _loc(prefix: str, loc: tuple[Any, ...]) -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith(
            ("function-", "lax-or-strict", "json-or-python", "union[")
        ):
            continue
        else:
            text += ("." if text else "") + str(part)
    return text or "top level"


def _message(err: Mapping[str, Any], known: set[str] | None) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "less_than_equal":
        return f"must be <= {_num(ctx.get('le'))}"
    if kind == "less_than":
        return f"must be < {_num(ctx.get('lt'))}"
    if kind == "greater_than_equal":
        return f"must be >= {_num(ctx.get('ge'))}"
    if kind == "greater_than":
        return f"must be > {_num(ctx.get('gt'))}"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        field = str(err.get("loc", ("?",))[-1])
        hint = did_you_mean(field, known or set())
        return "unknown field" + (f" (did you mean {hint!r}?)" if hint else "")
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == REF_RE:
        return "must look like 'package.module:attribute'"
    if kind == "finite_number":
        return "must be a finite number"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    return _short(str(err.get("msg", "invalid")))


def _num(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def _unknown(path: str, known: set[str], key: str) -> str:
    hint = did_you_mean(key, known)
    return f"{path}: unknown field" + (f" (did you mean {hint!r}?)" if hint else "")


def _short(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    if line.startswith("Value error, "):
        line = line[len("Value error, ") :]
    return line if len(line) <= limit else line[: limit - 3] + "..."
