"""Which chaos a Dagster run asks for (Dagster-free, so it is testable and cheap to import).

A run asks for chaos through its tags:

* ``mlchaos/run_id`` - a ledger run already begun by :func:`~.runner.run_experiment_dagster` or the
  resilience job (the experiment spec is read from the ledger run, so any worker process can
  resolve it);
* ``mlchaos/experiment`` - an experiment name in the file given to :func:`~.wrap.with_chaos`
  (or ``$MLCHAOS_EXPERIMENTS_FILE``), or in ``mlchaos/experiments_file`` (a file named at run
  time); the ledger run is begun here with the Dagster run id as run key (e.g. a run launched
  from the UI with that tag);
* ``mlchaos/experiment_spec`` - one experiment inline (YAML / JSON), given at run time.

Run-time input (an inline experiment, a file named in the tags) can only NARROW the deployment's
safety: its ``safety`` is bounded by :func:`mlchaos_orchestration.core.safety.bound_runtime_safety`
against the deployment (``with_chaos(safety=...)``, the experiments file given to
``with_chaos``, the environment). A widening request is refused in one line before anything is
touched (no ledger run, no lease). Gate, consumer and ``at`` names are checked against the asset
graph when the run starts. Without any chaos tag the run is dormant and the wrappers only delegate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlchaos_orchestration.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from mlchaos_orchestration.core.experiment import Experiment
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.core.safety import SafetySpec
    from mlchaos_orchestration.dagster.scope import Scopes

TAG_EXPERIMENT = "mlchaos/experiment"
TAG_RUN_ID = "mlchaos/run_id"
TAG_EXPERIMENTS_FILE = "mlchaos/experiments_file"
TAG_EXPERIMENT_SPEC = "mlchaos/experiment_spec"
FILE_ENV = "MLCHAOS_EXPERIMENTS_FILE"
ORCHESTRATOR = "dagster"
WHERE = "Dagster run tags"


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


@dataclass(frozen=True)
class Deployment:
    """What the deployment (code, not run-time input) says: the trusted experiments file, the
    safety ceiling given to ``with_chaos``, default gate / consumer and the graph's names."""

    experiments_file: str | None = None
    safety: Sequence[SafetySpec] = ()
    gate: str | None = None
    consumer: str | None = None
    pipeline: str = ""
    scopes: Scopes | None = None


_CACHE: dict[str, ChaosRequest] = {}


def is_chaos_run(tags: Mapping[str, str]) -> bool:
    """Whether a run's tags ask for chaos at all (cheap; no ledger access)."""
    return any(tags.get(t) for t in (TAG_RUN_ID, TAG_EXPERIMENT, TAG_EXPERIMENT_SPEC))


def resolve(
    tags: Mapping[str, str],
    *,
    dagster_run_id: str,
    experiments_file: str | None = None,
    pipeline: str = "",
    ledger: Ledger | None = None,
    deployment: Deployment | None = None,
) -> ChaosRequest | None:
    """The chaos request of a run from its tags, or ``None`` for a dormant run.

    Raises :class:`~mlchaos_orchestration.errors.SafetyError` / :class:`SpecError` (one line)
    for a run-time experiment that widens the deployment's safety or names what the graph
    does not have - before any ledger run, lease or backup exists."""
    if not is_chaos_run(tags):
        return None
    cached = _CACHE.get(dagster_run_id)
    if cached is not None:
        return cached
    from mlchaos_orchestration.core.ledger import Ledger

    deployment = deployment or Deployment(experiments_file=experiments_file, pipeline=pipeline)
    ledger = ledger or Ledger()
    if TAG_RUN_ID in tags:
        request = from_ledger(tags[TAG_RUN_ID], ledger)
    else:
        request = _begin(tags, dagster_run_id, deployment, ledger)
    _CACHE[dagster_run_id] = request
    return request


