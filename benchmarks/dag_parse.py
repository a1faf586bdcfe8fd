"""Parse time of the example DAG with vs. without its mlchaos task group, side by side.

Like Airflow's DAG processor, a parent process imports Airflow once and each parse happens in a
fresh forked child (so mlchaos's own modules are imported cold each time, as on a real worker).
The variant without chaos is the same file with the ``add_chaos(...)`` call removed. Runs
alternate (with, without, with, ...) so machine noise hits both alike; the added time is the
median of the paired differences (each "with" parse minus the "without" parse right after it).

    python benchmarks/dag_parse.py [--runs 15]

Last line: ``added parse time: <ms> ms`` (median paired difference).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "mlchaos_orchestration" / "examples"
DAG_FILE = EXAMPLES / "dag.py"


def variants(folder: Path) -> dict[str, Path]:
    """Write the two DAG files to compare into ``folder``."""
    source = DAG_FILE.read_text()
    cut = source.index("\nadd_chaos(dag")
    plain = source[:cut] + "\n"
    if "add_chaos" not in plain.replace("import MlchaosWebhookNotifier, add_chaos", ""):
        plain = plain.replace(
            "import MlchaosWebhookNotifier, add_chaos", "import MlchaosWebhookNotifier"
        )
    out = {
        "with chaos": folder / "with_chaos" / "feature_pipeline.py",
        "without chaos": folder / "without_chaos" / "feature_pipeline.py",
    }
    for name, path in out.items():
        path.parent.mkdir(parents=True)
        path.write_text(source if name == "with chaos" else plain)
        (path.parent / "experiments.yaml").write_text((EXAMPLES / "experiments.yaml").read_text())
    return out


def parse_in_child(path: Path) -> float:
    """Seconds a forked child takes to parse ``path`` into a DagBag (fails on import errors)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        from airflow.dag_processing.dagbag import DagBag

        start = time.perf_counter()
        bag = DagBag(str(path))
        elapsed = time.perf_counter() - start
        ok = not bag.import_errors and "feature_pipeline" in bag.dag_ids
        os.write(write, f"{elapsed if ok else -1.0}".encode())
        os._exit(0)
    os.close(write)
    data = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    value = float(data or -1)
    if value < 0:
        raise SystemExit(f"{path}: DAG did not parse")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="example DAG parse time with vs. without chaos")
    parser.add_argument("--runs", type=int, default=25)
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(tmp) / "airflow_home"))
        os.environ.setdefault("MLCHAOS_HOME", str(Path(tmp) / "mlchaos_home"))
        files = variants(Path(tmp))
        import gc

        import airflow.sdk  # noqa: F401 - the processor has Airflow loaded before parsing
        from airflow.dag_processing.dagbag import DagBag  # noqa: F401

        gc.freeze()  # like a forking server: the parent's objects are not re-scanned by children

        for path in files.values():  # warm the file system cache
            parse_in_child(path)
        times: dict[str, list[float]] = {name: [] for name in files}
        for _ in range(args.runs):
            for name, path in files.items():
                times[name].append(parse_in_child(path))
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"{'variant':<15} {'median ms':>10} {'min ms':>8} {'max ms':>8}  (runs={args.runs})")
    for name, values in times.items():
        print(
            f"{name:<15} {medians[name]:>10.1f} {min(values) * 1000:>8.1f} "
            f"{max(values) * 1000:>8.1f}"
        )
    ratio = medians["with chaos"] / medians["without chaos"]
    pairs = [
        (a - b) * 1000 for a, b in zip(times["with chaos"], times["without chaos"], strict=True)
    ]
    print(f"ratio of medians with/without: {ratio:.2f}")
    print(
        f"median with - median without: {medians['with chaos'] - medians['without chaos']:.1f} ms"
    )
    print(f"added parse time: {statistics.median(pairs):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
