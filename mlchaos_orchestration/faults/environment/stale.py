"""``stale_partition_replay``: today's partition holds an older partition's content.

Files / objects are copied byte for byte, or rewritten through
:mod:`mlchaos_orchestration.core.formats`
with timestamp columns moved forward by the lag (so only a content or duplicate check can tell).
For SQL the source partition's rows are re-inserted under today's partition value.
Only today's partition is backed up and changed (blast radius).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import SpecError, TargetError
from mlchaos_orchestration.faults.base import ApplyContext, EnvironmentFault
from mlchaos_orchestration.faults.catalog import register
from mlchaos_orchestration.faults.environment.outage import store_for

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

_EPOCH_UNITS = ((1e11, 1), (1e14, 10**3), (1e17, 10**6))  # seconds, ms, us; else ns


def _per_second(magnitude: float) -> int:
    for bound, factor in _EPOCH_UNITS:
        if magnitude < bound:
            return factor
    return 10**9


def _is_number(values: pd.Series, sample: Any) -> bool:
    from pandas.api import types

    if isinstance(sample, bool) or types.is_bool_dtype(values):
        return False
    return types.is_numeric_dtype(values) or isinstance(sample, (int, float))


def shift_series(values: pd.Series, days: int) -> pd.Series:
    """``values`` moved ``days`` forward: datetimes, dates, ISO strings or epoch numbers."""
    import pandas as pd
    from pandas.api import types

    mask = values.notna()
    if not mask.any():
        return values
    if types.is_datetime64_any_dtype(values):
        return values + pd.Timedelta(days=days)
    present = values[mask]
    sample = present.iloc[0]
    out = values.copy()
    if isinstance(sample, dt.date):  # also datetime / Timestamp objects
        out[mask] = present + dt.timedelta(days=days)
    elif isinstance(sample, str):
        text = present.astype(str)
        parsed = pd.to_datetime(text.str[:10], format="%Y-%m-%d", errors="coerce")
        if parsed.isna().any():
            raise SpecError([f"column {values.name!r}: strings are not ISO dates"])
        out[mask] = (parsed + pd.Timedelta(days=days)).dt.strftime("%Y-%m-%d") + text.str[10:]
    elif _is_number(values, sample):
        numeric = pd.to_numeric(present)
        out[mask] = present + days * 86400 * _per_second(float(numeric.abs().max()))
    else:
        raise SpecError([f"column {values.name!r}: cannot shift {type(sample).__name__} values"])
    return out


@register
class StalePartitionReplay(EnvironmentFault):
    """Today's partition is replaced by the content of an older one."""

    name: ClassVar[str] = "stale_partition_replay"

    template: str | None = Field(None, description="partition path/URI with {ds}")
    table: str | None = None
    url: str | None = None
    partition_column: str | None = None
    lag_days: int = Field(1, ge=1, description="how many days old the replayed partition is")
    ds: str | None = Field(None, description="run date YYYY-MM-DD (default: the run's ds)")
    shift_timestamps: bool = False
    timestamp_columns: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> StalePartitionReplay:
        sql = (self.table, self.url, self.partition_column)
        if self.template is not None:
            if any(sql):
                raise ValueError("give either template or table + url + partition_column")
            if "{ds}" not in self.template:
                raise ValueError("template must contain {ds}")
        elif not all(sql):
            raise ValueError("give template, or table + url + partition_column")
        if self.ds is not None:
            try:
                _parse_date(self.ds)
            except SpecError as exc:
                raise ValueError(str(exc)) from None
        if self.shift_timestamps and not self.timestamp_columns:
            raise ValueError("shift_timestamps needs timestamp_columns")
        return self

    # ------------------------------------------------------------------ partitions
    def dates(self, ctx: ApplyContext) -> tuple[str, str]:
        """``(run ds, replayed ds)`` as YYYY-MM-DD."""
        raw = self.ds or ctx.ds
        if not raw:
            raise SpecError([f"{self.name}: no ds given and the run has none"])
        day = _parse_date(raw)
        return day.isoformat(), (day - dt.timedelta(days=self.lag_days)).isoformat()

    def partition(self, ds: str) -> Target:
        if self.template is not None:
            return Target.parse(self.template.replace("{ds}", ds))
        return Target(
            kind="sql",
            location=str(self.url),
            table=self.table,
            where={str(self.partition_column): ds},
        )

    def backup_targets(self, ctx: ApplyContext) -> list[Target]:
        return [self.partition(self.dates(ctx)[0])]

    def touched_targets(self, ctx: ApplyContext) -> list[Target]:
        today, old = self.dates(ctx)
        return [self.partition(today), self.partition(old)]

    # ------------------------------------------------------------------ apply
    def apply(self, ctx: ApplyContext) -> dict[str, Any]:
        today, old = self.dates(ctx)
        dst, src = self.partition(today), self.partition(old)
        store = store_for(dst, ctx)
        if not store.exists(src):
            raise TargetError(f"{self.name}: source partition {src.describe()} does not exist")
        copy = {"local": self._replay_local, "s3": self._replay_s3, "sql": self._replay_sql}
        count = copy[dst.kind](store, src, dst)
        return {"ds": today, "replayed_ds": old, "copied": count, "shifted": self.shift_timestamps}

    def _shift_frame(self, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise SpecError([f"{self.name}: column(s) not in data: {', '.join(missing)}"])
        out = frame.copy()
        for column in columns:
            out[column] = shift_series(out[column], self.lag_days)
        return out

    def _shift_bytes(self, name: str, data: bytes) -> bytes:
        from mlchaos_orchestration.core.formats import detect_format, read_frame, write_frame

        fmt = detect_format(name)
        frame = self._shift_frame(read_frame(data, fmt), self.timestamp_columns)
        return write_frame(frame, fmt)

    def _replay_local(self, store: Any, src: Target, dst: Target) -> int:
        from pathlib import Path

        from mlchaos_orchestration.stores.local import copy_path

        store.remove(dst)
        Path(dst.location).parent.mkdir(parents=True, exist_ok=True)
        copy_path(Path(src.location), Path(dst.location))
        if self.shift_timestamps:
            store.rewrite(dst, self._shift_bytes)
        return len(store.files(dst))

    def _replay_s3(self, store: Any, src: Target, dst: Target) -> int:
        store.remove(dst)
        keys = store.keys(src)
        for key in keys:
            new_key = dst.key + key[len(src.key) :]
            if self.shift_timestamps:
                data = store.read(src.bucket, key)
                store.write(dst.bucket, new_key, self._shift_bytes(key, data))
            else:
                store.copy(src.bucket, key, new_key)
        return len(keys)

    def _replay_sql(self, store: Any, src: Target, dst: Target) -> int:
        import pandas as pd

        columns, rows = store.read_rows(src)
        if not rows:
            raise TargetError(f"{self.name}: source partition {src.describe()} has no rows")
        frame = pd.DataFrame(rows, columns=columns, dtype=object)
        shifted = [str(self.partition_column)]
        if self.shift_timestamps:
            shifted += [c for c in self.timestamp_columns if c not in shifted]
        frame = self._shift_frame(frame, shifted)
        store.replace_rows(dst, frame.astype(object).to_dict("records"))
        return len(rows)


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        raise SpecError([f"stale_partition_replay: ds {text!r} is not YYYY-MM-DD"]) from None
