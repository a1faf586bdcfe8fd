"""Weekly resilience of a Dagster asset graph: every experiment of a YAML matrix (same format as
Airflow; a clean control run first) against a chaos-wrapped graph, then the full report.

:func:`weekly_resilience` (what to use) gives a **resilience asset** (``mlchaos/<name>``), an
asset job materialising it and a weekly schedule. Each materialisation runs the matrix on the
chosen asset selection (or job) with the shared ledger, writes ``journal.json`` / ``junit.xml`` /
``report.html`` with a suite id (like ``mlchaos suite``) and publishes them to the reports
location (``MlchaosResource.reports_location`` / ``MLCHAOS_REPORTS_LOCATION``; default
``<MLCHAOS_HOME>/reports``). Its materialisation carries the resilience score and verdict counts
as numeric metadata (Dagster plots their history on the asset page), the report link, and an
asset check ``verdicts_as_expected``. The run gets the score and report link as tags, each
chaos run the report link (next to its verdict tags).

:func:`resilience_job` + :func:`resilience_schedule` are the older op-job form (rows as output);
they write and publish the same report.
"""

import datetime as dt
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, NamedTuple

import dagster as dg

from mlchaos_orchestration.core.experiment import Experiment

DefsSource = dg.Definitions | Callable[[], dg.Definitions] | str
#: verdicts always present in the asset's metadata (0 when none), so each has a plotted history
PLOTTED_VERDICTS = ("caught", "unalerted", "silent", "false_alarm", "gate_crashed", "error")
CHECK_NAME = "verdicts_as_expected"
TAG_SCORE = "mlchaos/resilience_score"
TAG_REPORT = "mlchaos/report"


class ResilienceConfig(dg.Config):
    """``ds``: the partition/run date (default: yesterday, UTC); ``experiments``: names to run
    (default: all)."""

    ds: str = ""
    experiments: list[str] = []


def load_defs(source: DefsSource) -> dg.Definitions:
    """The target Definitions: as given, from a factory or a ``module:attribute`` string."""
    if isinstance(source, dg.Definitions):
        return source
    if callable(source):
        return source()
    module, _, attr = source.partition(":")
    value = getattr(import_module(module), attr or "defs")
    return value() if callable(value) else value


def matrix(experiments_file: str, names: list[str] | None = None) -> list[Experiment]:
    """The experiments to run, control runs first; a bare control run is added if none."""
    from mlchaos_orchestration.core.experiment import load_experiments, parse_experiment

    exps = load_experiments(experiments_file).experiments
    if names:
        exps = [e for e in exps if e.name in set(names)]
    if not any(e.control for e in exps):
        first = exps[0] if exps else None
        exps.insert(
            0,
            parse_experiment(
                {
                    "name": "control",
                    "control": True,
                    "expect": "clean",
                    "gate": first.gate if first else None,
                    "consumer": first.consumer if first else None,
                }
            ),
        )
    return sorted(exps, key=lambda e: not e.control)


def run_matrix(
    defs: dg.Definitions,
    experiments: list[Experiment],
    *,
    partition_key: str | None,
    instance: dg.DagsterInstance,
    log: Any = None,
    suite_id: str | None = None,
    pipeline: str = "dagster_resilience",
    job_name: str | None = None,
    asset_selection: Sequence[dg.AssetKey] | None = None,
    ds: str | None = None,
) -> list[dict[str, Any]]:
    """Run each experiment; one row per experiment with its verdict and expectation."""
    from mlchaos_orchestration.dagster.runner import run_experiment_dagster

    rows = []
    for exp in experiments:
        verdict = run_experiment_dagster(
            defs,
            exp,
            partition_key=partition_key,
            ds=ds,
            instance=instance,
            pipeline=pipeline,
            suite_id=suite_id,
            job_name=job_name,
            asset_selection=asset_selection,
        )
        row = {
            "experiment": exp.name,
            "verdict": verdict["verdict"],
            "expect": exp.expect,
            "as_expected": exp.expect is None or exp.expect == verdict["verdict"],
            "run_id": verdict["run_id"],
            "dagster_run_id": verdict.get("dagster_run_id"),
            "reason": verdict.get("reason", ""),
        }
        if log is not None:
            log.info("%s: %s (expected %s)", exp.name, row["verdict"], exp.expect)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------ one suite run
