"""The ``mlchaos`` command line: :mod:`.commands`, with suite, report and demo in :mod:`.suite`."""

from __future__ import annotations

from mlchaos_orchestration._imports import lazy_exports

_EXPORTS = {"app": "commands", "main": "commands"}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
