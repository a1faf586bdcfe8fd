"""Hostile input: >= 10,000 generated experiment specs / Params payloads (wrong types, huge
numbers, NaN, inf, unicode, deep nesting, injection strings). Each is valid or refused with a
one-line SpecError/MlchaosError; nothing else escapes, nothing is touched. Plus: no eval/exec/
pickle/unsafe YAML anywhere in the package."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mlchaos_orchestration.core.experiment import (
    ExperimentFile,
    load_experiments,
    parse_experiment,
    parse_experiments,
)
from mlchaos_orchestration.errors import MlchaosError
from mlchaos_orchestration.faults.catalog import registry

PACKAGE = Path(__file__).resolve().parents[2] / "mlchaos_orchestration"
INJECTIONS = [
    "'; DROP TABLE mlchaos_runs; --",
    "${HOME}",
    "$(rm -rf /)",
    "`id`",
    "{{7*7}}",
    "__import__('os').system('id')",
    "../../../../etc/passwd",
    "/etc/shadow",
    "s3://../..",
    "file:///etc/passwd",
    "\x00",
    "a\nb",
    "\r\n",
    "\u202e",
    "😈" * 50,
    "!!python/object/apply:os.system ['id']",
    "<script>alert(1)</script>",
    "%s%n",
    "x" * 5_000,
    "postgresql://u:pw@h/db",
    "NaN",
    "Infinity",
    "-0",
    "1e999",
]
FIELDS = [
    "name",
    "hypothesis",
    "faults",
    "gate",
    "consumer",
    "expect",
    "seed",
    "safety",
    "alert",
    "control",
    "tags",
    "fault",
    "columns",
    "fraction",
    "target",
    "mode",
    "rate",
    "template",
    "ttl_s",
    "allowed_targets",
    "environment",
    "allow_production",
    "keep_fraction",
    "lag_days",
    "url",
    "s3",
    "on",
    "at",
    "max_rows",
    "k",
    "column",
]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=16),
    st.sampled_from(INJECTIONS),
    st.sampled_from(FIELDS),
    st.sampled_from(sorted(registry())),
)
keys = st.one_of(
    st.sampled_from(FIELDS),
    st.text(max_size=12),
    st.integers(-5, 5),
    st.sampled_from(INJECTIONS[:12]),
)
values = st.recursive(
    leaves,
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(keys, kids, max_size=3)),
    max_leaves=8,
)


def _deep(depth: int, kind: str) -> Any:
    out: Any = "x"
    for _ in range(depth):
        out = [out] if kind == "list" else {"a": out}
    return out


deep = st.builds(_deep, st.integers(2, 40), st.sampled_from(["list", "dict"]))  # deeper: below
any_value = st.one_of(values, deep)


@st.composite
def fault_entries(draw: Any) -> Any:
    name = draw(st.one_of(st.sampled_from(sorted(registry())), leaves))
    params = draw(st.dictionaries(st.sampled_from(FIELDS), any_value, max_size=5))
    return draw(st.one_of(st.just({"fault": name, **params}), any_value))


@st.composite
def experiments(draw: Any) -> Any:
    exp = {
        "name": draw(st.one_of(st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True), leaves)),
        "faults": draw(st.one_of(st.lists(fault_entries(), max_size=3), any_value)),
    }
    extra = draw(st.dictionaries(st.sampled_from(FIELDS), any_value, max_size=4))
    if draw(st.booleans()):
        extra["safety"] = draw(
            st.dictionaries(
                st.sampled_from(
                    [
                        "ttl_s",
                        "allowed_targets",
                        "environment",
                        "allow_production",
                        "alert_deadline_s",
                        "junk",
                    ]
                ),
                any_value,
                max_size=3,
            )
        )
    return {**exp, **extra}


files = st.one_of(
    st.builds(
        lambda exps, top: {"experiments": exps, **top},
        st.one_of(st.lists(experiments(), max_size=3), any_value),
        st.dictionaries(
            st.sampled_from(["version", "pipeline", "defaults", "junk"]), any_value, max_size=2
        ),
    ),
    any_value,
)


CHECKED = [0]  # specs checked by the running test (hypothesis runs the body many times)


def _check(call: Any, raw: Any) -> None:
    CHECKED[0] += 1
    try:
        result = call(raw)
    except MlchaosError as exc:
        text = str(exc)
        assert text.strip(), "empty error message"
        assert "\n" not in text and "\r" not in text, f"multi-line error: {text[:300]!r}"
        assert "Traceback" not in text
        return
    assert result is not None


def _check_parts(raw: Any) -> None:
    """The file, each experiment as a Params payload, each fault in a minimal experiment:
    several specs per generated example (generation, not parsing, is what costs time)."""
    _check(parse_experiments, raw)
    exps = raw.get("experiments") if isinstance(raw, dict) else None
    for exp in exps if isinstance(exps, list) else []:
        _check(parse_experiment, exp)
        faults = exp.get("faults") if isinstance(exp, dict) else None
        for fault in faults if isinstance(faults, list) else []:
            _check(parse_experiment, {"name": "one-fault", "faults": [fault]})


#: generated examples per test, and the specs each test must have checked (>= 10,000 in all)
N_FILES, N_PARAMS, N_YAML, N_CLI = 2200, 2000, 1500, 150
MIN_FILES, MIN_PARAMS = 4400, 4000


def fast(n: int) -> settings:
    """Settings for n examples: no deadline, reproducible, no example database on disk."""
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )  # no shrinking: fail fast


def _counted(run: Any, minimum: int) -> int:
    CHECKED[0] = 0
    run()
    assert CHECKED[0] >= minimum, CHECKED[0]
    return CHECKED[0]


@fast(N_FILES)
@given(files)
def _files(raw: Any) -> None:
    _check_parts(raw)


def test_generated_files_are_valid_or_refused_in_one_line() -> None:
    print(f"specs checked: {_counted(_files, MIN_FILES)}")


@fast(N_PARAMS)
@given(st.one_of(experiments(), any_value))
def _params(raw: Any) -> None:
    _check(parse_experiment, raw)
    _check(parse_experiments, {"experiments": [raw]})


def test_generated_params_payloads_are_valid_or_refused_in_one_line() -> None:
    """What the Airflow Params form / Dagster config hand to parse_experiment."""
    print(f"specs checked: {_counted(_params, MIN_PARAMS)}")


@fast(N_YAML)
@given(
    st.one_of(
        files.map(lambda v: _dump(v)),
        st.text(max_size=300),
        st.sampled_from(
            [
                "a: [",
                "!!python/object:os.system {}",
                "&a [*a, *a]",
                "a: b: c",
                "experiments: !!binary AAAA",
                "\t- x",
                "%YAML 9",
            ]
        ),
    )
)
def test_generated_yaml_text_is_valid_or_refused_in_one_line(text: str) -> None:
    _check(load_experiments, text)  # YAML text, or a path that does not exist


def _dump(value: Any) -> str:
    import json

    try:
        return json.dumps(value, allow_nan=True)  # JSON is YAML; NaN/inf as bare words
    except (ValueError, RecursionError, TypeError):
        return "experiments: []"


@fast(N_CLI)
@given(files)
def test_cli_validate_prints_one_line_errors_and_touches_nothing(
    tmp_path_factory: pytest.TempPathFactory, raw: Any
) -> None:
    from mlchaos_orchestration.cli import commands as cli

    folder = tmp_path_factory.mktemp("validate")
    spec = folder / "spec.yaml"
    spec.write_text(_dump(raw))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            cli.main(["validate", str(spec)])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    assert "Traceback" not in out.getvalue() + err.getvalue()
    if code:
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        assert lines and all(": " in line for line in lines), lines
    assert sorted(p.name for p in folder.iterdir()) == ["spec.yaml"]


def test_at_least_ten_thousand_specs() -> None:
    assert MIN_FILES + MIN_PARAMS + N_YAML + N_CLI >= 10_000


@pytest.mark.parametrize("depth", [1_100, 20_000])
@pytest.mark.parametrize("where", ["target", "template", "columns", "safety", "tags"])
def test_very_deep_nesting_is_refused_in_one_line(depth: int, where: str) -> None:
    """Minimal failing case found by the generated tests: a deeply nested value under a field
    whose ${VAR}s are expanded (target/template/url/s3, safety.allowed_targets) raised
    RecursionError out of experiment._expand."""
    fault: dict[str, Any] = {"fault": "upstream_outage", "target": "/tmp/x"}
    exp: dict[str, Any] = {"name": "deep", "faults": [fault]}
    if where == "safety":
        exp["safety"] = {"allowed_targets": [_deep(depth, "list")]}
    elif where == "tags":
        exp["tags"] = _deep(depth, "dict")
    else:
        fault[where] = _deep(depth, "list")
    _check(parse_experiments, {"experiments": [exp]})
    _check(parse_experiment, exp)


@pytest.mark.parametrize("key", ["a\nb", "\r", "x\n\nexperiments[0]: fake problem"])
def test_control_characters_in_user_keys_stay_on_one_line(key: str) -> None:
    """Minimal failing case: an unknown key containing a newline is echoed verbatim, so the
    SpecError (and each ``mlchaos validate`` line) spans several lines and can forge output."""
    _check(parse_experiments, {key: 1, "experiments": [{"name": "a", "control": True}]})
    _check(parse_experiment, {"name": "a", "control": True, key: 1})


@pytest.mark.parametrize("name", [{"a": 1}, ["nulls"], {"fault": "nulls"}])
def test_unhashable_fault_name_is_refused(name: Any) -> None:
    """Minimal failing case: ``fault: {...}`` raised TypeError (unhashable) in _parse_fault."""
    _check(parse_experiment, {"name": "a", "faults": [{"fault": name}]})


@pytest.mark.parametrize("text", ["x" * 5_000, "a/" * 3_000, "\x00"])
def test_long_or_odd_source_string_is_refused(text: str) -> None:
    """Minimal failing case: load_experiments("x" * 5000) let OSError (file name too long)
    escape from Path.is_file instead of a SpecError."""
    _check(load_experiments, text)


def test_known_valid_spec_still_parses() -> None:
    raw = {
        "experiments": [
            {"name": "ok", "faults": [{"fault": "nulls", "columns": ["amount"], "fraction": 0.2}]}
        ]
    }
    assert isinstance(parse_experiments(raw), ExperimentFile)


DANGEROUS = {
    "eval(": re.compile(r"(?<![\w.])eval\("),
    "exec(": re.compile(r"(?<![\w.])exec\("),
    "pickle": re.compile(r"\b(c?pickle|dill|marshal|shelve)\.loads?\(|^\s*import (c?pickle|dill)"),
    "yaml.load(": re.compile(r"yaml\.(load|load_all|unsafe_load|full_load)\("),
    "yaml Loader": re.compile(r"yaml\.(Unsafe|Full)?Loader\b|Loader=yaml\.(Unsafe|Full)?Loader"),
    "__import__": re.compile(r"__import__\("),
    "shell=True": re.compile(r"shell\s*=\s*True"),
}


def test_no_eval_exec_pickle_or_unsafe_yaml_in_the_package() -> None:
    offenders = []
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20
    for path in sources:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            offenders += [
                f"{path.relative_to(PACKAGE)}:{number}: {name}: {line.strip()}"
                for name, pattern in DANGEROUS.items()
                if pattern.search(code)
            ]
    assert offenders == []


# ------------------------------------------------------------ run-time safety vs the deployment
N_SAFETY = 1500


def _probes(entry: Any) -> list[Any]:
    """Targets an allowlist entry would cover: the entry itself and something under it."""
    from mlchaos_orchestration.core.targets import Target

    out: list[Any] = []
    if not isinstance(entry, str) or not entry.strip():
        return out
    text = entry.strip()
    candidates: list[Any] = []
    if "#" in text and "://" in text and not text.startswith("s3://"):
        url, table = text.rsplit("#", 1)
        candidates = [{"url": url, "table": t} for t in (table, "features", "users") if t != "*"]
    else:
        candidates = [text, text.rstrip("/") + "/sub/x.csv"]
    for raw in candidates:
        try:
            out.append(Target.parse(raw))
        except (MlchaosError, ValueError):
            pass
    return out


def test_generated_runtime_safety_is_narrower_or_refused_in_one_line(tmp_path: Path) -> None:
    """Random SafetySpecs (as run conf / trigger form / Dagster tags give them) through
    bound_runtime_safety: a one-line SafetyError, or a spec that allows nothing the deployment
    does not (every target it allows is allowed by the ceiling), with ttl, production and
    environment within the deployment's."""
    from pydantic import ValidationError

    from mlchaos_orchestration.core.safety import (
        SafetySpec,
        bound_runtime_safety,
        check_targets,
        effective_allowlist,
    )
    from mlchaos_orchestration.errors import SafetyError
    from mlchaos_orchestration.settings import get_settings

    allowed = tmp_path / "allowed"
    (allowed / "events").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (allowed / "escape").symlink_to(tmp_path / "outside")
    ceiling_env = [str(allowed), "s3://lake/data/", "postgresql://app@db:5432/features#*"]
    base = {
        "MLCHAOS_HOME": str(tmp_path / "home"),
        "MLCHAOS_ALLOWED_TARGETS": ",".join(ceiling_env),
    }
    entry = st.one_of(
        st.sampled_from(ceiling_env),
        st.builds(
            lambda root, parts: root + "/" + "/".join(parts),
            st.sampled_from([str(allowed), str(tmp_path), "s3://lake/data", "s3://lake", "/"]),
            st.lists(
                st.sampled_from(["events", "..", "escape", "x.csv", "", ".", "outside", "data"]),
                max_size=4,
            ),
        ),
        st.builds(
            lambda db, table: f"postgresql://{db}#{table}",
            st.sampled_from(["app@db:5432/features", "u@db:5432/features", "app@db/other"]),
            st.sampled_from(["*", "orders", "", "users"]),
        ),
        st.sampled_from(INJECTIONS),
        st.text(max_size=12),
    )
    spec_dict = st.fixed_dictionaries(
        {},
        optional={
            "allowed_targets": st.lists(entry, max_size=4),
            "ttl_s": st.one_of(st.floats(0.001, 7 * 86400), st.sampled_from([60.0, 900.0, 901.0])),
            "allow_production": st.booleans(),
            "environment": st.one_of(
                st.sampled_from(["dev", "DEV ", "prod", "production", "staging"]),
                st.text(max_size=8),
            ),
            "alert_deadline_s": st.floats(1, 86400),
            "only_listed_targets": st.booleans(),
        },
    )
    deployments = st.lists(
        st.builds(
            SafetySpec,
            ttl_s=st.sampled_from([60.0, 300.0, 900.0, 3600.0]),
            allowed_targets=st.lists(
                st.sampled_from([str(allowed / "events"), "s3://lake/"]), max_size=2
            ),
            allow_production=st.booleans(),
            environment=st.sampled_from([None, "dev", "production"]),
        ),
        max_size=2,
    )
    envs = st.fixed_dictionaries(
        {},
        optional={
            "MLCHAOS_ENVIRONMENT": st.sampled_from(["dev", "production"]),
            "MLCHAOS_ALLOW_PRODUCTION": st.sampled_from(["0", "1"]),
        },
    )
    counts = {"narrowed": 0, "refused": 0}

    @fast(N_SAFETY)
    @given(spec_dict, deployments, envs)
    def run(raw: dict[str, Any], deployment: list[Any], env: dict[str, str]) -> None:
        try:
            requested = SafetySpec.model_validate(raw)
        except ValidationError:
            return
        s = get_settings({**base, **env})
        try:
            bounded = bound_runtime_safety(
                requested, deployment=deployment, settings=s, where="run conf"
            )
        except SafetyError as exc:
            text = str(exc)
            assert text.startswith("run conf: safety.") and text.endswith(": refused"), text
            assert "\n" not in text and "\r" not in text and len(text) <= 1000
            counts["refused"] += 1
            return
        counts["narrowed"] += 1
        assert bounded.only_listed_targets
        ceiling = list(s.allowed_targets) + [t for d in deployment for t in d.allowed_targets]
        narrowed = effective_allowlist(s, bounded)
        for candidate in [e for e in narrowed + list(requested.allowed_targets)]:
            for probe in _probes(candidate):
                try:
                    check_targets([probe], narrowed)
                except SafetyError:
                    continue
                check_targets([probe], ceiling)  # allowed narrowed => allowed by the deployment
        assert bounded.ttl_s <= max((d.ttl_s for d in deployment), default=s.default_ttl_s)
        if bounded.allow_production:
            assert s.allow_production and (
                not deployment or any(d.allow_production for d in deployment)
            )
        assert bounded.environment in {None, *(d.environment for d in deployment)}

    run()
    print(counts)
    assert counts["narrowed"] > 100 and counts["refused"] > 100, counts
