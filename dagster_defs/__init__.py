"""Example Dagster code location: ``dagster definitions validate -m dagster_defs``.

The Definitions live in :mod:`mlchaos_orchestration.examples.definitions`.
"""

from mlchaos_orchestration.examples.definitions import build_defs

defs = build_defs()
