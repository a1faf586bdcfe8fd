"""Where a fault's ``at`` acts in a Dagster run (Dagster-free).

``at`` names the step whose INPUT a fault changes. In Dagster it may name:

* a **check** (e.g. the gate ``validate_features``): the checked asset's value is faulted for every
  step that loads it in the run - the check *and* the assets downstream of it. Airflow gates pass
  their input on to training; Dagster checks do not, so faulting only the check's copy would let
  training see clean data and make a ``silent`` verdict a lie;
* an **asset** (its key as ``a/b`` or its op name ``a__b``): the inputs that asset's step loads;
* the **loaded asset** itself, written ``<asset>:input``: every load of that asset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LoadSite:
    """One ``load_input`` call: the asset loaded and the op (step) loading it."""

    loaded_asset: str  # user string, e.g. "features" or "a/b"
    loading_op: str


@dataclass(frozen=True)
class Scopes:
    """Check name -> checked asset (user string), known from the Definitions."""

    checks: Mapping[str, str] = field(default_factory=dict)

    def matches(self, at: str | None, site: LoadSite) -> bool:
        """Whether a fault ``at`` acts on this load."""
        if not at:
            return False
        if at.endswith(":input"):
            return at[: -len(":input")] == site.loaded_asset
        if at in self.checks:
            return self.checks[at] == site.loaded_asset
        return at.replace("/", "__") == site.loading_op
