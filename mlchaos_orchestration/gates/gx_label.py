"""The label-integrity check as a Great Expectations 1.x expectation.

``ExpectColumnLabelsToBeConsistentWithReference(column=LABEL, reference=PATH, features=[...])``
fails when :func:`~mlchaos_orchestration.gates.label_integrity.check_labels` finds the batch's
labels less consistent with its features than the reference's (shuffled or wrong labels), or the
label balance changed. ``reference`` is a path read by
:func:`~mlchaos_orchestration.gates.label_integrity.read_reference` (file, folder, glob or
``s3://`` prefix; ``${VAR}`` expanded), so a suite stays plain data (YAML or GX JSON). The
reference is read (and checked: label and feature columns, 200 rows) when the expectation is
built: a missing or unreadable one makes the suite unusable - the gate crashes
(``gate_crashed``), it never fails as if it had found bad labels.

Importing this module registers the expectation and its metric with GX and exposes the class as
``great_expectations.expectations.ExpectColumnLabelsToBeConsistentWithReference``, where the
project's suite builder (:mod:`mlchaos_orchestration.gates.gx`) looks expectation types up. Pandas
batches only (the probe needs the rows in memory).
"""

from __future__ import annotations

from typing import Any, ClassVar

import great_expectations as gx
from great_expectations.compatibility import pydantic
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import BatchExpectation
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider

from mlchaos_orchestration.gates import label_integrity

__all__ = ["METRIC", "ExpectColumnLabelsToBeConsistentWithReference", "TableLabelIntegrity"]

METRIC = "table.mlchaos_label_integrity"


class TableLabelIntegrity(TableMetricProvider):
    """The batch's :class:`~mlchaos_orchestration.gates.label_integrity.LabelCheck` as a dict."""

    metric_name = METRIC
    value_keys = ("column", "reference", "features", "z", "tolerance")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(
        cls,
        execution_engine: PandasExecutionEngine,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        metrics: dict[str, Any],
        runtime_configuration: dict,
    ) -> dict[str, Any]:
        frame, _, _ = execution_engine.get_compute_domain(
            domain_kwargs=metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        kwargs = metric_value_kwargs
        return label_integrity.check_labels(
            label_integrity.read_reference(kwargs["reference"]),
            frame,
            kwargs["column"],
            kwargs.get("features") or None,
            z=label_integrity.Z if kwargs.get("z") is None else float(kwargs["z"]),
            tolerance=(
                label_integrity.TOLERANCE
                if kwargs.get("tolerance") is None
                else float(kwargs["tolerance"])
            ),
        ).to_dict()


class ExpectColumnLabelsToBeConsistentWithReference(BatchExpectation):
    """Expect the labels in ``column`` to be as consistent with the features as in the reference.

    A naive Bayes probe fitted on half of the reference scores the batch's observed labels; a
    score more than ``z`` standard errors plus ``tolerance`` nats per row below the score of the
    reference's other half, or a changed label balance, fails the expectation. Catches label
    shuffles and mislabels that schema and statistics expectations cannot see.
    """

    column: str = pydantic.Field(description="the label column")
    reference: str = pydantic.Field(
        description="clean labelled data: file, folder, glob or s3:// prefix (${VAR} expanded)"
    )
    features: list[str] | None = pydantic.Field(
        default=None, description="feature columns (default: every non-identifier column)"
    )
    z: float | None = pydantic.Field(default=None, description="standard errors of slack")
    tolerance: float | None = pydantic.Field(default=None, description="nats per row of slack")

    metric_dependencies = (METRIC,)
    success_keys = ("column", "reference", "features", "z", "tolerance")
    args_keys = ("column", "reference")

    @pydantic.root_validator(skip_on_failure=True)
    def _usable_reference(cls, values: dict[str, Any]) -> dict[str, Any]:
        """A missing or unreadable reference is a broken suite (the gate crashes: SpecError when
        the suite is built), never a failed expectation that would count as a detection."""
        # SpecError, not ValueError: pydantic passes it through with its one-line problems
        label_integrity.load_reference(
            values["reference"], values["column"], values.get("features")
        )
        return values

    library_metadata: ClassVar[dict[str, Any]] = {
        "maturity": "experimental",
        "tags": ["label integrity", "mlchaos"],
        "contributors": ["@mlchaos-orchestration"],
        "requirements": [],
    }

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: Any = None,
    ) -> dict[str, Any]:
        check = metrics[METRIC]
        observed = (
            f"probe score {check['score']:.4f} (bound {check['bound']:.4f}), "
            f"balance p={check['balance_p']:.2g}"
        )
        return {
            "success": bool(check["consistent"]),
            "result": {"observed_value": observed, "details": check},
        }


# the project's suite builder resolves expectation types on this module
gx.expectations.ExpectColumnLabelsToBeConsistentWithReference = (  # type: ignore[attr-defined]
    ExpectColumnLabelsToBeConsistentWithReference
)
