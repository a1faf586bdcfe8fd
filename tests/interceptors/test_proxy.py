"""The TCP fault proxy against real servers on loopback: a threaded echo server and PostgreSQL.
Each toxic does what it says, toxics change live, and stop() leaves nothing listening."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from mlchaos_orchestration.errors import SpecError
from mlchaos_orchestration.interceptors.proxy import FaultProxy, Toxic


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.server.pieces.append(len(data))  # type: ignore[attr-defined]
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo() -> Iterator[_EchoServer]:
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    server.pieces = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def proxy(echo: _EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(echo.server_address[:2], seed=3) as running:
        yield running


def _roundtrip(
    address: tuple[str, int], payload: bytes, timeout: float = 5.0
) -> tuple[bytes, float]:
    start = time.perf_counter()
    with socket.create_connection(address, timeout=timeout) as conn:
        conn.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += chunk
    return got, time.perf_counter() - start


def test_without_toxics_bytes_pass_unchanged(proxy: FaultProxy) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    got, _ = _roundtrip(proxy.address, payload)
    assert got == payload
    deadline = time.monotonic() + 2  # the proxy's thread counts right after it forwards
    while proxy.stats["downstream_bytes"] < len(payload) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proxy.stats["upstream_bytes"] == proxy.stats["downstream_bytes"] == len(payload)


def test_latency_and_jitter_delay_each_answer(proxy: FaultProxy) -> None:
    _, base = _roundtrip(proxy.address, b"ping")
    proxy.add(Toxic("slow", "latency", attributes={"latency_ms": 150, "jitter_ms": 30}))
    times = [_roundtrip(proxy.address, b"ping")[1] for _ in range(5)]
    assert all(0.115 <= t <= 0.5 for t in times), times
    assert max(times) - min(times) > 0.005  # jitter: not all the same delay
    proxy.remove("slow")
    assert _roundtrip(proxy.address, b"ping")[1] < base + 0.1


def test_upstream_latency_is_changed_live_on_an_open_connection(proxy: FaultProxy) -> None:
    with socket.create_connection(proxy.address, timeout=5) as conn:
        for expect_slow in (False, True, False):
            if expect_slow:
                proxy.add(Toxic("up", "latency", stream="upstream", attributes={"latency_ms": 200}))
            else:
                proxy.remove("up")
            start = time.perf_counter()
            conn.sendall(b"x")
            assert conn.recv(16) == b"x"
            elapsed = time.perf_counter() - start
            assert (elapsed >= 0.19) is expect_slow, elapsed


def test_bandwidth_limits_throughput(proxy: FaultProxy) -> None:
    proxy.add(Toxic("thin", "bandwidth", attributes={"rate_kbps": 512}))
    got, elapsed = _roundtrip(proxy.address, b"z" * 256 * 1024, timeout=10)
    assert len(got) == 256 * 1024
    assert 0.4 <= elapsed <= 2.0, elapsed  # 256 KiB at 512 KiB/s ~ 0.5 s


def test_slicer_cuts_data_into_small_pieces(proxy: FaultProxy, echo: _EchoServer) -> None:
    proxy.add(
        Toxic(
            "cut",
            "slicer",
            stream="upstream",
            attributes={"average_size": 100, "size_variation": 20, "delay_us": 2000},
        )
    )
    got, _ = _roundtrip(proxy.address, b"s" * 4000)
    assert got == b"s" * 4000
    pieces = sorted(echo.pieces)  # type: ignore[attr-defined]
    assert len(pieces) >= 10 and pieces[len(pieces) // 2] <= 120  # recv may join a few


def test_timeout_closes_the_connection_without_forwarding(proxy: FaultProxy) -> None:
    proxy.add(Toxic("cut", "timeout", attributes={"timeout_ms": 200}))
    start = time.perf_counter()
    got, _ = _roundtrip(proxy.address, b"hello")
    assert got == b""
    assert 0.18 <= time.perf_counter() - start <= 1.5
    assert proxy.stats["closed_by_toxic"] >= 1


def test_blackhole_drops_data_but_keeps_the_connection(proxy: FaultProxy) -> None:
    proxy.add(Toxic("hole", "timeout", stream="upstream", attributes={"timeout_ms": 0}))
    with socket.create_connection(proxy.address, timeout=0.5) as conn:
        conn.sendall(b"lost")
        with pytest.raises(TimeoutError):
            conn.recv(16)
        proxy.remove("hole")
        conn.settimeout(5)
        conn.sendall(b"back")
        assert conn.recv(16) == b"back"


def test_reset_peer_resets_the_client(proxy: FaultProxy) -> None:
    proxy.add(Toxic("rst", "reset_peer", stream="upstream", attributes={"timeout_ms": 50}))
    with socket.create_connection(proxy.address, timeout=5) as conn:
        conn.sendall(b"hi")
        with pytest.raises(ConnectionResetError):
            conn.recv(16)
            conn.sendall(b"again")
            conn.recv(16)


def test_limit_data_closes_after_n_bytes(proxy: FaultProxy) -> None:
    proxy.add(Toxic("cap", "limit_data", attributes={"bytes": 1000}))
    got, _ = _roundtrip(proxy.address, b"d" * 5000)
    assert len(got) == 1000  # cut at exactly the limit, then closed


def test_toxicity_picks_a_seeded_share_of_connections(proxy: FaultProxy) -> None:
    proxy.add(Toxic("some", "latency", toxicity=0.5, attributes={"latency_ms": 300}))
    slow = [_roundtrip(proxy.address, b"p")[1] >= 0.29 for _ in range(20)]
    assert 5 <= sum(slow) <= 15, sum(slow)
    picked = [Toxic("some", "latency", toxicity=0.5).hits(i, 3) for i in range(1, 21)]
    assert slow == picked  # the same connections, decided by seed and connection number


def test_postgresql_through_the_proxy(pg_server, pg_url: str) -> None:  # noqa: ANN001
    import psycopg2

    host, port = "127.0.0.1", pg_server.port
    with FaultProxy((host, port), name="pg") as pg_proxy:
        dsn = pg_url.replace("postgresql+psycopg2://", "postgresql://").replace(
            f"{host}:{port}", pg_proxy.url_host_port
        )
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            start = time.perf_counter()
            cur.execute("SELECT 1")
            fast = time.perf_counter() - start
            pg_proxy.add(Toxic("slow", "latency", attributes={"latency_ms": 100}))
            start = time.perf_counter()
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
            assert time.perf_counter() - start >= fast + 0.09


def test_stop_leaves_nothing_listening(echo: _EchoServer) -> None:
    proxy = FaultProxy(echo.server_address[:2]).start()
    address = proxy.address
    conn = socket.create_connection(address, timeout=5)
    proxy.stop()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=1).close()
    assert not any(t.name == "mlchaos-proxy" for t in threading.enumerate())
    conn.close()


def test_bad_toxics_and_non_loopback_listeners_are_refused(echo: _EchoServer) -> None:
    with pytest.raises(SpecError, match="unknown kind 'lag'"):
        Toxic("x", "lag")
    with pytest.raises(SpecError, match="toxicity must be within"):
        Toxic("x", "latency", toxicity=2)
    with pytest.raises(SpecError, match="loopback only"):
        FaultProxy(echo.server_address[:2], listen=("0.0.0.0", 0))
