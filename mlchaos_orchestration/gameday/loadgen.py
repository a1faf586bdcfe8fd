"""Load on the prediction API with Locust, as a library, in THIS process only.

``python -m mlchaos_orchestration.gameday.loadgen --host URL --rate RPS --duration S
--ids FILE --out FILE``: Locust users post ``/predict`` for random known users at a constant
total rate; every second one JSON line goes to ``--out``:
``{"t": unix, "requests": n, "failures": n, "p50_ms": x, "p99_ms": x}`` (that second's requests).
Locust patches the standard library with gevent on import: never import this module from an
orchestrator's process; :mod:`.load` starts it as a child process.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import signal
import sys
import time
from pathlib import Path


def users_for(rate: float) -> int:
    """Locust users needed to hold ``rate`` requests/s while responses take up to 0.5 s."""
    return max(4, math.ceil(rate * 0.5))


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="constant-rate load on the prediction API")
    parser.add_argument("--host", required=True)
    parser.add_argument("--rate", type=float, required=True, help="total requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--ids", required=True, help="file of user ids, one per line")
    parser.add_argument("--out", required=True, help="JSON lines, one per second")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import gevent
    from locust import FastHttpUser, constant_throughput, events, task
    from locust.env import Environment

    ids = [int(x) for x in Path(args.ids).read_text().split()]
    rng = random.Random(args.seed)
    n_users = users_for(args.rate)

    class PredictUser(FastHttpUser):
        host = args.host
        wait_time = constant_throughput(args.rate / n_users)
        network_timeout = 5.0
        connection_timeout = 5.0

        def on_start(self) -> None:
            # Locust starts every user in the same instant; without a random phase they would
            # fire in synchronized bursts of n_users requests every period instead of a
            # steady stream (a 75-request burst every 0.5 s tripled p99 at 150 req/s).
            gevent.sleep(rng.uniform(0.0, n_users / args.rate))

        @task
        def predict(self) -> None:
            body = {"user_id": rng.choice(ids), "amount": round(rng.uniform(1, 500), 2)}
            body["hour"] = rng.randrange(24)
            self.client.post("/predict", json=body, name="/predict")

    window: dict[str, list[float]] = {"ok": [], "all": []}
    failures = [0]

    @events.request.add_listener
    def _on_request(response_time: float, exception: object, **_: object) -> None:
        window["all"].append(float(response_time))
        if exception is not None:
            failures[0] += 1

    env = Environment(user_classes=[PredictUser], events=events)
    runner = env.create_local_runner()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    out = Path(args.out).open("a", buffering=1)
    runner.start(n_users, spawn_rate=n_users)
    end = time.time() + args.duration
    next_tick = time.time() + 1.0
    try:
        while not stop["now"] and time.time() < end:
            gevent.sleep(max(0.0, next_tick - time.time()))
            next_tick += 1.0
            times, window["all"] = window["all"], []
            failed, failures[0] = failures[0], 0
            line = {
                "t": round(time.time(), 3),
                "requests": len(times),
                "failures": failed,
                "p50_ms": _percentile(times, 0.50),
                "p99_ms": _percentile(times, 0.99),
                "users": runner.user_count,
            }
            out.write(json.dumps(line) + "\n")
    finally:
        runner.quit()
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
