"""``make distributed``: the example matrix on a Celery-executed Airflow and on a daemon-driven
Dagster, every component a separate process on loopback (nothing shared but PostgreSQL, Redis
and the moto S3 server), compared with the in-process runs (``dag.test`` /
``execute_in_process``). Entry point: ``python -m mlchaos_orchestration.testing.distributed``.
"""
