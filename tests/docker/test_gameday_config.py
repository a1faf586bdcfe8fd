"""The staging stack's game-day parts: Prometheus config checked by promtool, the Grafana
dashboard checked against the dashboard JSON model of schemaVersion 39 (Grafana 11) and every
panel query parsed by a real Prometheus."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest
import yaml

from mlchaos_orchestration.gameday.stack import PrometheusServer, http_get

DOCKER = Path(__file__).resolve().parents[2] / "docker"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "gameday.json"
DATASOURCES = DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="prometheus not installed")
def test_prometheus_config_passes_promtool() -> None:
    out = subprocess.run(
        ["promtool", "check", "config", str(DOCKER / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dashboard_follows_the_schema_version_39_model() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["schemaVersion"] == 39 and dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    for panel in dash["panels"]:
        assert panel["type"] == "timeseries" and panel["title"]
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"} and grid["x"] + grid["w"] <= 24
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}
        assert panel["fieldConfig"]["defaults"]["unit"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)) and all(t["expr"] for t in panel["targets"])


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed")
def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    with PrometheusServer(["127.0.0.1:9"], tmp_path) as prom:
        for expr in exprs:  # a syntax error answers HTTP 400 (raised by http_get)
            body = json.loads(
                http_get(f"{prom.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            )
            assert body["status"] == "success", expr
