"""Example Dagster code location: ``dagster definitions validate -m dagster_defs``."""

from dagster_defs.definitions import build_defs

defs = build_defs()
