"""Real servers for the game-day tests: Redis (Debian's redis-server), the prediction API under
uvicorn, a fault proxy in front of Redis; Prometheus where a test asks for it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlchaos_orchestration.gameday.materialize import ServingAssets, prepare_serving
from mlchaos_orchestration.gameday.serving import ServingConfig
from mlchaos_orchestration.gameday.stack import ApiServer, RedisServer
from mlchaos_orchestration.interceptors.proxy import FaultProxy

needs_redis = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server missing: scripts/bootstrap.sh --with-serving installs it",
)


@dataclass
class Serving:
    redis: RedisServer
    proxy: FaultProxy
    assets: ServingAssets
    workdir: Path

    @property
    def proxied_url(self) -> str:
        return f"redis://{self.proxy.address[0]}:{self.proxy.address[1]}/0"

    def config(self, mitigation: bool = True) -> ServingConfig:
        return ServingConfig(
            self.proxied_url,
            str(self.assets.model_path),
            str(self.assets.defaults_path),
            mitigation=mitigation,
        )


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    if shutil.which("redis-server") is None:
        pytest.fail(
            "redis-server missing: run scripts/bootstrap.sh --with-serving (make test does)"
        )
    work = tmp_path_factory.mktemp("serving")
    with RedisServer(work / "redis") as redis:
        assets = prepare_serving(redis.url, work / "assets")
        proxy = FaultProxy(("127.0.0.1", redis.port), name="redis").start()
        try:
            yield Serving(redis, proxy, assets, work)
        finally:
            proxy.stop()


@pytest.fixture()
def api(serving: Serving, request: Any) -> Iterator[ApiServer]:
    mitigation = getattr(request, "param", True)
    with ApiServer(serving.config(mitigation).env(), serving.workdir / "api") as server:
        yield server
    serving.proxy.clear()
