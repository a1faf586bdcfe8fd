"""The label-integrity check on 100k-row frames: shuffled and wrong labels are flagged, clean
resamples of the same distribution pass, a removed class is flagged by the balance test."""

from __future__ import annotations

import pytest

from mlchaos_orchestration.faults import build_fault
from mlchaos_orchestration.gates.label_integrity import check_labels, default_features
from mlchaos_orchestration.testing.frames import cyclic_mislabel, labelled_frame

N = 100_000


@pytest.fixture(scope="module")
def reference():  # noqa: ANN201
    return labelled_frame(N, seed=1)


def test_shuffle_20_percent_is_flagged(reference) -> None:  # noqa: ANN001
    shuffled = build_fault({"fault": "label_shuffle", "label": "label", "fraction": 0.2})
    result = check_labels(reference, shuffled.apply(labelled_frame(N, seed=2), 7).frame, "label")
    assert not result.consistent
    assert "less consistent with the features" in result.reason
    assert result.score < result.bound < result.expected


def test_cyclic_mislabel_10_percent_is_flagged(reference) -> None:  # noqa: ANN001
    result = check_labels(reference, cyclic_mislabel(labelled_frame(N, seed=3), 0.1, 5), "label")
    assert not result.consistent
    assert "\n" not in result.reason


def test_twenty_clean_resamples_raise_no_false_alarm(reference) -> None:  # noqa: ANN001
    outcomes = [
        check_labels(reference, labelled_frame(N, seed=100 + s), "label") for s in range(20)
    ]
    assert [r.reason for r in outcomes if not r.consistent] == []


def test_a_removed_class_is_flagged_by_the_balance_test(reference) -> None:  # noqa: ANN001
    candidate = labelled_frame(N, seed=4)
    result = check_labels(reference, candidate[candidate["label"] != 2], "label")
    assert not result.consistent
    assert "label balance changed" in result.reason


def test_identifiers_are_not_features(reference) -> None:  # noqa: ANN001
    assert default_features(reference, "label") == [
        "amount",
        "age",
        "category",
        "flag",
        "timestamp",
    ]


def test_bad_input_is_one_clear_error(reference) -> None:  # noqa: ANN001
    from mlchaos_orchestration.errors import SpecError

    with pytest.raises(SpecError, match="candidate has no column 'target'"):
        check_labels(reference, reference.drop(columns=["label"]), "target")
