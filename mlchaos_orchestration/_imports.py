"""Import machinery of the package: lazy public APIs and the deprecated module paths.

* :func:`lazy_exports` - a package names its exports; they are imported on first attribute
  access, so importing the package itself stays cheap (DAG files, plugins, task processes).
* :data:`MOVED` - module paths of release 0.1 that moved when the package was regrouped by role.
  Importing an old path still works for one release: it warns (``DeprecationWarning``) and gives
  the module at its new path (the very same module object).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib import import_module
from types import ModuleType
from typing import Any

PACKAGE = "mlchaos_orchestration"

#: old module path -> new module path (relative to the package); removed in release 0.3
MOVED: dict[str, str] = {
    "airflow.report": "airflow.verdicts",
    "airflow.suite": "suite.airflow_worker",
    "airflow_ui": "airflow.ui",
    "airflow_ui.app": "airflow.ui.app",
    "airflow_ui.auth": "airflow.ui.auth",
    "airflow_ui.data": "airflow.ui.data",
    "airflow_ui.lazy": "airflow.ui.asgi",
    "airflow_ui.render": "airflow.ui.render",
    "alerts": "core.alerts",
    "cli_suite": "cli.suite",
    "config": "settings",
    "control": "core.control",
    "dagster.definitions": "dagster.wrap",
    "dagster.suite": "suite.dagster_worker",
    "demo": "suite.demo",
    "examples.config": "examples.locations",
    "examples.pipeline": "examples.steps",
    "experiment": "core.experiment",
    "faults.connector": "faults.environment.connector",
    "faults.data_arrow": "faults.data.arrow",
    "faults.data_common": "faults.data.common",
    "faults.data_labels": "faults.data.labels",
    "faults.data_rows": "faults.data.rows",
    "faults.data_schema": "faults.data.schema",
    "faults.data_values": "faults.data.values",
    "faults.outage": "faults.environment.outage",
    "faults.stale": "faults.environment.stale",
    "faults.stored": "faults.environment.stored",
    "formats": "core.formats",
    "gx": "gates.gx",
    "hooks": "interceptors",
    "hooks.botocore_hook": "interceptors.s3",
    "hooks.ledger_sync": "interceptors.ledger_sync",
    "hooks.sqlalchemy_hook": "interceptors.sql",
    "lazy": "_imports",
    "ledger": "core.ledger",
    "mutation": "gates.mutation",
    "pipeline": "core.pipeline",
    "report": "reporting.report",
    "runner": "core.runner",
    "safety": "core.safety",
    "scoring": "reporting.scoring",
    "session": "core.session",
    "sweep": "reporting.sweep",
    "targets": "core.targets",
    "testing._reaper": "testing.reaper",
    "torture": "testing.torture",
    "verdict": "core.verdict",
}


def lazy_exports(
    package: str, exports: dict[str, str]
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


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves a deprecated module path to the module at its new path, with a warning."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(PACKAGE + ".") or fullname[len(PACKAGE) + 1 :] not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = f"{PACKAGE}.{MOVED[spec.name[len(PACKAGE) + 1 :]]}"
        warnings.warn(
            f"{spec.name} moved to {new}; the old path goes away in release 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        module = import_module(new)
        sys.modules[spec.name] = module
        # the import system stamps the alias spec on the module; exec_module puts its own back
        module.__dict__.setdefault("__mlchaos_spec__", module.__spec__)
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The module at the new path is already executed: only undo the alias spec."""
        module.__spec__ = module.__dict__.pop("__mlchaos_spec__", module.__spec__)


def install_moved_finder() -> None:
    """Make the deprecated module paths of :data:`MOVED` importable (idempotent)."""
    if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
        sys.meta_path.append(_MovedModules())
