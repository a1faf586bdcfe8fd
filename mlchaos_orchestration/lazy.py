"""Lazy public APIs: a package names its exports; they are imported on first attribute access,
so importing the package itself stays cheap (DAG files, plugins, task processes)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose names live in ``exports[name]``
    (a sub-module name, relative with or without a leading dot)."""

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module("." + module.lstrip("."), package), name)

    def dir_() -> list[str]:
        return sorted(exports)

    return getattr_, dir_
