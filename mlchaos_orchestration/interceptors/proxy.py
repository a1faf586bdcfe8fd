"""A TCP fault proxy in front of any dependency (Redis, PostgreSQL, an HTTP service), with the
toxics people know from Toxiproxy, changed live while traffic flows.

Kernel ``netem`` is not available everywhere; a userspace proxy is the portable way to add latency
or failures to one dependency only. The proxy listens on a loopback port and forwards to
``upstream``; clients are pointed at :attr:`FaultProxy.address` instead of the real server.

Toxics (each on the ``upstream`` stream, client -> server, or ``downstream``, server -> client,
and applied to a seeded ``toxicity`` share of connections, decided once per connection):

* ``latency``     - delay every chunk by ``latency_ms`` +- ``jitter_ms`` (order preserved);
* ``bandwidth``   - at most ``rate_kbps`` kilobytes per second;
* ``slicer``      - cut chunks into ``average_size`` +- ``size_variation`` byte pieces, ``delay_us``
  apart;
* ``timeout``     - stop forwarding; close the connection after ``timeout_ms`` (0: keep it open
  and drop its data while the toxic is there, a blackhole);
* ``reset_peer``  - reset the connection (TCP RST) after ``timeout_ms``;
* ``limit_data``  - close the connection once ``bytes`` bytes went through.

The proxy runs its own asyncio loop in a daemon thread, so it works beside any synchronous code;
:meth:`FaultProxy.stop` closes every connection and the listening socket.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mlchaos_orchestration.errors import SpecError

Stream = Literal["upstream", "downstream"]
KINDS = ("latency", "bandwidth", "slicer", "timeout", "reset_peer", "limit_data")
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Toxic:
    """One toxic: ``kind`` with its ``attributes``, on one ``stream``, for a ``toxicity`` share
    of connections."""

    name: str
    kind: str
    stream: Stream = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in KINDS:
            problems.append(f"toxic {self.name!r}: unknown kind {self.kind!r} ({', '.join(KINDS)})")
        if self.stream not in ("upstream", "downstream"):
            problems.append(f"toxic {self.name!r}: stream must be upstream or downstream")
        if not 0.0 <= self.toxicity <= 1.0:
            problems.append(f"toxic {self.name!r}: toxicity must be within [0, 1]")
        if any(not isinstance(v, (int, float)) or v < 0 for v in self.attributes.values()):
            problems.append(f"toxic {self.name!r}: attributes must be numbers >= 0")
        if problems:
            raise SpecError(problems)

    def attr(self, key: str, default: float = 0.0) -> float:
        return float(self.attributes.get(key, default))

    def hits(self, connection: int, seed: int) -> bool:
        """Whether this toxic acts on connection number ``connection`` (seeded, stable)."""
        if self.toxicity >= 1.0:
            return True
        digest = hashlib.sha256(f"{seed}:{self.name}:{connection}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.toxicity


class _Closed(Exception):
    """A toxic ended the connection."""


@dataclass
class _Pipe:
    """One direction of one connection and the toxic state it keeps."""

    stream: Stream
    connection: int
    sent: int = 0
    release_at: float = 0.0


class FaultProxy:
    """A TCP proxy ``listen`` -> ``upstream`` whose toxics can change at any time."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        seed: int = 0,
        name: str = "proxy",
    ):
        host = listen[0]
        if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
            raise SpecError([f"{name}: the proxy listens on loopback only, not {host!r}"])
        self.upstream = upstream
        self.name = name
        self.seed = seed
        self._listen = listen
        self._toxics: dict[str, Toxic] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._count = 0
        self.address: tuple[str, int] = ("", 0)
        self.stats = {
            "connections": 0,
            "upstream_bytes": 0,
            "downstream_bytes": 0,
            "closed_by_toxic": 0,
            "upstream_errors": 0,
        }

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FaultProxy:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._accept, *self._listen, reuse_address=True)
                )
                self.address = self._server.sockets[0].getsockname()[:2]
            except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=f"mlchaos-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close the listener and every open connection; idempotent."""
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.close()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:  # connection pumps: finish them, none left half-started
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if self._server is not None:
                await self._server.wait_closed()

        if loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url_host_port(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    # ------------------------------------------------------------------ toxics (live)
    def add(self, toxic: Toxic) -> None:
        with self._lock:
            self._toxics[toxic.name] = toxic

    def update(self, name: str, **changes: Any) -> None:
        with self._lock:
            self._toxics[name] = replace(self._toxics[name], **changes)

    def remove(self, name: str) -> None:
        with self._lock:
            self._toxics.pop(name, None)

    def set_toxics(self, toxics: Iterable[Toxic]) -> None:
        with self._lock:
            self._toxics = {t.name: t for t in toxics}

    def clear(self) -> None:
        self.set_toxics(())

    def toxics(self) -> list[Toxic]:
        with self._lock:
            return list(self._toxics.values())

    def _active(self, pipe: _Pipe) -> list[Toxic]:
        return [
            t
            for t in self.toxics()
            if t.stream == pipe.stream and t.hits(pipe.connection, self.seed)
        ]

    # ------------------------------------------------------------------ data path
    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._count += 1
        number = self._count
        self.stats["connections"] += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            self.stats["upstream_errors"] += 1
            client_w.close()
            return
        self._writers.update((client_w, server_w))
        up = asyncio.ensure_future(
            self._pump(client_r, server_w, _Pipe("upstream", number), client_w)
        )
        down = asyncio.ensure_future(
            self._pump(server_r, client_w, _Pipe("downstream", number), client_w)
        )
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for task in (up, down):
            task.cancel()
        for writer in (client_w, server_w):
            self._writers.discard(writer)
            writer.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pipe: _Pipe,
        client: asyncio.StreamWriter,
    ) -> None:
        rng = random.Random(f"{self.seed}:{pipe.connection}:{pipe.stream}")
        try:
            while data := await reader.read(CHUNK):
                active = self._active(pipe) if self._toxics else []
                dropped = False
                for toxic in active:
                    dropped = await self._before(toxic, pipe, client) or dropped
                if dropped:
                    continue
                limit = min(
                    (int(t.attr("bytes")) for t in active if t.kind == "limit_data"), default=None
                )
                for piece in self._pieces(data, active, rng):
                    if limit is not None:
                        piece = piece[: max(0, limit - pipe.sent)]
                    await self._delay(piece, pipe, active, rng)
                    writer.write(piece)
                    pipe.sent += len(piece)  # counted as handed over, before the drain's wait
                    self.stats[f"{pipe.stream}_bytes"] += len(piece)
                    await writer.drain()
                    if limit is not None and pipe.sent >= limit:
                        raise _Closed
        except _Closed:
            self.stats["closed_by_toxic"] += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass

    async def _before(self, toxic: Toxic, pipe: _Pipe, client: asyncio.StreamWriter) -> bool:
        """Act before a chunk is forwarded; True drops the chunk (a blackhole)."""
        if toxic.kind == "timeout":
            wait = toxic.attr("timeout_ms") / 1000
            if wait <= 0:  # blackhole: the connection stays open, its data goes nowhere
                return True
            await asyncio.sleep(wait)
            raise _Closed
        if toxic.kind == "reset_peer":
            await asyncio.sleep(toxic.attr("timeout_ms") / 1000)
            sock = client.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close() sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.transport.abort()
            raise _Closed
        return False

    def _pieces(self, data: bytes, active: list[Toxic], rng: random.Random) -> list[bytes]:
        slicer = next((t for t in active if t.kind == "slicer"), None)
        if slicer is None:
            return [data]
        size, spread = (
            max(1, int(slicer.attr("average_size", 64))),
            int(slicer.attr("size_variation")),
        )
        out, i = [], 0
        while i < len(data):
            n = max(1, size + rng.randint(-spread, spread)) if spread else size
            out.append(data[i : i + n])
            i += n
        return out

    async def _delay(
        self, piece: bytes, pipe: _Pipe, active: list[Toxic], rng: random.Random
    ) -> None:
        """Hold ``piece`` until its release time: latency delays each piece independently (order
        kept), bandwidth and slicer delays add up one piece after another."""
        latency = serial = 0.0
        for toxic in active:
            if toxic.kind == "latency":
                jitter = toxic.attr("jitter_ms")
                latency += max(0.0, toxic.attr("latency_ms") + rng.uniform(-jitter, jitter)) / 1e3
            elif toxic.kind == "bandwidth" and toxic.attr("rate_kbps") > 0:
                serial += len(piece) / (toxic.attr("rate_kbps") * 1024)
            elif toxic.kind == "slicer":
                serial += toxic.attr("delay_us") / 1e6
        if latency <= 0 and serial <= 0:
            return
        now = time.monotonic()
        pipe.release_at = max(pipe.release_at + serial, now + latency + serial)
        await asyncio.sleep(max(0.0, pipe.release_at - now))