@dataclass
class ResilienceOutcome:
    """One resilience suite: verdict rows, the journal and where its report went."""

    suite_id: str
    rows: list[dict[str, Any]]
    journal: dict[str, Any]
    report_dir: Path | None
    report_link: str
    ds: str

    @property
    def score(self) -> float | None:
        return self.journal.get("resilience_score")

    @property
    def unexpected(self) -> list[str]:
        return [r["experiment"] for r in self.rows if not r["as_expected"]]

    def link_metadata(self) -> dg.MetadataValue:
        """The report as a clickable URL (s3://, http) or a local path."""
        if "://" in self.report_link:
            return dg.MetadataValue.url(self.report_link)
        return dg.MetadataValue.path(self.report_link)

    def metadata(self) -> dict[str, Any]:
        """Materialisation metadata: numbers Dagster plots, the report link, the verdicts."""
        counts = Counter(r["verdict"] for r in self.rows)
        meta: dict[str, Any] = {
            "suite_id": self.suite_id,
            "ds": self.ds,
            "experiments": dg.MetadataValue.int(len(self.rows)),
            "unexpected": ", ".join(self.unexpected) or "none",
            "report": self.link_metadata(),
            "verdicts": dg.MetadataValue.json({r["experiment"]: r["verdict"] for r in self.rows}),
        }
        if self.score is not None:
            meta["resilience_score"] = dg.MetadataValue.float(float(self.score))
        mutation = self.journal.get("mutation") or {}
        if mutation.get("score") is not None:
            meta["gate_mutation_score"] = dg.MetadataValue.float(float(mutation["score"]))
        for verdict in sorted({*PLOTTED_VERDICTS, *counts}):
            meta[f"verdicts/{verdict}"] = dg.MetadataValue.int(counts.get(verdict, 0))
        return meta

    def tag_runs(self, instance: dg.DagsterInstance, suite_run_id: str) -> None:
        """Score and report link as tags of the suite's run; the report link on each of its
        chaos runs too (their verdict tags are already there)."""
        score = "none" if self.score is None else str(self.score)
        instance.add_run_tags(suite_run_id, {TAG_SCORE: score, TAG_REPORT: self.report_link})
        for row in self.rows:
            if row.get("dagster_run_id") and instance.has_run(row["dagster_run_id"]):
                instance.add_run_tags(row["dagster_run_id"], {TAG_REPORT: self.report_link})


