"""Every issue-14 benchmark, side by side in one run: each in its own process, one after another.

For each benchmark: start and end time, the machine load (``uptime``) just before it, its exit
status and its summary line(s). The summaries are printed together at the end and written to
``benchmarks/results/<UTC time>.txt`` (git-ignored), each benchmark's full output beside it as
``<UTC time>-<name>.log``. Exit status 1 if any benchmark failed (the others still run).

    python benchmarks/run_all.py [--faults-rows 10000000] [--parquet-rows 50000000]
                                 [--parquet-row-group 250000] [--gate-rows 1000000]
                                 [--only faults,gate] [--timeout 3600]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Bench:
    name: str
    args: list[str]
    #: patterns of the summary lines (the issue's figures); the last line when none matches
    summary: tuple[str, ...]
    lines: list[str] = field(default_factory=list)
    status: str = "not run"
    load: str = ""
    started: str = ""
    ended: str = ""
    seconds: float = 0.0

    def summary_lines(self) -> list[str]:
        found = [line for line in self.lines if any(re.match(p, line) for p in self.summary)]
        return found or self.lines[-1:]


def benches(args: argparse.Namespace) -> list[Bench]:
    return [
        Bench(
            "faults",
            ["--rows", str(args.faults_rows)],
            (r"worst ratio vs copy:", r"value faults worst"),
        ),
        Bench(
            "parquet_stream",
            ["--rows", str(args.parquet_rows), "--row-group", str(args.parquet_row_group)],
            (r"parquet \S+ rows:",),
        ),
        Bench("interceptors", [], (r"worst dormant:", r"dormant overhead:")),
        Bench("gate", ["--rows", str(args.gate_rows)], (r"ratio range", r"gate overhead:")),
    ]


def uptime_load() -> str:
    out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    return out.strip().split("load average:")[-1].strip() if out else "?"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%H:%M:%S")


def run(bench: Bench, log: Path, timeout: float) -> None:
    """Run one benchmark in its own process, its output teed to the terminal and ``log``;
    killed after ``timeout`` seconds."""
    bench.load, bench.started = uptime_load(), now()
    print(f"== {bench.name} (start {bench.started} UTC, load {bench.load})", flush=True)
    command = [sys.executable, str(HERE / f"{bench.name}.py"), *bench.args]
    start = time.monotonic()
    with (
        log.open("w") as sink,
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            # each line as it is printed (a pipe would otherwise buffer the whole output)
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ) as proc,
    ):
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            sink.write(line)
            print(line, end="", flush=True)
            bench.lines.append(line.rstrip("\n"))
        code = proc.wait()
        watchdog.cancel()
    bench.seconds = time.monotonic() - start
    bench.ended = now()
    if bench.seconds >= timeout:
        bench.status = f"timed out after {timeout:.0f} s"
    else:
        bench.status = "ok" if code == 0 else f"failed (exit {code})"


def render(results: list[Bench], stamp: str) -> str:
    out = [f"issue-14 benchmarks, one run started {stamp} (machine: {cpus()} CPUs)", ""]
    for bench in results:
        out.append(
            f"{bench.name}: {bench.status}, {bench.started}-{bench.ended} UTC "
            f"({bench.seconds:.0f} s), load before: {bench.load}; args: {' '.join(bench.args)}"
        )
        out.extend(f"    {line}" for line in bench.summary_lines())
    return "\n".join(out) + "\n"


def cpus() -> int:
    return os.cpu_count() or 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults-rows", type=int, default=10_000_000)
    parser.add_argument("--parquet-rows", type=int, default=50_000_000)
    # memory grows with the row-group size: 250k rows x 10 columns (~20 MB) per group is the
    # documented configuration; 500k-row groups peak near 490 MB
    parser.add_argument("--parquet-row-group", type=int, default=250_000)
    parser.add_argument("--gate-rows", type=int, default=1_000_000)
    parser.add_argument("--only", default="", help="comma-separated names (default: all)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per benchmark")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    selected = benches(args)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {b.name for b in selected}
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        selected = [b for b in selected if b.name in wanted]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    for bench in selected:
        run(bench, args.out / f"{stamp}-{bench.name}.log", args.timeout)
    text = render(selected, stamp)
    path = args.out / f"{stamp}.txt"
    path.write_text(text)
    print("\n" + text + f"(written to {path})")
    return 0 if all(b.status == "ok" for b in selected) else 1


if __name__ == "__main__":
    sys.exit(main())
