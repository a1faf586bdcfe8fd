"""Overhead of the TCP fault proxy (no toxic) against a direct connection, side by side.

A threaded echo server on loopback stands in for the dependency (a Redis-sized exchange: 256-byte
request, same-size answer). ``--clients`` threads each keep one connection and do request/answer
round trips for ``--seconds``; the run alternates direct and proxied rounds so machine noise hits
both alike.

    python benchmarks/proxy.py [--clients 8] [--seconds 3] [--rounds 3]

Last line: ``proxy overhead: p50 <ms> ms, throughput <ratio>x direct`` (p50 = added median
latency per round trip; ratio = proxied round trips per second / direct ones).
"""

from __future__ import annotations

import argparse
import socket
import socketserver
import statistics
import threading
import time

from mlchaos_orchestration.interceptors.proxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def load(address: tuple[str, int], clients: int, seconds: float) -> list[float]:
    """Round-trip latencies (s) of ``clients`` connections hammering ``address``."""
    payload = b"k" * 256
    results: list[list[float]] = [[] for _ in range(clients)]
    stop = time.perf_counter() + seconds

    def client(out: list[float]) -> None:
        with socket.create_connection(address, timeout=5) as conn:  # never hangs for good
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while time.perf_counter() < stop:
                start = time.perf_counter()
                conn.sendall(payload)
                got = 0
                while got < len(payload):
                    chunk = conn.recv(65536)
                    if not chunk:
                        raise ConnectionError("the proxy closed the connection")
                    got += len(chunk)
                out.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for r in results for x in r]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = _Server(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    direct: list[float] = []
    proxied: list[float] = []
    with FaultProxy(server.server_address[:2]) as proxy:
        for _ in range(args.rounds):
            direct += load(server.server_address[:2], args.clients, args.seconds)
            proxied += load(proxy.address, args.clients, args.seconds)
    server.shutdown()

    def pct(xs: list[float], q: float) -> float:
        return statistics.quantiles(xs, n=100)[int(q) - 1] * 1000

    span = args.rounds * args.seconds
    for name, xs in (("direct", direct), ("proxied", proxied)):
        print(
            f"{name:<8} {len(xs) / span:9.0f} round trips/s  p50 {pct(xs, 50):.3f} ms  "
            f"p99 {pct(xs, 99):.3f} ms"
        )
    print(f"added p99: {pct(proxied, 99) - pct(direct, 99):.3f} ms")
    print(
        f"proxy overhead: p50 {pct(proxied, 50) - pct(direct, 50):.3f} ms, "
        f"throughput {len(proxied) / len(direct):.2f}x direct"
    )


if __name__ == "__main__":
    main()
