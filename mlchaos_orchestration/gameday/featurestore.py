"""The online feature store: one Redis hash per user, written by the example pipeline's
materialize step and read by the prediction API with a timeout."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

KEY_PREFIX = "mlchaos:features:"
#: stored per user; the request brings ``amount`` and the hour itself
ONLINE_FEATURES = ("age", "account_age_days", "n_tx_24h", "country", "device")


def _key(user_id: int | str) -> str:
    return f"{KEY_PREFIX}{user_id}"


class FeatureStore:
    """Reads and writes online features in Redis (``redis://host:port/db``).

    ``timeout_s`` bounds every read (socket connect and read); a slow or dead Redis raises
    ``redis.exceptions.TimeoutError`` / ``ConnectionError`` instead of hanging the request.
    redis-py's own retries (3 by default since 6.x, with back-off) are switched off: a read
    takes at most ``timeout_s``, and the caller's policy (breaker, fallback) decides.
    """

    def __init__(self, url: str, timeout_s: float = 0.05, pool_size: int = 16) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        self.timeout_s = timeout_s
        self.pool_size = pool_size
        self._async: Any = None
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    def materialize(self, rows: Iterable[Mapping[str, Any]], batch: int = 1000) -> int:
        """Write each row's online features under its ``user_id`` (the last row per user wins);
        return the number of users written."""
        pipe = self._client.pipeline(transaction=False)
        users: set[Any] = set()
        for n, row in enumerate(rows, 1):
            values = {k: json.dumps(_plain(row[k])) for k in ONLINE_FEATURES}
            pipe.hset(_key(row["user_id"]), mapping=values)
            users.add(row["user_id"])
            if n % batch == 0:
                pipe.execute()
        pipe.execute()
        return len(users)

    def read(self, user_id: int | str) -> dict[str, Any] | None:
        """The user's features, or ``None`` if the store has none for them."""
        raw = self._client.hgetall(_key(user_id))
        if not raw:
            return None
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    async def aread(self, user_id: int | str) -> dict[str, Any] | None:
        """:meth:`read` for an event loop, through at most ``pool_size`` connections: a request
        waits for a free connection within the same ``timeout_s`` (as a service's pool does),
        so a slow store exhausts the pool instead of opening connections without bound."""
        if self._async is None:
            self._async = self._async_client()
        raw = await self._async.hgetall(_key(user_id))
        if not raw:
            return None
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    async def warm_up(self) -> None:
        """Open every pooled connection now (best effort: a store that is down stays lazy)."""
        import asyncio

        if self._async is None:
            self._async = self._async_client()
        try:
            await asyncio.gather(*(self._async.ping() for _ in range(self.pool_size)))
        except Exception:  # noqa: BLE001 - the first requests connect (and fall back) instead
            return

    def _async_client(self) -> Any:
        import redis.asyncio as aioredis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=self.pool_size,
            timeout=self.timeout_s,
            socket_timeout=self.timeout_s,
            socket_connect_timeout=self.timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        return aioredis.Redis(connection_pool=pool)

    def user_ids(self, limit: int = 10_000) -> list[int]:
        """Up to ``limit`` user ids present in the store (for load generation)."""
        ids: list[int] = []
        for key in self._client.scan_iter(match=f"{KEY_PREFIX}*", count=1000):
            ids.append(int(key.decode()[len(KEY_PREFIX) :]))
            if len(ids) >= limit:
                break
        return sorted(ids)

    def close(self) -> None:
        self._client.close()


def _plain(value: Any) -> Any:
    """numpy scalars to Python numbers/strings for JSON."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value
