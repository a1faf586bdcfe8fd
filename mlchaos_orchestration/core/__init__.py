"""The orchestrator-neutral engine: experiments, the ledger, fault sessions (lease, backup, apply,
restore), the control API adapters call, verdicts, the plain runner, targets and safety guards.

Nothing here imports Airflow, Dagster or Great Expectations.
"""
