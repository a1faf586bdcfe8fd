"""Numbers and values as people read them: ``115.0`` rather than ``np.float64(115.0)``,
``[]`` rather than ``PydanticUndefined``."""

from __future__ import annotations

import re
from typing import Any

#: a NumPy scalar's repr (NumPy >= 2), e.g. ``np.float64(114.99)``, ``np.int64(3)``,
#: ``np.True_``, ``np.str_('a')``; also ``numpy.`` and a bare ``float64(...)``
_NP_SCALAR = re.compile(
    r"\b(?:np\.|numpy\.)?(?:float(?:16|32|64|128)|u?int(?:8|16|32|64)|longdouble|"
    r"complex(?:64|128)|bool_?|str_|bytes_|datetime64|timedelta64)\(([^()]*)\)"
)
_NP_BOOL = re.compile(r"\b(?:np|numpy)\.(True|False)_")


def plain_numbers(text: str) -> str:
    """``text`` with every NumPy scalar repr replaced by its plain value:
    ``observed np.float64(114.99)`` -> ``observed 114.99``; ``np.True_`` -> ``True``."""
    text = _NP_BOOL.sub(r"\1", str(text))
    return _NP_SCALAR.sub(lambda m: _plain_arg(m.group(1)), text)


def _plain_arg(arg: str) -> str:
    """The value inside a scalar repr: a quoted string whole, else up to the first comma
    (``np.datetime64('2026-01-01','D')`` -> ``'2026-01-01'``)."""
    arg = arg.strip()
    quoted = re.match(r"""('[^']*'|"[^"]*")""", arg)
    return quoted.group(1) if quoted else arg.split(",", 1)[0].strip()


def plain(value: Any) -> Any:
    """A value with NumPy scalars turned into Python ones (recursively through lists, tuples
    and dicts), so ``repr``/``str``/JSON show plain numbers."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value
