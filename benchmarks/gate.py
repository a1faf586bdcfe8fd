"""Our GX gate adapter against raw Great Expectations, same suite, same 1M-row frame, one run.

The frame is the example pipeline's features (generated events -> build_features); the suite is
the example gate (examples/gate_suite.yaml, 9 expectations). "raw GX" is what a user would write:
an ephemeral context, a pandas dataframe asset, the suite built once, ``batch.validate``. Ours is
``gates.gx.validate_frame`` (spec loading, suite building, result mapping included). Rounds
alternate raw / ours; the ratio is the median of the paired ratios. Import cost is measured apart
(GX is never imported at DAG parse or by ``import mlchaos_orchestration``).

    python benchmarks/gate.py [--rows 1000000] [--rounds 5]

Last line: ``gate overhead: <ratio>x raw GX``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from mlchaos_orchestration.examples import GATE_SUITE_PATH


def features(rows: int):  # noqa: ANN201 - a DataFrame
    from mlchaos_orchestration.examples.sample_data import generate_events
    from mlchaos_orchestration.examples.steps import build_features

    return build_features(generate_events("2026-11-20", rows, seed=42))


def raw_gx(frame, suite_spec):  # noqa: ANN001, ANN201
    """A user's own GX 1.x validation of ``frame`` (context and suite built once)."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from mlchaos_orchestration.gates.gx import load_suite_specs, validate_frame

    frame = features(args.rows)
    spec = load_suite_specs(GATE_SUITE_PATH)
    raw = raw_gx(frame, spec)
    raw(), validate_frame(frame, spec)  # warm both
    ratios = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        ok_raw = raw()
        t_raw = time.perf_counter() - start
        start = time.perf_counter()
        ok_ours = validate_frame(frame, spec).success
        t_ours = time.perf_counter() - start
        assert ok_raw == ok_ours, "both must reach the same outcome"
        ratios.append(t_ours / t_raw)
        print(f"raw GX {t_raw:.3f} s   ours {t_ours:.3f} s   ratio {t_ours / t_raw:.3f}")
    code = (
        "import sys, time; t = time.perf_counter();"
        "import mlchaos_orchestration, mlchaos_orchestration.airflow;"
        "print(time.perf_counter() - t, 'great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    took, loaded = out.stdout.split()
    print(f"import of the package + airflow API: {float(took) * 1000:.0f} ms, GX loaded: {loaded}")
    print(f"gate overhead: {statistics.median(ratios):.2f}x raw GX")


if __name__ == "__main__":
    main()
