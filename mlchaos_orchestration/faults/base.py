"""Fault base classes. One fault = one small class, registered in :mod:`.catalog`.

A fault is a pydantic model: its fields are its validated parameters. ``name`` and ``family`` are
class-level. Data faults transform a DataFrame (never in place) and report exactly what changed;
environment faults change where data lives and are undone by restoring the backup the session took
before they acted (see :mod:`mlchaos_orchestration.core.session`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

    from mlchaos_orchestration.core.targets import Target


class Fault(BaseModel):
    """A named, parameterised, seeded change with a bounded blast radius."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: ClassVar[str] = ""
    family: ClassVar[Literal["data", "environment"]] = "data"

    @classmethod
    def description(cls) -> str:
        """One-line description (first line of the class docstring)."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable ``{"fault": name, **params}``."""
        return {"fault": self.name, **self.model_dump(mode="json")}


# ----------------------------------------------------------------------------------- data faults
@dataclass
class DataFaultResult:
    """A faulted frame and exactly what changed.

    ``rows`` are positional row indices (into the *input* frame) whose cells were changed;
    ``columns`` the columns changed (or dropped/renamed/added); ``details`` fault-specific facts
    (e.g. a mapping). ``rows_affected`` is set by faults that change rows without changing a cell
    (schema faults: every row lost or renamed the column).
    """

    frame: pd.DataFrame
    rows: np.ndarray
    columns: list[str]
    details: dict[str, Any] = field(default_factory=dict)
    rows_affected: int | None = None

    @property
    def rows_changed(self) -> int:
        """Rows the fault reached: changed cells, or every row a schema change reshaped."""
        return int(len(self.rows) if self.rows_affected is None else self.rows_affected)

    def summary(self) -> dict[str, Any]:
        return {
            "rows_changed": self.rows_changed,
            "columns": list(self.columns),
            **{k: v for k, v in self.details.items() if _is_small(v)},
        }


def _is_small(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, type(None))) or (
        isinstance(value, (list, tuple, dict)) and len(value) <= 50
    )


class DataFault(Fault):
    """Base of data faults: act on a pandas DataFrame, vectorised, never in place."""

    family: ClassVar[Literal["data", "environment"]] = "data"

    fraction: float = Field(0.1, ge=0.0, le=1.0, description="share of rows affected")
    max_rows: int | None = Field(None, ge=0, description="blast-radius cap on rows affected")

    def apply(self, frame: pd.DataFrame, seed: int) -> DataFaultResult:
        """Return a faulted copy of ``frame`` (the input is never mutated)."""
        import numpy as np

        rng = np.random.default_rng(seed)
        self._check_columns(frame)
        return self._apply(frame, rng)

    def _apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> DataFaultResult:
        raise NotImplementedError

    def _check_columns(self, frame: pd.DataFrame) -> None:
        from mlchaos_orchestration.errors import SpecError

        wanted = list(getattr(self, "columns", None) or [])
        for attr in ("label", "column"):
            value = getattr(self, attr, None)
            if isinstance(value, str):
                wanted.append(value)
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise SpecError([f"{self.name}: column(s) not in data: {', '.join(map(str, missing))}"])

    def n_rows(self, n: int) -> int:
        """Number of rows to change for a frame of ``n`` rows (fraction, capped by max_rows)."""
        k = int(round(self.fraction * n))
        if self.max_rows is not None:
            k = min(k, self.max_rows)
        return max(0, min(k, n))

    def sample_rows(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Sorted positional indices of the rows to change, seeded, no Python loops."""
        import numpy as np

        k = self.n_rows(n)
        if k == 0:
            return np.empty(0, dtype=np.int64)
        if k * 4 >= n:
            idx = rng.permutation(n)[:k]
        else:
            idx = rng.choice(n, size=k, replace=False)
        idx.sort()
        return idx.astype(np.int64, copy=False)


# ---------------------------------------------------------------------------- environment faults
class EnvironmentFault(Fault):
    """Base of environment faults: change where data lives or how it is reached.

    ``backup_targets()`` names what the session must back up before ``apply`` runs (empty for
    hook-only faults such as connector failure); restore is the session restoring those backups.
    ``hook()`` returns the in-process hook spec (JSON) that readers' processes install while the
    fault's lease is active, or ``None``.
    """

    family: ClassVar[Literal["data", "environment"]] = "environment"

    def backup_targets(self, ctx: ApplyContext) -> list[Target]:
        return []

    def backup_options(self, target: Target) -> dict[str, Any]:
        """Keyword options for the store's ``backup`` of ``target`` (e.g. ``move``)."""
        return {}

    def touched_targets(self, ctx: ApplyContext) -> list[Target]:
        """Every target this fault reads or changes (checked against the allowlist)."""
        return self.backup_targets(ctx)

    def apply(self, ctx: ApplyContext) -> dict[str, Any]:
        """Change the (already backed up) targets; return facts for the ``fault_applied`` event."""
        return {}

    def hook(self, ctx: ApplyContext) -> dict[str, Any] | None:
        return None

    def restore_after_s(self) -> float | None:
        """Seconds after which the fault restores itself (``late`` outages), else ``None``."""
        return None


@dataclass
class ApplyContext:
    """What an environment fault needs at apply time: seed, run date, settings, store access."""

    seed: int
    ds: str | None = None
    run_id: str | None = None
    s3_endpoint_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
