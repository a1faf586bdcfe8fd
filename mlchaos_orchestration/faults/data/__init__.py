"""The data-fault catalog. Importing this module registers every built-in data fault.

- values: ``nulls``, ``out_of_range``, ``type_flip``, ``unseen_category``, ``drift``
- schema: ``drop_column``, ``rename_column``
- rows / labels: ``duplicate_rows``, ``label_shuffle``, ``mislabel``, ``class_removal``

``apply_to_arrow`` runs any of them on a ``pyarrow.Table``.
"""

from __future__ import annotations

from mlchaos_orchestration.faults.data.arrow import apply_to_arrow
from mlchaos_orchestration.faults.data.common import fast_sample
from mlchaos_orchestration.faults.data.labels import ClassRemoval, LabelShuffle, Mislabel
from mlchaos_orchestration.faults.data.rows import DuplicateRows
from mlchaos_orchestration.faults.data.schema import DropColumn, RenameColumn
from mlchaos_orchestration.faults.data.values import (
    Drift,
    Nulls,
    OutOfRange,
    TypeFlip,
    UnseenCategory,
)

__all__ = [
    "ClassRemoval",
    "DropColumn",
    "Drift",
    "DuplicateRows",
    "LabelShuffle",
    "Mislabel",
    "Nulls",
    "OutOfRange",
    "RenameColumn",
    "TypeFlip",
    "UnseenCategory",
    "apply_to_arrow",
    "fast_sample",
]