def run_resilience(
    target: DefsSource,
    experiments_file: str,
    *,
    instance: dg.DagsterInstance,
    suite_id: str,
    ds: str = "",
    experiments: list[str] | None = None,
    selection: dg.AssetSelection | None = None,
    job_name: str | None = None,
    pipeline: str = "dagster_resilience",
    reports_location: str | None = None,
    log: Any = None,
) -> ResilienceOutcome:
    """Run the matrix of ``experiments_file`` on ``target`` (chaos-wrapped here if it is not
    yet), write the report and publish it."""
    from mlchaos_orchestration.core.ledger import Ledger
    from mlchaos_orchestration.reporting.report import build_journal

    defs = _chaos_defs(load_defs(target), experiments_file)
    day = ds or (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()
    keys = None if job_name else selected_assets(defs, selection)
    partitioned = _partitioned(defs, job_name, keys)
    rows = run_matrix(
        defs,
        matrix(experiments_file, experiments),
        partition_key=day if partitioned else None,
        ds=day,
        instance=instance,
        log=log,
        suite_id=suite_id,
        pipeline=pipeline,
        job_name=job_name,
        asset_selection=keys,
    )
    meta = {
        "orchestrators": ["dagster"],
        "experiments_file": str(experiments_file),
        "ds": day,
        "targets": [
            {
                "kind": "dagster",
                "pipeline": pipeline,
                "describe": f"Dagster {'job ' + job_name if job_name else 'assets'} ({pipeline})",
                "assets": [k.to_user_string() for k in keys or []],
            }
        ],
    }
    journal = build_journal(Ledger(), suite_id, title=f"resilience of {pipeline}", meta=meta)
    report_dir, link = write_and_publish(journal, reports_location)
    return ResilienceOutcome(suite_id, rows, journal, report_dir, link, day)


def write_and_publish(journal: dict[str, Any], url: str | None = None) -> tuple[Path | None, str]:
    """Write the report into the reports location (default ``<MLCHAOS_HOME>/reports``); return
    the local folder (None for S3) and the link to its ``report.html``."""
    from mlchaos_orchestration.reporting.location import ReportsLocation, reports_location
    from mlchaos_orchestration.reporting.report import write_report
    from mlchaos_orchestration.settings import get_settings

    location = reports_location(url) or ReportsLocation(str(get_settings().data_dir / "reports"))
    if location.root is not None:
        out = write_report(journal, location.root)
        published = location.publish(out)
        return out, str(location.root / published.name / "report.html")
    with tempfile.TemporaryDirectory(prefix="mlchaos-report-") as tmp:
        published = location.publish(write_report(journal, tmp))
    return None, f"{location.url.rstrip('/')}/{published.name}/report.html"


def _chaos_defs(defs: dg.Definitions, experiments_file: str) -> dg.Definitions:
    from mlchaos_orchestration.dagster.runner import META_SENSOR, meta_value
    from mlchaos_orchestration.dagster.wrap import with_chaos

    if meta_value(defs, META_SENSOR):
        return defs
    return with_chaos(defs, experiments_file=experiments_file)


def selected_assets(
    defs: dg.Definitions, selection: dg.AssetSelection | None
) -> list[dg.AssetKey] | None:
    """The asset keys a chaos run executes: ``selection`` (or every asset) minus the
    resilience assets; None for "all" when the Definitions have no resilience asset."""
    from mlchaos_orchestration.dagster.runner import pipeline_assets

    if selection is None:
        return pipeline_assets(defs)
    graph = defs.resolve_asset_graph()
    keep = set(pipeline_assets(defs) or graph.materializable_asset_keys)
    chosen = dg.AssetSelection.from_coercible(selection).resolve(graph)
    keys = sorted(k for k in chosen if k in keep)
    if not keys:
        from mlchaos_orchestration.errors import SpecError

        raise SpecError([f"resilience selection {selection} selects no asset of the Definitions"])
    return keys


def _partitioned(
    defs: dg.Definitions, job_name: str | None, keys: Sequence[dg.AssetKey] | None
) -> bool:
    if job_name:
        return defs.resolve_job_def(job_name).partitions_def is not None
    graph = defs.resolve_asset_graph()
    chosen = keys if keys is not None else graph.materializable_asset_keys
    return any(graph.get(k).partitions_def is not None for k in chosen)


def _yesterday(when: dt.datetime | None = None) -> str:
    now = when or dt.datetime.now(dt.timezone.utc)
    return (now.date() - dt.timedelta(days=1)).isoformat()


# ---------------------------------------------------------------- asset + job + schedule
class Resilience(NamedTuple):
    """What :func:`weekly_resilience` returns; ``defs`` is ready for ``Definitions.merge``."""

    asset: dg.AssetsDefinition
    job: Any  # the asset job (define_asset_job's unresolved job definition)
    schedule: dg.ScheduleDefinition

    @property
    def defs(self) -> dg.Definitions:
        return dg.Definitions(assets=[self.asset], jobs=[self.job], schedules=[self.schedule])


def weekly_resilience(
    target: DefsSource,
    experiments_file: str,
    *,
    selection: Any = None,
    job_name: str | None = None,
    cron_schedule: str = "@weekly",
    name: str = "mlchaos_resilience",
    pipeline: str | None = None,
    reports_location: str | None = None,
    execution_timezone: str = "UTC",
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
) -> Resilience:
    """A resilience asset for ``target`` (Definitions, factory or ``module:attr``; chaos-wrapped
    if not yet), its asset job ``name`` and a schedule ``<name>_weekly``.

    ``selection`` (anything ``AssetSelection.from_coercible`` takes) or ``job_name`` choose what
    each chaos run executes (default: every asset but the resilience assets). A scheduled run
    tests the day before its tick (``ds``); a manual one yesterday, or the ``ds`` in its config.
    """
    from mlchaos_orchestration.dagster.runner import TAG_RESILIENCE_ASSET

    key = dg.AssetKey(["mlchaos", name])
    label = pipeline or name
    coerced = dg.AssetSelection.from_coercible(selection) if selection is not None else None

    @dg.asset(
        key=key,
        group_name="mlchaos",
        tags={TAG_RESILIENCE_ASSET: "score"},
        description=f"mlchaos resilience of {label}: score, verdicts and report of the matrix",
        check_specs=[dg.AssetCheckSpec(CHECK_NAME, asset=key)],
    )
    def _resilience(
        context: dg.AssetExecutionContext, config: ResilienceConfig
    ) -> dg.MaterializeResult:
        outcome = run_resilience(
            target,
            experiments_file,
            instance=context.instance,
            suite_id=f"dagster-{context.run_id}",
            ds=config.ds,
            experiments=config.experiments,
            selection=coerced,
            job_name=job_name,
            pipeline=label,
            reports_location=reports_location,
            log=context.log,
        )
        outcome.tag_runs(context.instance, context.run_id)
        context.log.info("resilience score %s, report %s", outcome.score, outcome.report_link)
        return dg.MaterializeResult(
            metadata=outcome.metadata(),
            check_results=[
                dg.AssetCheckResult(
                    check_name=CHECK_NAME,
                    passed=not outcome.unexpected,
                    metadata={
                        "unexpected": ", ".join(outcome.unexpected) or "none",
                        "report": outcome.link_metadata(),
                    },
                )
            ],
        )

    job = dg.define_asset_job(  # one step; its chaos runs execute in process anyway
        name,
        selection=[key],
        description=f"mlchaos: weekly resilience matrix of {label}",
        executor_def=dg.in_process_executor,
    )
    op_name = _resilience.op.name

    @dg.schedule(
        cron_schedule=cron_schedule,
        job=job,
        name=f"{name}_weekly",
        execution_timezone=execution_timezone,
        default_status=default_status,
        description=f"mlchaos: resilience matrix of {label} ({cron_schedule})",
    )
    def _weekly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        busy = busy_runs(context.instance, name)
        if busy:
            return dg.SkipReason(
                f"resilience run {busy[0]} of {name!r} is still queued or running: not launching "
                "another (the matrix shares the pipeline's data, one run at a time)"
            )
        ds = _yesterday(context.scheduled_execution_time)
        return dg.RunRequest(
            run_key=f"{name}:{ds}",
            run_config=dg.RunConfig(ops={op_name: ResilienceConfig(ds=ds)}),
            tags={"mlchaos/ds": ds},
        )

    return Resilience(_resilience, job, _weekly)


#: run statuses of a resilience run that has not finished yet
UNFINISHED = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)


