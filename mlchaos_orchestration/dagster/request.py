"""Which chaos a Dagster run asks for (Dagster-free, so it is testable and cheap to import).

A run asks for chaos through its tags:

* ``mlchaos/run_id`` - a ledger run already begun by :func:`~.runner.run_experiment_dagster` or the
  resilience job (the experiment spec is read from the ledger run, so any worker process can
  resolve it);
* ``mlchaos/experiment`` - an experiment name in ``mlchaos/experiments_file`` (tag), the file given
  to :func:`~.definitions.with_chaos`, or ``$MLCHAOS_EXPERIMENTS_FILE``; the ledger run is begun
  here with the Dagster run id as run key (e.g. a run launched from the UI with that tag).

Without either tag the run is dormant and the chaos wrappers only delegate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlchaos_orchestration.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from mlchaos_orchestration.core.experiment import Experiment
    from mlchaos_orchestration.core.ledger import Ledger

TAG_EXPERIMENT = "mlchaos/experiment"
TAG_RUN_ID = "mlchaos/run_id"
TAG_EXPERIMENTS_FILE = "mlchaos/experiments_file"
FILE_ENV = "MLCHAOS_EXPERIMENTS_FILE"
ORCHESTRATOR = "dagster"


@dataclass(frozen=True)
class ChaosRequest:
    """The chaos a run asked for: the experiment, its ledger run id and run key."""

    experiment: Experiment
    run_id: str
    run_key: str

    @property
    def seed(self) -> int:
        """Per-run seed (experiment seed x run key): the same in every step process."""
        from mlchaos_orchestration.core.control import seed_for

        return seed_for(self.experiment.seed, self.run_key)


def resolve(
    tags: Mapping[str, str],
    *,
    dagster_run_id: str,
    experiments_file: str | None = None,
    pipeline: str = "",
    ledger: Ledger | None = None,
) -> ChaosRequest | None:
    """The chaos request of a run from its tags, or ``None`` for a dormant run."""
    from mlchaos_orchestration.core.ledger import Ledger

    if TAG_RUN_ID in tags:
        return from_ledger(tags[TAG_RUN_ID], ledger or Ledger())
    name = tags.get(TAG_EXPERIMENT)
    if not name:
        return None
    from mlchaos_orchestration.core.control import begin_run
    from mlchaos_orchestration.core.experiment import load_experiments

    path = tags.get(TAG_EXPERIMENTS_FILE) or experiments_file or os.environ.get(FILE_ENV)
    if not path:
        raise SpecError(
            [
                f"tag {TAG_EXPERIMENT}={name!r}: no experiments file (tag "
                f"{TAG_EXPERIMENTS_FILE}, with_chaos(experiments_file=) or ${FILE_ENV})"
            ]
        )
    exp = load_experiments(str(path)).get(name)
    run_id = begin_run(
        exp, run_key=dagster_run_id, orchestrator=ORCHESTRATOR, pipeline=pipeline, ledger=ledger
    )
    return ChaosRequest(experiment=exp, run_id=run_id, run_key=dagster_run_id)


def ledger_run_id(tags: Mapping[str, str], dagster_run_id: str) -> str | None:
    """The ledger run id of a chaos run from its tags (None for a dormant run)."""
    if TAG_RUN_ID in tags:
        return tags[TAG_RUN_ID]
    if tags.get(TAG_EXPERIMENT):
        from mlchaos_orchestration.core.control import run_id_for

        return run_id_for(dagster_run_id, tags[TAG_EXPERIMENT])
    return None


def from_ledger(run_id: str, ledger: Ledger) -> ChaosRequest:
    """The request of a ledger run begun elsewhere (its meta holds the experiment spec)."""
    from mlchaos_orchestration.core.experiment import parse_experiment

    run = ledger.get_run(run_id)
    if run is None:
        raise SpecError([f"tag {TAG_RUN_ID}={run_id!r}: no such ledger run"])
    meta = run.get("meta") or {}
    exp = parse_experiment(meta.get("experiment") or {}, f"ledger run {run_id}")
    return ChaosRequest(experiment=exp, run_id=run_id, run_key=str(meta.get("run_key", run_id)))
