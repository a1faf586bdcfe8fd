"""Settings: MLCHAOS_* first, then Airflow's [mlchaos] section (env form or airflow.cfg inside
Airflow processes), then defaults; reading them never imports Airflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlchaos_orchestration.settings import get_settings


def test_airflow_env_form_is_read_and_mlchaos_variables_win(tmp_path: Path) -> None:
    env = {
        "MLCHAOS_HOME": str(tmp_path),
        "AIRFLOW__MLCHAOS__ALLOWED_TARGETS": "/data/raw, s3://lake/raw/",
        "AIRFLOW__MLCHAOS__ENVIRONMENT": "staging",
        "AIRFLOW__MLCHAOS__REPORTS_LOCATION": "s3://lake/reports/",
    }
    settings = get_settings(env)
    assert settings.allowed_targets == ("/data/raw", "s3://lake/raw/")
    assert settings.environment == "staging"
    assert settings.reports_location == "s3://lake/reports/"
    assert get_settings({**env, "MLCHAOS_ENVIRONMENT": "dev"}).environment == "dev"


def _child(code: str, home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLCHAOS_", "AIRFLOW__"))}
    env.update({"AIRFLOW_HOME": str(home), "MLCHAOS_HOME": str(home / "mlchaos"), **extra})
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180
    )


def test_airflow_cfg_section_is_read_inside_airflow(tmp_path: Path) -> None:
    (tmp_path / "airflow.cfg").write_text(
        "[mlchaos]\nallowed_targets = /from/cfg\nenvironment = staging\n"
    )
    code = (
        "import sys\n"
        "from mlchaos_orchestration.settings import get_settings\n"
        "print(get_settings().allowed_targets, 'airflow' in sys.modules)\n"
        "import airflow.configuration\n"
        "s = get_settings(); print(s.allowed_targets, s.environment)\n"
    )
    out = _child(code, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == "() False"  # outside Airflow: neither read nor imported
    assert lines[-1] == "('/from/cfg',) staging"
    won = _child(code, tmp_path, MLCHAOS_ALLOWED_TARGETS="/from/env")
    assert won.stdout.strip().splitlines()[-1] == "('/from/env',) staging"


def test_the_provider_documents_the_mlchaos_section(tmp_path: Path) -> None:
    code = (
        "from airflow.providers_manager import ProvidersManager\n"
        "from airflow.configuration import conf\n"
        "info = ProvidersManager().providers['mlchaos-orchestration']\n"
        "print(sorted(info.data['config']['mlchaos']['options']))\n"
        "print(conf.get('mlchaos', 'environment'), repr(conf.get('mlchaos', 'allowed_targets')))\n"
    )
    out = _child(code, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    options, defaults = out.stdout.strip().splitlines()[-2:]
    for name in ("ledger_url", "allowed_targets", "environment", "reports_location"):
        assert repr(name) in options
    assert defaults == "dev ''"
