"""Verdicts for runs launched with only the ``mlchaos/experiment`` tag (e.g. from the UI).

:func:`~.runner.run_experiment_dagster` finishes its own runs. A run launched with the tag has no
driver, so the run-status sensors finish it once Dagster reports the outcome: translate the event
log, then ``control.finish`` (after the failure sensor delivered its alert).

Either way the verdict is written onto the Dagster run as tags (:func:`tag_verdict`), so the run
page and the runs list (filter by tag) show it: ``mlchaos/verdict``, ``mlchaos/reason``, and the
ledger run id.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg

from mlchaos_orchestration.dagster.request import TAG_RUN_ID, ledger_run_id

if TYPE_CHECKING:  # pragma: no cover
    from mlchaos_orchestration.dagster.scope import Scopes

SUCCESS_SENSOR_NAME = "mlchaos_verdict_on_success"
TAG_VERDICT = "mlchaos/verdict"
TAG_REASON = "mlchaos/reason"
#: longest reason kept in a tag (the ledger and the report hold the whole text)
REASON_CHARS = 250


def verdict_tags(verdict: dict[str, Any], *, ledger_run_id: str | None = None) -> dict[str, str]:
    """The run tags that show ``verdict`` on a Dagster run."""
    tags = {TAG_VERDICT: str(verdict.get("verdict") or "error")}
    reason = " ".join(str(verdict.get("reason") or "").split())
    if reason:
        cut = len(reason) > REASON_CHARS
        tags[TAG_REASON] = reason[: REASON_CHARS - 1] + "…" if cut else reason
    if ledger_run_id:
        tags[TAG_RUN_ID] = ledger_run_id
    return tags


def tag_verdict(
    instance: dg.DagsterInstance,
    dagster_run_id: str,
    verdict: dict[str, Any],
    *,
    ledger_run_id: str | None = None,
) -> bool:
    """Add the verdict tags to the Dagster run; False if the instance has no such run."""
    if not instance.has_run(dagster_run_id):
        return False
    instance.add_run_tags(dagster_run_id, verdict_tags(verdict, ledger_run_id=ledger_run_id))
    return True


def finish_tagged_run(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    *,
    gate: str | None,
    consumer: str | None,
    scopes: "Scopes | None" = None,
) -> dict[str, Any] | None:
    """Translate and finish a tag-launched chaos run; None for other runs or finished ones."""
    from mlchaos_orchestration.core.control import finish
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.dagster.events import translate_run

    run_id = ledger_run_id(run.tags, run.run_id)
    if run_id is None or TAG_RUN_ID in run.tags:  # dormant, or finished by its driver
        return None
    ledger = Ledger()
    record = ledger.get_run(run_id)
    if record is None or record.get("status") != "running":
        return None
    exp = (record.get("meta") or {}).get("experiment") or {}
    translate_run(
        instance,
        run.run_id,
        run_id,
        ledger=ledger,
        gate=exp.get("gate") or gate,
        consumer=exp.get("consumer") or consumer,
        scopes=scopes,
    )
    verdict = finish(run_id, ledger=ledger)
    tag_verdict(instance, run.run_id, verdict, ledger_run_id=run_id)
    return verdict


def chaos_success_sensor(
    *,
    gate: str | None = None,
    consumer: str | None = None,
    name: str = SUCCESS_SENSOR_NAME,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
    scopes: "Scopes | None" = None,
) -> dg.SensorDefinition:
    """A run-success sensor (running by default) finishing tag-launched chaos runs."""

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name=name,
        default_status=default_status,
        description="mlchaos: verdict of chaos runs launched by tag",
    )
    def _verdict_on_success(context: dg.RunStatusSensorContext) -> None:
        verdict = finish_tagged_run(
            context.instance, context.dagster_run, gate=gate, consumer=consumer, scopes=scopes
        )
        if verdict is not None:
            context.log.info(
                "chaos verdict for run %s: %s", context.dagster_run.run_id, verdict["verdict"]
            )

    return _verdict_on_success
