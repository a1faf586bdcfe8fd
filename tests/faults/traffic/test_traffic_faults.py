"""traffic_drift and feedback_skew: exactly the rows asked for change, the input never does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlchaos_orchestration.errors import SpecError
from mlchaos_orchestration.faults.catalog import get_fault_class


@pytest.fixture()
def traffic() -> pd.DataFrame:
    n = 1_000
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "event_ts": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n) * 60, unit="s"),
            "amount": rng.lognormal(3, 1, n),
            "n_tx": rng.poisson(2, n).astype("int64"),
            "country": rng.choice(["US", "IN", "DE"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def test_traffic_drift_shifts_only_the_segment_after_start(traffic: pd.DataFrame) -> None:
    before = traffic.copy()
    start = "2026-01-01T08:00:00"
    fault = get_fault_class("traffic_drift")(
        columns=["amount", "n_tx"], segment={"country": "IN"}, start=start
    )
    result = fault.apply(traffic, seed=1)
    pd.testing.assert_frame_equal(traffic, before)  # never in place
    eligible = (traffic["country"] == "IN") & (traffic["event_ts"] >= pd.Timestamp(start))
    changed = result.frame["amount"].ne(traffic["amount"])
    assert changed.equals(eligible) and eligible.sum() == result.details["eligible_rows"]
    shift = result.details["shift"]
    assert shift["amount"] == pytest.approx(2 * traffic["amount"].std())
    assert (
        shift["n_tx"] == round(2 * traffic["n_tx"].std()) and result.frame["n_tx"].dtype == "int64"
    )
    diff = result.frame.loc[eligible, "amount"] - traffic.loc[eligible, "amount"]
    assert np.allclose(diff, shift["amount"])


def test_traffic_drift_fraction_of_all_traffic_is_seeded(traffic: pd.DataFrame) -> None:
    fault = get_fault_class("traffic_drift")(columns=["amount"], fraction=0.25, k=-1.0)
    a, b = fault.apply(traffic, seed=3), fault.apply(traffic, seed=3)
    assert len(a.rows) == 250 and np.array_equal(a.rows, b.rows)
    assert (a.frame["amount"] < traffic["amount"]).sum() == 250


def test_traffic_drift_refuses_what_it_cannot_shift(traffic: pd.DataFrame) -> None:
    with pytest.raises(SpecError, match="numeric"):
        get_fault_class("traffic_drift")(columns=["country"]).apply(traffic, seed=0)
    with pytest.raises(SpecError, match="not in data: region"):
        get_fault_class("traffic_drift")(columns=["amount"], segment={"region": "EU"}).apply(
            traffic, seed=0
        )
    with pytest.raises(ValueError, match="k must not be 0"):
        get_fault_class("traffic_drift")(columns=["amount"], k=0)


def test_feedback_skew_drops_the_group_and_nothing_else(traffic: pd.DataFrame) -> None:
    result = get_fault_class("feedback_skew")(column="country", groups="IN").apply(traffic, 0)
    assert "IN" not in set(result.frame["country"])
    assert len(result.frame) == len(traffic) - (traffic["country"] == "IN").sum()
    kept = traffic[traffic["country"] != "IN"].reset_index(drop=True)
    pd.testing.assert_frame_equal(result.frame, kept)
    assert result.rows_changed == result.details["dropped_rows"] == result.details["group_rows"]


def test_feedback_skew_partial_and_absent_groups(traffic: pd.DataFrame) -> None:
    half = get_fault_class("feedback_skew")(column="country", groups=["IN"], fraction=0.5)
    result = half.apply(traffic, 0)
    group = int((traffic["country"] == "IN").sum())
    assert result.details["dropped_rows"] == round(group / 2)
    assert (result.frame["country"] == "IN").sum() == group - round(group / 2)
    with pytest.raises(SpecError, match="no row of country"):
        get_fault_class("feedback_skew")(column="country", groups="FR").apply(traffic, 0)
