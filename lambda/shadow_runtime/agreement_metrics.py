"""Live prediction agreement as CloudWatch metrics: what the paired answers of production and the shadow say so far.

At every look the workflow measures, on the captured data since the test's start (CaptureAnalytics' label-agreement
query), the share of paired predictions on which the shadow gives production's label and the mean absolute
difference of the paired numeric predictions, and publishes them here: namespace ``NAMESPACE``, dimensions
``EndpointName`` and ``VariantName`` (the shadow variant), stamped with the judged window's end. ShadowDashboard shows
them beside SageMaker's metrics and ShadowAlarms can alarm below a minimum agreement. Stdlib only (the caller passes
its CloudWatch client).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

NAMESPACE = "ShadowConstructs/Predictions"
#: Percent (0-100) of paired predictions with the same label on both variants.
AGREEMENT = "PredictionAgreement"
#: Mean absolute difference shadow - production of the paired numeric predictions (the predictions' own unit).
MEAN_ABS_DIFF = "PredictionMeanAbsDifference"
#: How many paired predictions the two figures are measured on.
PAIRED = "PairedPredictions"


def dimensions(endpoint_name: str, variant_name: str) -> list[dict[str, str]]:
    return [{"Name": "EndpointName", "Value": endpoint_name}, {"Name": "VariantName", "Value": variant_name}]


def metric_data(measured: dict[str, Any], *, endpoint_name: str, variant_name: str,
                timestamp: datetime) -> list[dict[str, Any]]:
    """PutMetricData's ``MetricData`` for one measurement (``agreement`` 0-1, ``mean_abs_diff``, ``predictions``):
    the paired count always, each figure only when there was something to measure it on."""
    dims = dimensions(endpoint_name, variant_name)
    data: list[dict[str, Any]] = [{"MetricName": PAIRED, "Dimensions": dims, "Timestamp": timestamp,
                                   "Value": float(measured.get("predictions") or 0), "Unit": "Count"}]
    if measured.get("agreement") is not None:
        data.append({"MetricName": AGREEMENT, "Dimensions": dims, "Timestamp": timestamp,
                     "Value": 100 * float(measured["agreement"]), "Unit": "Percent"})
    if measured.get("mean_abs_diff") is not None:
        data.append({"MetricName": MEAN_ABS_DIFF, "Dimensions": dims, "Timestamp": timestamp,
                     "Value": float(measured["mean_abs_diff"]), "Unit": "None"})
    return data


def publish(cloudwatch: Any, measured: dict[str, Any], *, endpoint_name: str, variant_name: str,
            timestamp: datetime) -> list[str]:
    """Put the measurement's metrics; the names published."""
    data = metric_data(measured, endpoint_name=endpoint_name, variant_name=variant_name, timestamp=timestamp)
    cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)
    return [item["MetricName"] for item in data]