def _begin(
    tags: Mapping[str, str], dagster_run_id: str, deployment: Deployment, ledger: Ledger
) -> ChaosRequest:
    from mlchaos_orchestration.core.control import begin_run

    exp, runtime = runtime_experiment(tags, deployment)
    if runtime:
        exp = bounded(exp, deployment)
    if deployment.scopes is not None:
        deployment.scopes.check_names(
            gate=exp.gate or deployment.gate,
            consumer=exp.consumer or deployment.consumer,
            at=[f.at for f in exp.faults],
            where=f"experiment {exp.name!r}",
        )
    run_id = begin_run(
        exp,
        run_key=dagster_run_id,
        orchestrator=ORCHESTRATOR,
        pipeline=deployment.pipeline,
        ledger=ledger,
    )
    return ChaosRequest(experiment=exp, run_id=run_id, run_key=dagster_run_id)


def runtime_experiment(tags: Mapping[str, str], deployment: Deployment) -> tuple[Experiment, bool]:
    """The experiment the tags name, and whether it came from run-time input (inline spec or a
    file named in the tags) rather than the deployment's own file."""
    from mlchaos_orchestration.core.experiment import load_experiments, parse_experiment

    inline = tags.get(TAG_EXPERIMENT_SPEC)
    if inline:
        import yaml

        try:
            raw: Any = yaml.safe_load(inline)
        except yaml.YAMLError:
            raise SpecError([f"tag {TAG_EXPERIMENT_SPEC}: invalid YAML"]) from None
        return parse_experiment(raw, f"tag {TAG_EXPERIMENT_SPEC}"), True
    name = tags[TAG_EXPERIMENT]
    tagged = tags.get(TAG_EXPERIMENTS_FILE)
    path = tagged or deployment.experiments_file or os.environ.get(FILE_ENV)
    if not path:
        raise SpecError(
            [
                f"tag {TAG_EXPERIMENT}={name!r}: no experiments file (tag "
                f"{TAG_EXPERIMENTS_FILE}, with_chaos(experiments_file=) or ${FILE_ENV})"
            ]
        )
    trusted = deployment.experiments_file or os.environ.get(FILE_ENV)
    runtime = bool(tagged) and not _same_file(tagged, trusted)
    return load_experiments(str(path)).get(name), runtime


def bounded(exp: Experiment, deployment: Deployment) -> Experiment:
    """``exp`` with its safety bounded by the deployment (raises SafetyError if it widens)."""
    from mlchaos_orchestration.core.safety import bound_runtime_safety

    safety = bound_runtime_safety(exp.safety, deployment=deployment_safety(deployment), where=WHERE)
    return exp.model_copy(update={"safety": safety})


def deployment_safety(deployment: Deployment) -> list[SafetySpec]:
    """The deployment's safety specs: ``with_chaos(safety=)`` and every experiment of the
    trusted experiments file."""
    from mlchaos_orchestration.core.experiment import load_experiments

    specs = list(deployment.safety)
    trusted = deployment.experiments_file or os.environ.get(FILE_ENV)
    if trusted:
        specs.extend(e.safety for e in load_experiments(trusted).experiments)
    return specs


def _same_file(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return os.path.realpath(a) == os.path.realpath(b)


def ledger_run_id(tags: Mapping[str, str], dagster_run_id: str) -> str | None:
    """The ledger run id of a chaos run from its tags (None for a dormant run)."""
    if TAG_RUN_ID in tags:
        return tags[TAG_RUN_ID]
    cached = _CACHE.get(dagster_run_id)
    if cached is not None:
        return cached.run_id
    name = tags.get(TAG_EXPERIMENT)
    if not name and tags.get(TAG_EXPERIMENT_SPEC):
        try:
            name = runtime_experiment(tags, Deployment())[0].name
        except Exception:  # noqa: BLE001 - a refused / invalid spec began no ledger run
            return None
    if name:
        from mlchaos_orchestration.core.control import run_id_for

        return run_id_for(dagster_run_id, name)
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
