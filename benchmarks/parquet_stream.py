"""Stream data faults over a Parquet dataset larger than we let ourselves hold in memory.

Generates an N-row (default 50M) dataset of 10 columns (6 float64, 2 int64, a string category,
a binary int64 label with 30% positives) as ``--files`` Parquet files written row group by row
group (never held whole), then times, each in its own child process:

- ``pyarrow read+write``: every row group read and written again (``ParquetFile.read_row_group``
  + ``ParquetWriter``), the floor a streamed fault cannot beat; run first and after every three
  faults, each fault being compared with the mean of the baseline runs just before and after it;
- every fault of ``--faults`` through ``stream_fault`` (fraction 0.1, drift 1.0), writing beside
  the input as a stored fault does (the rename swap itself is not timed).

Each child's peak RSS is its ``ru_maxrss`` as reported to the parent when it is reaped
(``os.wait4``, the per-child form of ``getrusage(RUSAGE_CHILDREN)``). Prints one line per run;
the last line is ``parquet <N> rows: peak RSS <MB> MB, throughput <ratio>x pyarrow read+write``
(the highest peak of any fault, the worst fault's ratio). Throughput ratios are baseline time /
fault time in wall seconds (the last line's figure); the CPU-second ratio (user + system, every
thread) is printed beside it: the streamed fault transforms the next row group on a second
thread while it writes the current one, so it spends more CPU than it takes wall time. Wall time
on a machine shared with other work measures the neighbours too: run it on a quiet one (the
baselines are interleaved with the faults to catch drift). The dataset is deleted at the end
unless ``--keep``.

    python benchmarks/parquet_stream.py [--rows 50000000] [--files 5] [--row-group 500000]
        [--dir DIR] [--faults nulls,out_of_range,...] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SPECS: dict[str, dict[str, Any]] = {
    "nulls": {"columns": ["f0"]},
    "out_of_range": {"columns": ["f1"]},
    "type_flip": {"columns": ["f2"]},
    "unseen_category": {"columns": ["category"]},
    "drift": {"columns": ["f5"]},
    "duplicate_rows": {},
    "class_removal": {"label": "label"},
    "mislabel": {"label": "label"},
    "label_shuffle": {"label": "label"},
    "drop_column": {"columns": ["f3"]},
    "rename_column": {"columns": ["f4"]},
}
DEFAULT_FAULTS = [n for n in SPECS if n not in ("drop_column", "rename_column")]
COPY = "pyarrow read+write"
BETWEEN_COPIES = 3  # a fault is compared with the baseline runs just before and after it


# ------------------------------------------------------------------------------ child work
def generate(folder: Path, rows: int, files: int, row_group: int) -> None:
    """Write the dataset one row group at a time (seeded)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    names = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
    folder.mkdir(parents=True, exist_ok=True)
    per_file = -(-rows // files)
    left = rows
    for n in range(files):
        in_file = min(per_file, left)
        with pq.ParquetWriter(folder / f"part-{n:03d}.parquet", _schema()) as writer:
            while in_file > 0:
                m = min(row_group, in_file)
                data: dict[str, Any] = {f"f{i}": rng.normal(size=m) for i in range(6)}
                data["i0"] = rng.integers(0, 1_000, size=m)
                data["i1"] = rng.integers(0, 50, size=m)
                data["category"] = pa.array(names[rng.integers(0, len(names), size=m)])
                data["label"] = (rng.random(m) < 0.3).astype(np.int64)
                writer.write_table(pa.table(data, schema=_schema()), row_group_size=m)
                in_file -= m
                left -= m


def _schema() -> Any:
    import pyarrow as pa

    fields = [(f"f{i}", pa.float64()) for i in range(6)]
    fields += [("i0", pa.int64()), ("i1", pa.int64()), ("category", pa.string())]
    return pa.schema([*fields, ("label", pa.int64())])


def copy_dataset(sources: list[Path], sinks: list[Path]) -> None:
    """The baseline: every row group read and written again with pyarrow."""
    import pyarrow.parquet as pq

    for source, sink in zip(sources, sinks, strict=True):
        file = pq.ParquetFile(source)
        with pq.ParquetWriter(sink, file.schema_arrow) as writer:
            for i in range(file.num_row_groups):
                table = file.read_row_group(i)
                writer.write_table(table, row_group_size=max(1, table.num_rows))


def run_fault(fault: Any, sources: list[Path], sinks: list[Path]) -> dict[str, Any]:
    from mlchaos_orchestration.faults.data.parquet_stream import stream_fault

    out = stream_fault(fault, [str(p) for p in sources], [str(p) for p in sinks], seed=7)
    return {"rows_changed": out.rows_changed, "rows_read": out.rows_read}


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, every thread included."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(args: argparse.Namespace) -> None:
    """One measured run; prints its JSON facts on the last line."""
    if args.child == "generate":
        start = time.perf_counter()
        generate(Path(args.dir), args.rows, args.files, args.row_group)
        print(json.dumps({"seconds": time.perf_counter() - start}))
        return
    sources = sorted(Path(args.dir).glob("part-*.parquet"))
    out_dir = Path(args.dir) / ".out"
    out_dir.mkdir(exist_ok=True)
    sinks = [out_dir / p.name for p in sources]
    fault = None
    if args.child != COPY:  # imports and parameter checks are not timed
        import pandas  # noqa: F401 - imported on first use otherwise

        from mlchaos_orchestration.faults import build_fault

        fault = build_fault({"fault": args.child, **SPECS[args.child]})
    start, cpu = time.perf_counter(), cpu_seconds()
    facts: dict[str, Any] = {}
    if fault is None:
        copy_dataset(sources, sinks)
    else:
        facts = run_fault(fault, sources, sinks)
    facts["seconds"] = time.perf_counter() - start
    facts["cpu"] = cpu_seconds() - cpu
    shutil.rmtree(out_dir)
    print(json.dumps(facts))


# --------------------------------------------------------------------------------- parent
def measure(what: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``what`` in a child process; its facts plus ``rss_mb`` (the child's peak RSS)."""
    cmd = [sys.executable, __file__, "--child", what, "--dir", str(args.dir)]
    cmd += ["--rows", str(args.rows), "--files", str(args.files)]
    cmd += ["--row-group", str(args.row_group)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    stdout = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{what}: child failed with exit code {proc.returncode}")
    facts = json.loads(stdout.strip().splitlines()[-1])
    facts["rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return facts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--row-group", type=int, default=500_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--faults", default=",".join(DEFAULT_FAULTS))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return
    faults = [f for f in args.faults.split(",") if f]
    unknown = [f for f in faults if f not in SPECS]
    if unknown:
        raise SystemExit(f"unknown fault(s): {', '.join(unknown)}")
    made = args.dir is None
    args.dir = args.dir or Path(tempfile.mkdtemp(prefix="parquet-stream-", dir="/work"))
    try:
        gen = measure("generate", args)
        size = sum(p.stat().st_size for p in Path(args.dir).glob("part-*.parquet"))
        print(
            f"dataset: {args.rows:,} rows x 10 columns in {args.files} files, row groups of "
            f"{args.row_group:,}, {size / 2**20:,.0f} MiB on disk; generated in "
            f"{gen['seconds']:.1f} s, peak RSS {gen['rss_mb']:.0f} MB"
        )
        copies, results, near = [measure(COPY, args)], {}, {}
        for start in range(0, len(faults), BETWEEN_COPIES):  # baselines interleaved with faults
            batch = faults[start : start + BETWEEN_COPIES]
            results.update({name: measure(name, args) for name in batch})
            copies.append(measure(COPY, args))
            near.update({name: copies[-2:] for name in batch})
        base = {k: statistics.mean(c[k] for c in copies) for k in ("seconds", "cpu")}
        print(
            f"{'run':<20}{'wall_s':>8}{'cpu_s':>8}{'ratio_wall':>11}{'ratio_cpu':>10}"
            f"{'peak_rss_mb':>12}{'rows_changed':>14}"
        )
        for name, r in [*((COPY, c) for c in copies), *results.items()]:
            ref = (
                {k: statistics.mean(c[k] for c in near[name]) for k in base}
                if name in near
                else base
            )
            r["ratio"] = ref["seconds"] / r["seconds"]
            r["ratio_cpu"] = ref["cpu"] / r["cpu"]
            print(
                f"{name:<20}{r['seconds']:>8.2f}{r['cpu']:>8.2f}{r['ratio']:>11.2f}"
                f"{r['ratio_cpu']:>10.2f}{r['rss_mb']:>12.0f}{r.get('rows_changed', 0):>14,}"
            )
        if not results:
            return
        peak = max(results, key=lambda n: results[n]["rss_mb"])
        worst = min(results, key=lambda n: results[n]["ratio"])
        costly = min(results, key=lambda n: results[n]["ratio_cpu"])
        print(
            f"worst throughput: {worst}; highest peak RSS: {peak}; most CPU per row: {costly} "
            f"({results[costly]['ratio_cpu']:.2f}x the baseline's rows per CPU second: the "
            "lookahead thread works on a second core)"
        )
        label = f"{args.rows // 1_000_000}M" if args.rows % 1_000_000 == 0 else f"{args.rows:,}"
        print(
            f"parquet {label} rows: peak RSS {results[peak]['rss_mb']:.0f} MB, "
            f"throughput {results[worst]['ratio']:.2f}x pyarrow read+write"
        )
    finally:
        if made and not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
