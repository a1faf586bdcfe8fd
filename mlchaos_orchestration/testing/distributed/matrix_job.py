"""The multiprocess asset job that runs the example matrix as runs launched by tag (one run per
experiment, tag ``mlchaos/experiment``): used by the ``make distributed`` code location and, as a
reconstructable job, by the tests (``execute_job``)."""

from __future__ import annotations

from typing import Any

MATRIX_JOB = "distributed_matrix"


def matrix_job(
    chaos: Any,
    *,
    exclude: Any = None,
    max_concurrent: int = 2,
    preload: tuple[str, ...] = (),
) -> Any:
    """An asset job over ``chaos`` (Definitions returned by ``with_chaos``) minus ``exclude``
    (an AssetSelection), on the multiprocess executor with the chaos run start / run end; with
    ``preload``, step processes fork from a forkserver that imported those modules once (each
    step still a separate process, without paying the imports again; the forkserver keeps the
    environment of the process's first run: one run per process, as a run worker is)."""
    import dagster as dg  # noqa: TID253 - only where Dagster runs

    from mlchaos_orchestration.dagster import chaos_executor_for

    selection = dg.AssetSelection.all()
    if exclude is not None:
        selection = selection - exclude
    config: dict[str, Any] = {"max_concurrent": max_concurrent}
    if preload:
        config["start_method"] = {"forkserver": {"preload_modules": list(preload)}}
    multiprocess = dg.multiprocess_executor.configured(config)
    return dg.define_asset_job(
        MATRIX_JOB, selection=selection, executor_def=chaos_executor_for(chaos, multiprocess)
    )


def tagged_job() -> Any:
    """The example pipeline with chaos as the matrix job (a reconstructable job for tests; the
    example's ``MLCHAOS_*`` variables come from the environment)."""
    import dagster as dg  # noqa: TID253

    from mlchaos_orchestration.examples.definitions import chaos_pipeline_defs

    chaos = chaos_pipeline_defs()
    # spawned step processes: a forkserver lives as long as this process and would hand later
    # runs the environment (data folders) of the first one
    job = matrix_job(chaos)
    defs = dg.Definitions.merge(chaos, dg.Definitions(jobs=[job]))
    return defs.resolve_job_def(MATRIX_JOB)
