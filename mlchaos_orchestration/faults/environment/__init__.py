"""Environment faults: where data lives or how it is reached.

- ``upstream_outage`` (:mod:`.outage`), ``stale_partition_replay`` (:mod:`.stale`)
- ``connector_failure`` (:mod:`.connector`, through :mod:`mlchaos_orchestration.interceptors`)
- data faults applied to stored data (:mod:`.stored`)
"""
