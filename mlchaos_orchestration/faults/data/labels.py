"""Label faults: corrupt the target column (shuffle, wrong class) or remove a whole class."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from mlchaos_orchestration.errors import SafetyError
from mlchaos_orchestration.faults.base import DataFaultResult
from mlchaos_orchestration.faults.catalog import register
from mlchaos_orchestration.faults.data.common import (
    LabelFault,
    fail,
    present_rows,
    set_at,
    take_rows,
    with_columns,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

Scalar = str | int | float | bool


def class_counts(s: pd.Series) -> pd.Series:
    """Rows per observed (non-missing) class, sorted by class when the classes are sortable.

    Binary integer and boolean labels take a fast path (two comparisons instead of hashing).
    """
    import numpy as np
    import pandas as pd

    values = s.to_numpy() if isinstance(s.dtype, np.dtype) else None
    if values is not None and values.dtype.kind in "iub" and len(values):
        lo, hi = values.min(), values.max()
        if hi == lo or (values.dtype.kind != "b" and int(hi) - int(lo) == 1):
            n_hi = int(np.count_nonzero(values == hi))
            counts = [len(values) - n_hi, n_hi] if hi != lo else [n_hi]
            return pd.Series(counts, index=pd.Index([lo, hi][: len(counts)], dtype=s.dtype))
    counts = s.value_counts(dropna=True)
    counts = counts[counts > 0]
    try:
        return counts.sort_index()
    except TypeError:  # mixed, unorderable classes
        return counts


def _plain(values: Any) -> list[Any]:
    """JSON-friendly Python scalars."""
    import pandas as pd

    return pd.Index(values).tolist()


@register
class LabelShuffle(LabelFault):
    """Permute the label among a sampled fraction of rows (class balance is preserved).

    ``result.rows`` lists the sampled rows whose label actually changed (with few classes many
    permuted labels land on an equal value); ``details["shuffled_rows"]`` is the sample size.
    """

    name: ClassVar[str] = "label_shuffle"

    def _apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> DataFaultResult:
        import numpy as np

        s = frame[self.label]
        rows = self.sample_rows(len(frame), rng)
        old = s.iloc[rows].reset_index(drop=True)
        perm = rng.permutation(len(rows))
        if isinstance(s.dtype, np.dtype) and s.dtype.kind in "iub":  # no missing labels possible
            old_values = old.to_numpy()
            new_values = old_values[perm]
            changed = np.flatnonzero(old_values != new_values)
        else:
            new = old.take(perm).reset_index(drop=True)
            equal = old.eq(new).to_numpy(dtype=bool, na_value=False)
            changed = np.flatnonzero(~(equal | (old.isna() & new.isna()).to_numpy()))
            new_values = new.to_numpy()
        out = set_at(s, rows[changed], new_values[changed])
        return DataFaultResult(
            with_columns(frame, {self.label: out}),
            rows[changed],
            [self.label],
            {"shuffled_rows": int(len(rows))},
        )


@register
class Mislabel(LabelFault):
    """Give a sampled fraction of rows a different class (binary: flipped; else seeded random).

    Classes are those observed in the column; rows with a missing label are left alone.
    """

    name: ClassVar[str] = "mislabel"

    def _apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> DataFaultResult:
        import numpy as np

        s = frame[self.label]
        classes = class_counts(s).index
        if len(classes) < 2:
            raise fail(self, f"label {self.label!r} needs at least 2 classes")
        rows = present_rows(s, self.sample_rows(len(frame), rng))
        old = s.iloc[rows]
        if len(classes) == 2:  # flip: one comparison instead of a hash lookup
            codes = (old != classes[1]).to_numpy(dtype=np.intp)
        else:
            codes = classes.get_indexer(old)
            codes = (codes + rng.integers(1, len(classes), size=len(rows))) % len(classes)
        out = set_at(s, rows, classes.take(codes).to_numpy())
        details: dict[str, Any] = {"classes": _plain(classes)}
        if len(classes) == 2:
            a, b = _plain(classes)
            details["mapping"] = {str(a): b, str(b): a}
        return DataFaultResult(with_columns(frame, {self.label: out}), rows, [self.label], details)


@register
class ClassRemoval(LabelFault):
    """Drop every row of one or more classes (default: the minority class; fraction ignored).

    ``classes`` takes one value or a list. If more rows than ``max_rows`` would go, the fault
    refuses with SafetyError rather than remove the class only partly.
    """

    name: ClassVar[str] = "class_removal"

    classes: list[Scalar] | None = Field(None, min_length=1, description="class value(s)")

    @field_validator("classes", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, int, float, bool)) else value

    def _apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> DataFaultResult:
        import numpy as np

        s = frame[self.label]
        counts = class_counts(s)
        if counts.empty:
            raise fail(self, f"label {self.label!r} has no classes")
        target = list(self.classes) if self.classes is not None else [counts.idxmin()]
        absent = [c for c in target if c not in counts.index]
        if absent:
            raise fail(self, f"class(es) not in {self.label!r}: {', '.join(map(str, absent))}")
        if len(target) == 1 and isinstance(s.dtype, np.dtype):
            gone = s.to_numpy() == target[0]
        else:
            gone = s.isin(target).to_numpy(dtype=bool)
        rows = np.flatnonzero(gone)
        if self.max_rows is not None and len(rows) > self.max_rows:
            raise SafetyError(
                f"class_removal would remove {len(rows)} rows, more than max_rows={self.max_rows}"
            )
        out = take_rows(frame, np.flatnonzero(~gone))
        details = {"label": self.label, "classes": _plain(target), "removed_rows": int(len(rows))}
        return DataFaultResult(out, rows, list(frame.columns), details)
