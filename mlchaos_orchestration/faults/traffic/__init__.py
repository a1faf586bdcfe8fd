"""Faults on serving traffic and on the feedback that comes back from it. Importing this module
registers them.

- ``traffic_drift``: shift numeric request features in a segment or a fraction of the traffic,
  from a start time on (controlled drift for a drift monitor)
- ``feedback_skew``: one user group's rows never reach the feedback labels
"""

from __future__ import annotations

from mlchaos_orchestration.faults.traffic.feedback import FeedbackSkew
from mlchaos_orchestration.faults.traffic.shifts import TrafficDrift

__all__ = ["FeedbackSkew", "TrafficDrift"]
