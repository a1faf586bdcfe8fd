"""Guards end to end: refused faults touch nothing (checked by fingerprints), from the Python API,
from the experiment spec and from the CLI; symlinks and '..' never lead out of the allowlist."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlchaos_orchestration.core.ledger import Ledger
from mlchaos_orchestration.core.safety import SafetySpec, bound_runtime_safety
from mlchaos_orchestration.core.session import apply_fault, restore_lease
from mlchaos_orchestration.errors import SafetyError
from mlchaos_orchestration.faults.base import ApplyContext
from mlchaos_orchestration.faults.catalog import get_fault_class
from mlchaos_orchestration.settings import get_settings
from mlchaos_orchestration.testing.torture import local_snapshot, s3_snapshot

CSV = b"id,amount\n1,2.5\n2,3.5\n3,4.5\n4,5.5\n"


def _fault(**params: Any) -> Any:
    return get_fault_class("upstream_outage").model_validate(params)


def _settings(home: Path, allowed: list[str], **extra: str) -> Any:
    env = {
        "MLCHAOS_HOME": str(home),
        "MLCHAOS_LEDGER_URL": f"sqlite:///{home / 'ledger.db'}",
        "MLCHAOS_ALLOWED_TARGETS": ",".join(allowed),
        **extra,
    }
    for key in ("MLCHAOS_S3_ENDPOINT_URL",):
        if key in os.environ:
            env.setdefault(key, os.environ[key])
    return get_settings(env)


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """allowed/events/*.csv (+ link to outside), outside/secret.csv, allowed/escape -> outside."""
    root = tmp_path / "data"
    allowed, outside = root / "allowed", root / "outside"
    (allowed / "events").mkdir(parents=True)
    outside.mkdir()
    for i in range(3):
        (allowed / "events" / f"part-{i}.csv").write_bytes(CSV)
    (outside / "secret.csv").write_bytes(CSV * 3)
    (allowed / "events" / "linked.csv").symlink_to(outside / "secret.csv")
    (allowed / "escape").symlink_to(outside)
    return {"root": root, "allowed": allowed, "outside": outside}


def _refused(
    settings: Any, fault: Any, before: dict[str, str], root: Path, safety: SafetySpec | None = None
) -> None:
    ledger = Ledger(settings.ledger_url)
    with pytest.raises(SafetyError):
        apply_fault(
            ledger,
            fault,
            ApplyContext(seed=1),
            run_id="guard",
            safety=safety or SafetySpec(),
            settings=settings,
        )
    assert local_snapshot(root) == before, "a refused fault changed data"
    assert ledger.leases() == [], "a refused fault took a lease"
    assert not settings.backup_dir.exists(), "a refused fault wrote a backup"


def test_refusals_touch_nothing(layout: dict[str, Path], tmp_path: Path) -> None:
    root, allowed, outside = layout["root"], layout["allowed"], layout["outside"]
    settings = _settings(tmp_path / "home", [str(allowed)])
    before = local_snapshot(root)
    bad_targets = [
        str(outside),  # outside the allowlist
        str(outside / "secret.csv"),
        str(allowed / "escape"),  # a symlink out of the allowed dir
        str(allowed / "escape" / "secret.csv"),  # through a symlinked parent
        str(allowed / "events" / "linked.csv"),  # a symlink to a file outside
        f"{allowed}/../outside",  # '..' out of it
        f"{allowed}/events/../../outside/secret.csv",
        str(root / "allowed2"),  # a sibling sharing the prefix
    ]
    for target in bad_targets:
        for mode in ("missing", "truncated"):
            _refused(settings, _fault(target=target, mode=mode), before, root)
    nothing_allowed = _settings(tmp_path / "home", [])
    _refused(nothing_allowed, _fault(target=str(allowed / "events")), before, root)


def test_production_refused_unless_both_opt_ins(layout: dict[str, Path], tmp_path: Path) -> None:
    root, events = layout["root"], layout["allowed"] / "events"
    before = local_snapshot(root)
    prod = _settings(tmp_path / "home", [str(events)], MLCHAOS_ENVIRONMENT="production")
    _refused(prod, _fault(target=str(events)), before, root)
    _refused(prod, _fault(target=str(events)), before, root, SafetySpec(allow_production=True))
    dev = _settings(tmp_path / "home", [str(events)])
    _refused(dev, _fault(target=str(events)), before, root, SafetySpec(environment="prod"))
    opted = _settings(
        tmp_path / "home",
        [str(events)],
        MLCHAOS_ENVIRONMENT="production",
        MLCHAOS_ALLOW_PRODUCTION="1",
    )
    ledger = Ledger(opted.ledger_url)
    applied = apply_fault(
        ledger,
        _fault(target=str(events), mode="missing"),
        ApplyContext(seed=1),
        run_id="opted",
        safety=SafetySpec(allow_production=True),
        settings=opted,
    )
    assert not events.exists()
    assert restore_lease(ledger, applied.lease.id, settings=opted).restored
    assert local_snapshot(root) == before


def test_link_inside_target_is_never_followed(layout: dict[str, Path], tmp_path: Path) -> None:
    """A target dir holding a link to an outside file: faults and restores leave it alone."""
    root, events, secret = layout["root"], layout["allowed"] / "events", layout["outside"]
    before, secret_before = local_snapshot(root), local_snapshot(secret)
    settings = _settings(tmp_path / "home", [str(events)])
    ledger = Ledger(settings.ledger_url)
    for mode in ("truncated", "empty", "missing", "error"):
        applied = apply_fault(
            ledger,
            _fault(target=str(events), mode=mode, keep_fraction=0.5),
            ApplyContext(seed=3),
            run_id=f"link-{mode}",
            safety=SafetySpec(),
            settings=settings,
        )
        assert local_snapshot(secret) == secret_before, f"{mode} wrote through the link"
        assert restore_lease(ledger, applied.lease.id, settings=settings).restored
        assert local_snapshot(root) == before
        assert local_snapshot(secret) == secret_before


def test_s3_limited_to_allowlisted_buckets_and_prefixes(
    s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    other = f"{s3_bucket}-other"
    s3_client.create_bucket(Bucket=other)
    for bucket in (s3_bucket, other):
        for prefix in ("allowed/", "allowed-not/", "elsewhere/"):
            s3_client.put_object(Bucket=bucket, Key=f"{prefix}a.csv", Body=CSV)
    snap = {b: s3_snapshot(s3_client, b) for b in (s3_bucket, other)}
    settings = _settings(tmp_path / "home", [f"s3://{s3_bucket}/allowed/"])
    ledger = Ledger(settings.ledger_url)
    for target in (
        f"s3://{s3_bucket}/allowed-not/",
        f"s3://{s3_bucket}/elsewhere/",
        f"s3://{s3_bucket}/",
        f"s3://{s3_bucket}",
        f"s3://{other}/allowed/",
        f"s3://{s3_bucket}/allowed/../elsewhere/",
    ):
        with pytest.raises(SafetyError):
            apply_fault(
                ledger,
                _fault(target=target),
                ApplyContext(seed=1),
                run_id="s3",
                safety=SafetySpec(),
                settings=settings,
            )
    assert {b: s3_snapshot(s3_client, b) for b in (s3_bucket, other)} == snap
    assert ledger.leases() == []
    applied = apply_fault(
        ledger,
        _fault(target=f"s3://{s3_bucket}/allowed/"),
        ApplyContext(seed=1),
        run_id="s3ok",
        safety=SafetySpec(),
        settings=settings,
    )
    assert restore_lease(ledger, applied.lease.id, settings=settings).restored
    assert {b: s3_snapshot(s3_client, b) for b in (s3_bucket, other)} == snap


def _experiments(path: Path, target: str, **safety: Any) -> Path:
    exp = {
        "name": "guarded",
        "faults": [{"fault": "upstream_outage", "target": target}],
        "safety": safety,
    }
    path.write_text(yaml.safe_dump({"experiments": [exp]}))
    return path


@pytest.mark.parametrize("dry_run", [False, True])
def test_cli_refusals_are_one_line_and_touch_nothing(
    layout: dict[str, Path],
    tmp_path: Path,
    cli: Any,
    one_line_error: Any,
    tiny_pipeline: dict[str, str],
    dry_run: bool,
) -> None:
    root, allowed, events = layout["root"], layout["allowed"], layout["allowed"] / "events"
    home = tmp_path / "home"
    base = {
        **tiny_pipeline,
        "MLCHAOS_HOME": str(home),
        "MLCHAOS_LEDGER_URL": f"sqlite:///{home / 'ledger.db'}",
        "MLCHAOS_ALLOWED_TARGETS": str(events),
        "MLCHAOS_ENVIRONMENT": "dev",
    }
    flags = ["--dry-run"] if dry_run else []
    before = local_snapshot(root)
    cases = [
        (_experiments(tmp_path / "out.yaml", str(layout["outside"])), {}, "allowlist"),
        (_experiments(tmp_path / "dots.yaml", f"{events}/../../outside"), {}, "allowlist"),
        (
            _experiments(tmp_path / "link.yaml", str(allowed / "escape")),
            {"MLCHAOS_ALLOWED_TARGETS": str(allowed)},
            "allowlist",
        ),
        (
            _experiments(tmp_path / "prod.yaml", str(events)),
            {"MLCHAOS_ENVIRONMENT": "production"},
            "production",
        ),
        (
            _experiments(tmp_path / "prodspec.yaml", str(events), environment="production"),
            {},
            "production",
        ),
        (
            _experiments(
                tmp_path / "half.yaml", str(events), environment="production", allow_production=True
            ),
            {},
            "production",
        ),
    ]
    for path, env, needle in cases:
        done = cli("run", str(path), "--pipeline", "tinypipe:pipeline", *flags, env={**base, **env})
        one_line_error(done, needle)
        assert local_snapshot(root) == before, path.name
    if (home / "ledger.db").exists():
        assert Ledger(f"sqlite:///{home / 'ledger.db'}").leases() == []
    opted = _experiments(
        tmp_path / "opted.yaml", str(events), environment="production", allow_production=True
    )
    done = cli(
        "run",
        str(opted),
        "--pipeline",
        "tinypipe:pipeline",
        *flags,
        env={**base, "MLCHAOS_ALLOW_PRODUCTION": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert local_snapshot(root) == before


# ------------------------------------------------------------------ run-time input only narrows
def _runtime_apply(
    settings: Any,
    requested: dict[str, Any],
    fault: Any,
    deployment: list[SafetySpec] | None = None,
    where: str = "dag_run.conf",
) -> Any:
    """What an adapter does with an experiment from run-time input: bound its safety by the
    deployment, then apply under the bounded spec."""
    safety = bound_runtime_safety(
        SafetySpec.model_validate(requested),
        deployment=deployment or [],
        settings=settings,
        where=where,
    )
    return apply_fault(
        Ledger(settings.ledger_url),
        fault,
        ApplyContext(seed=1),
        run_id="runtime",
        safety=safety,
        settings=settings,
    )


def _nothing_touched(settings: Any, root: Path, before: dict[str, str]) -> None:
    assert local_snapshot(root) == before, "a refused fault changed data"
    assert Ledger(settings.ledger_url).leases() == [], "a refused fault took a lease"
    assert not settings.backup_dir.exists(), "a refused fault wrote a backup"


def test_runtime_widening_is_refused_in_one_line_before_anything_is_touched(
    layout: dict[str, Path], tmp_path: Path
) -> None:
    root, allowed, events, outside = (
        layout["root"],
        layout["allowed"],
        layout["allowed"] / "events",
        layout["outside"],
    )
    before = local_snapshot(root)
    # issue 9 item 5: nothing allowed by the deployment, the run conf grants itself a directory
    unset = _settings(tmp_path / "home", [])
    with pytest.raises(SafetyError) as info:
        _runtime_apply(
            unset, {"allowed_targets": [str(outside)]}, _fault(target=str(outside / "secret.csv"))
        )
    assert str(info.value) == (
        f"dag_run.conf: safety.allowed_targets '{outside}' is outside the deployment "
        "allowlist: refused"
    )
    _nothing_touched(unset, root, before)

    deployed = _settings(tmp_path / "home", [str(events)])
    dag_code = [SafetySpec(allowed_targets=[str(events)], ttl_s=300)]
    cases = [
        ({"allowed_targets": [str(outside)]}, str(outside), "allowed_targets"),
        ({"allowed_targets": [str(allowed)]}, str(events), "allowed_targets"),  # the parent
        ({"allowed_targets": [str(allowed / "escape")]}, str(outside), "allowed_targets"),
        ({"allowed_targets": [f"{events}/../../outside"]}, str(outside), "allowed_targets"),
        ({"ttl_s": 3600}, str(events), "ttl_s"),
        ({"allow_production": True}, str(events), "allow_production"),
        ({"environment": "staging"}, str(events), "environment"),
    ]
    for requested, target, field in cases:
        with pytest.raises(SafetyError) as info:
            _runtime_apply(deployed, requested, _fault(target=target), dag_code)
        message = str(info.value)
        assert message.startswith(f"dag_run.conf: safety.{field} ") and "\n" not in message
        assert message.endswith(": refused"), message
        _nothing_touched(deployed, root, before)


def test_runtime_narrowing_refuses_what_the_deployment_allows_but_the_run_did_not_list(
    layout: dict[str, Path], tmp_path: Path
) -> None:
    root, allowed = layout["root"], layout["allowed"]
    (allowed / "other").mkdir()
    (allowed / "other" / "b.csv").write_bytes(CSV)
    before = local_snapshot(root)
    settings = _settings(tmp_path / "home", [str(allowed)])
    narrowed = {"allowed_targets": [str(allowed / "events")], "ttl_s": 60}
    with pytest.raises(SafetyError, match="not in the allowlist"):
        _runtime_apply(settings, narrowed, _fault(target=str(allowed / "other")))
    _nothing_touched(settings, root, before)
    applied = _runtime_apply(settings, narrowed, _fault(target=str(allowed / "events")))
    assert applied.lease.expires_at - applied.lease.acquired_at == pytest.approx(60, abs=1)
    assert not (allowed / "events").exists()
    assert restore_lease(Ledger(settings.ledger_url), applied.lease.id, settings=settings).restored
    assert local_snapshot(root) == before
