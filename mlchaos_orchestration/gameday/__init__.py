"""Game days on the serving side: an online feature store on Redis, a prediction API with a
circuit breaker and cached fallback features, load from Locust in its own process, network and
serving faults, steady-state probes from Prometheus (or the API's own ``/metrics``), a kill switch
and a generated post-mortem.

Nothing here is imported by ``import mlchaos_orchestration``; the heavy parts (FastAPI, redis,
Locust, matplotlib) are imported inside the functions that need them.
"""
