"""Sensitivity of the label-integrity check (gates.label_integrity) at 100k rows.

For label shuffle and cyclic mislabel (label + 1 mod 3) at a grid of fractions, each on several
independent candidate draws: the detection rate; then the false-alarm rate on clean resamples of
the same distribution. The minimum detectable fraction is the smallest one detected in every draw.

    python benchmarks/labels.py [--rows 100000] [--draws 5] [--clean 50]

Last line: ``label check at <n> rows: min detectable shuffle <f>, cyclic mislabel <f>,
false alarms <k>/<m>, <s> s per check``.
"""

from __future__ import annotations

import argparse
import time

from mlchaos_orchestration.faults import build_fault
from mlchaos_orchestration.gates.label_integrity import check_labels
from mlchaos_orchestration.testing.frames import cyclic_mislabel, labelled_frame

FRACTIONS = (0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--clean", type=int, default=50)
    args = parser.parse_args()
    reference = labelled_frame(args.rows, seed=1)
    faults = {
        "shuffle": lambda frame, f, s: (
            build_fault({"fault": "label_shuffle", "label": "label", "fraction": f})
            .apply(frame, s)
            .frame
        ),
        "cyclic mislabel": lambda frame, f, s: cyclic_mislabel(frame, f, s),
    }
    minimum: dict[str, float | None] = {}
    timings: list[float] = []
    for name, fault in faults.items():
        minimum[name] = None
        for fraction in FRACTIONS:
            hits = 0
            for draw in range(args.draws):
                candidate = fault(labelled_frame(args.rows, seed=1000 + draw), fraction, draw)
                start = time.perf_counter()
                hits += not check_labels(reference, candidate, "label").consistent
                timings.append(time.perf_counter() - start)
            print(f"{name:<16} fraction {fraction:<7} detected {hits}/{args.draws}")
            if hits == args.draws and minimum[name] is None:
                minimum[name] = fraction
    alarms = sum(
        not check_labels(reference, labelled_frame(args.rows, seed=5000 + s), "label").consistent
        for s in range(args.clean)
    )
    per_check = sum(timings) / len(timings)
    print(
        f"label check at {args.rows} rows: min detectable shuffle {minimum['shuffle']}, "
        f"cyclic mislabel {minimum['cyclic mislabel']}, false alarms {alarms}/{args.clean}, "
        f"{per_check:.2f} s per check"
    )


if __name__ == "__main__":
    main()
