"""The catalogue of SageMaker endpoint metrics a shadow test compares, defined once."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from shadow_runtime import verdict

INVOCATION_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"


@dataclass(frozen=True)
class EndpointMetric:
    """One metric SageMaker publishes per endpoint variant (dimensions EndpointName, VariantName)."""

    name: str
    namespace: str
    statistic: str
    unit: str
    description: str


ENDPOINT_METRICS: dict[str, EndpointMetric] = {m.name: m for m in (
    EndpointMetric("Invocations", INVOCATION_NAMESPACE, "Sum", "Count", "requests sent to the variant"),
    EndpointMetric("InvocationsPerInstance", INVOCATION_NAMESPACE, "Sum", "Count",
                   "requests per instance of the variant"),
    EndpointMetric("ModelLatency", INVOCATION_NAMESPACE, "Average", "Microseconds",
                   "time the model container took to answer"),
    EndpointMetric("OverheadLatency", INVOCATION_NAMESPACE, "Average", "Microseconds",
                   "time SageMaker added around the model"),
    EndpointMetric("Invocation4XXErrors", INVOCATION_NAMESPACE, "Sum", "Count", "requests answered 4xx"),
    EndpointMetric("Invocation5XXErrors", INVOCATION_NAMESPACE, "Sum", "Count", "requests answered 5xx"),
    EndpointMetric("InvocationModelErrors", INVOCATION_NAMESPACE, "Sum", "Count",
                   "requests the model answered with an error"),
    EndpointMetric("CPUUtilization", INSTANCE_NAMESPACE, "Average", "Percent",
                   "CPU use, 0-100 per core"),
    EndpointMetric("MemoryUtilization", INSTANCE_NAMESPACE, "Average", "Percent", "memory use"),
    EndpointMetric("DiskUtilization", INSTANCE_NAMESPACE, "Average", "Percent", "disk use"),
    EndpointMetric("GPUUtilization", INSTANCE_NAMESPACE, "Average", "Percent", "GPU use, 0-100 per GPU"),
    EndpointMetric("GPUMemoryUtilization", INSTANCE_NAMESPACE, "Average", "Percent", "GPU memory use"),
)}


#: The metric families the verdict judges, as the Judge function defines them (one definition).
LATENCY_METRICS: tuple[str, ...] = verdict.LATENCY_METRICS
ERROR_METRICS: tuple[str, ...] = verdict.ERROR_METRICS


def endpoint_metric(
    endpoint_name: str,
    variant_name: str,
    metric_name: str,
    *,
    statistic: str | None = None,
    period: cdk.Duration | None = None,
    **options,
) -> cloudwatch.Metric:
    """A 1-minute metric of one endpoint variant, with the catalogue's namespace and statistic."""
    spec = ENDPOINT_METRICS[metric_name]
    return cloudwatch.Metric(
        namespace=spec.namespace,
        metric_name=metric_name,
        dimensions_map={"EndpointName": endpoint_name, "VariantName": variant_name},
        statistic=statistic or spec.statistic,
        period=period or cdk.Duration.minutes(1),
        **options,
    )
