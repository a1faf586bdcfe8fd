"""Our GX gate adapter against raw Great Expectations, same suite, same 1M-row frame, one run.

The frame is the example pipeline's features (generated events -> build_features); the suite is
the example gate (examples/gate_suite.yaml, its label-integrity expectation reading a reference of
generated events for the previous day, ``--reference-rows``). "raw GX" is what a user would write:
an ephemeral context, a pandas dataframe asset, the suite built once (the label expectation
registered by importing its module, as a user of this suite would), ``batch.validate``. Ours is
``gates.gx.validate_frame`` (spec loading, suite building, result mapping included). Each round
times both, in alternating order (raw/ours, ours/raw, ...); the ratio is the median of the paired
ratios, printed with their range. Import cost is measured apart (GX is never imported at DAG parse
or by ``import mlchaos_orchestration``: exit status 1 if it is).

    python benchmarks/gate.py [--rows 1000000] [--rounds 9] [--reference-rows 100000]

Last line: ``gate overhead: <ratio>x raw GX``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlchaos_orchestration.examples import GATE_SUITE_PATH


def features(rows: int):  # noqa: ANN201 - a DataFrame
    from mlchaos_orchestration.examples.sample_data import generate_events
    from mlchaos_orchestration.examples.steps import build_features

    return build_features(generate_events("2026-11-20", rows, seed=42))


def raw_gx(frame, suite_spec):  # noqa: ANN001, ANN201
    """A user's own GX 1.x validation of ``frame`` (context and suite built once)."""
    import great_expectations as gx

    import mlchaos_orchestration.gates.gx_label  # noqa: F401 - registers the label expectation
    from mlchaos_orchestration.gates.gx import quiet_context

    # the same context settings as ours (no progress bars, no analytics): the adapter is compared
    context = quiet_context(gx)
    batch_def = (
        context.data_sources.add_pandas("raw")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = gx.ExpectationSuite(
        name="raw",
        expectations=[
            getattr(gx.expectations, e.type)(**e.kwargs) for e in suite_spec.expectations
        ],
    )

    def validate() -> bool:
        batch = batch_def.get_batch(batch_parameters={"dataframe": frame})
        return bool(batch.validate(suite, result_format="SUMMARY").success)

    return validate


def write_reference(folder: Path, rows: int) -> None:
    """Clean labelled events of the day before, where ``${MLCHAOS_RAW_ROOT}`` points."""
    from mlchaos_orchestration.examples.sample_data import generate_events

    generate_events("2026-11-19", rows, seed=41).to_parquet(folder / "events.parquet")
    os.environ["MLCHAOS_RAW_ROOT"] = str(folder)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    args = parser.parse_args()
    reference = tempfile.TemporaryDirectory()
    write_reference(Path(reference.name), args.reference_rows)
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from mlchaos_orchestration.gates.gx import load_suite_specs, validate_frame

    frame = features(args.rows)
    spec = load_suite_specs(GATE_SUITE_PATH)
    raw = raw_gx(frame, spec)
    raw(), validate_frame(frame, spec)  # warm both
    runs = {"raw": raw, "ours": lambda: validate_frame(frame, spec).success}
    ratios = []
    for i in range(args.rounds):
        took, outcome = {}, {}
        for name in ("raw", "ours") if i % 2 == 0 else ("ours", "raw"):
            start = time.perf_counter()
            outcome[name] = runs[name]()
            took[name] = time.perf_counter() - start
        assert outcome["raw"] == outcome["ours"], "both must reach the same outcome"
        ratios.append(took["ours"] / took["raw"])
        print(f"raw GX {took['raw']:.3f} s   ours {took['ours']:.3f} s   ratio {ratios[-1]:.3f}")
    code = (
        "import sys, time; t = time.perf_counter();"
        "import mlchaos_orchestration, mlchaos_orchestration.airflow;"
        "print(time.perf_counter() - t, 'great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    took, loaded = out.stdout.split()
    print(f"import of the package + airflow API: {float(took) * 1000:.0f} ms, GX loaded: {loaded}")
    print(f"ratio range {min(ratios):.3f}-{max(ratios):.3f} over {len(ratios)} rounds")
    print(f"gate overhead: {statistics.median(ratios):.2f}x raw GX")
    if loaded != "False":
        sys.exit(1)


if __name__ == "__main__":
    main()
