"""Overhead of the TCP fault proxy (no toxic) against a direct connection, side by side.

A threaded echo server on loopback stands in for the dependency (a Redis-sized exchange: 256-byte
request, same-size answer). ``--clients`` threads each keep one connection and do request/answer
round trips for ``--seconds``, first as fast as they can (saturation), then paced to the game
day's load (``--rate`` round trips/s in all); direct and proxied rounds alternate so machine noise
hits both alike.

    python benchmarks/proxy.py [--clients 8] [--seconds 3] [--rounds 3] [--rate 600]

Last line, at the game day's load: ``proxy overhead: p50 <ms> ms, throughput <ratio>x direct``
(p50 = added median latency per round trip; ratio = proxied round trips / direct ones in the same
time). The saturated throughput ratio is printed above it.
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


def load(address: tuple[str, int], clients: int, seconds: float, rate: float = 0.0) -> list[float]:
    """Round-trip latencies (s) of ``clients`` connections on ``address``: as fast as they can,
    or paced to ``rate`` round trips per second in all (the game day's load)."""
    payload = b"k" * 256
    results: list[list[float]] = [[] for _ in range(clients)]
    stop = time.perf_counter() + seconds
    gap = clients / rate if rate > 0 else 0.0

    def client(out: list[float]) -> None:
        due = time.perf_counter()
        with socket.create_connection(address, timeout=5) as conn:  # never hangs for good
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while time.perf_counter() < stop:
                if gap:
                    due += gap
                    time.sleep(max(0.0, due - time.perf_counter()))
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
    parser.add_argument(
        "--rate",
        type=float,
        default=600.0,
        help="the game day's load in round trips/s (150%% of the API's peak here is ~450-600)",
    )
    args = parser.parse_args()
    server = _Server(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runs: dict[str, dict[str, list[float]]] = {}
    with FaultProxy(server.server_address[:2]) as proxy:
        for mode, rate in (("saturated", 0.0), ("game-day load", args.rate)):
            runs[mode] = {"direct": [], "proxied": []}
            for _ in range(args.rounds):  # alternated, so machine noise hits both alike
                runs[mode]["direct"] += load(
                    server.server_address[:2], args.clients, args.seconds, rate
                )
                runs[mode]["proxied"] += load(proxy.address, args.clients, args.seconds, rate)
    server.shutdown()

    def pct(xs: list[float], q: float) -> float:
        return statistics.quantiles(xs, n=100)[int(q) - 1] * 1000

    span = args.rounds * args.seconds
    for mode, pair in runs.items():
        for name, xs in pair.items():
            print(
                f"{mode:<14} {name:<8} {len(xs) / span:9.0f} round trips/s  "
                f"p50 {pct(xs, 50):.3f} ms  p99 {pct(xs, 99):.3f} ms"
            )
    sat = runs["saturated"]
    print(f"saturated: throughput {len(sat['proxied']) / len(sat['direct']):.2f}x direct")
    gd = runs["game-day load"]
    added_p99 = pct(gd["proxied"], 99) - pct(gd["direct"], 99)
    print(f"at {args.rate:g} round trips/s: added p99 {added_p99:.3f} ms")
    print(
        f"proxy overhead: p50 {pct(gd['proxied'], 50) - pct(gd['direct'], 50):.3f} ms, "
        f"throughput {len(gd['proxied']) / len(gd['direct']):.2f}x direct"
    )


if __name__ == "__main__":
    main()