def busy_runs(instance: dg.DagsterInstance, job_name: str) -> list[str]:
    """Ids of the runs of the resilience job ``job_name`` that are queued or running."""
    runs = instance.get_run_records(
        dg.RunsFilter(job_name=job_name, statuses=list(UNFINISHED)), limit=5
    )
    return [r.dagster_run.run_id for r in runs]


def resilience_job(
    defs_source: DefsSource, experiments_file: str, *, name: str = "mlchaos_resilience"
) -> dg.JobDefinition:
    """An op job running the whole matrix; rows as output, the report written and published."""

    @dg.op(name=f"{name}_matrix", description="run the chaos experiment matrix")
    def _run_matrix(
        context: dg.OpExecutionContext, config: ResilienceConfig
    ) -> dg.Output[list[dict[str, Any]]]:
        outcome = run_resilience(
            defs_source,
            experiments_file,
            instance=context.instance,
            suite_id=f"dagster-{context.run_id}",
            ds=config.ds,
            experiments=config.experiments,
            log=context.log,
        )
        outcome.tag_runs(context.instance, context.run_id)
        return dg.Output(outcome.rows, metadata=outcome.metadata())

    @dg.job(name=name, description="mlchaos: weekly resilience matrix with a control run")
    def _job() -> None:
        _run_matrix()

    return _job


def resilience_schedule(
    job: dg.JobDefinition,
    *,
    cron_schedule: str = "0 3 * * 1",
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
) -> dg.ScheduleDefinition:
    """Weekly (Monday 03:00) schedule of :func:`resilience_job`."""
    return dg.ScheduleDefinition(
        name=f"{job.name}_weekly",
        job=job,
        cron_schedule=cron_schedule,
        default_status=default_status,
    )
