"""The fault catalog: every fault class by name, and where it comes from.

Faults register through the ``mlchaos.faults`` entry-point group, the built-ins included (see
``pyproject.toml``), so a third-party package adds a fault without editing this one::

    [project.entry-points."mlchaos.faults"]
    my_fault = "my_package.faults:MyFault"

Classes may also register in code with the :func:`register` decorator (tests, notebooks). Entry
points are read once, on the first look-up; a broken third-party entry point is reported by
:func:`load_errors` and never hides the others.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from mlchaos_orchestration.errors import UnknownFaultError

if TYPE_CHECKING:  # pragma: no cover
    from mlchaos_orchestration.faults.base import Fault

GROUP = "mlchaos.faults"
BUILTIN_ORIGIN = "mlchaos-orchestration"
#: modules of the built-in faults, for a source tree whose entry points are not installed
BUILTIN_MODULES = (
    "mlchaos_orchestration.faults.data",
    "mlchaos_orchestration.faults.environment.connector",
    "mlchaos_orchestration.faults.environment.outage",
    "mlchaos_orchestration.faults.environment.stale",
    "mlchaos_orchestration.faults.model_registry",
    "mlchaos_orchestration.faults.traffic",
)

_REGISTRY: dict[str, type[Fault]] = {}
_ORIGIN: dict[str, str] = {}
_ERRORS: dict[str, str] = {}
_loaded = False


def register(cls: type[Fault]) -> type[Fault]:
    """Class decorator: add a fault class to the catalog under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not name:
        raise TypeError(f"{cls.__name__} has no fault name")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise TypeError(f"fault {name!r} registered twice")
    _REGISTRY[name] = cls
    _ORIGIN.setdefault(name, f"code ({cls.__module__})")
    return cls


def registry() -> dict[str, type[Fault]]:
    """All fault classes by name (entry points are loaded on the first call)."""
    _load()
    return dict(sorted(_REGISTRY.items()))


def origin(name: str) -> str:
    """Where fault ``name`` comes from: a distribution name, or ``code (module)``."""
    _load()
    return _ORIGIN.get(name, "unknown")


def load_errors() -> dict[str, str]:
    """Entry points of group ``mlchaos.faults`` that failed to load: name -> one-line reason."""
    _load()
    return dict(_ERRORS)


def get_fault_class(name: str) -> type[Fault]:
    """The fault class registered as ``name``; unknown names raise with a did-you-mean hint."""
    faults = registry()
    if not isinstance(name, str) or name not in faults:
        raise UnknownFaultError(str(name), faults)
    return faults[name]


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from importlib.metadata import entry_points

    from mlchaos_orchestration.faults.base import Fault

    found = entry_points(group=GROUP)
    if not any(ep.value.startswith("mlchaos_orchestration.") for ep in found):
        for module in BUILTIN_MODULES:  # running from a source tree without installed metadata
            import_module(module)
    for ep in found:
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not hide the catalog
            _ERRORS[ep.name] = f"{ep.value}: {type(exc).__name__}: {exc}"
            continue
        if not (isinstance(cls, type) and issubclass(cls, Fault)) or cls.name != ep.name:
            _ERRORS[ep.name] = f"{ep.value}: not a Fault class named {ep.name!r}"
            continue
        if ep.name in _REGISTRY and _REGISTRY[ep.name] is not cls:
            _ERRORS[ep.name] = f"{ep.value}: a fault named {ep.name!r} is already registered"
            continue
        _REGISTRY[ep.name] = cls
        _ORIGIN[ep.name] = dist
