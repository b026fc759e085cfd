"""ShadowMetricFactory: every metric of a shadow test defined once, for graphs, alarms and the verdict."""

from __future__ import annotations

import re
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from shadow_runtime import agreement_metrics as _AGREEMENT  # noqa: N812

from .endpoint_base import IShadowEndpoint, check_endpoint, no_shadow_problem
from .errors import ConfigError, Problems
from .metrics import ENDPOINT_METRICS, ERROR_METRICS, INSTANCE_NAMESPACE

#: Series the promotion verdict reads: key -> (metric, statistic). Counts are per-minute Sums.
VERDICT_SERIES: dict[str, tuple[str, str]] = {
    "Invocations": ("Invocations", "Sum"),
    "Invocation4XXErrors": ("Invocation4XXErrors", "Sum"),
    "Invocation5XXErrors": ("Invocation5XXErrors", "Sum"),
    "InvocationModelErrors": ("InvocationModelErrors", "Sum"),
    "ModelLatency:p50": ("ModelLatency", "p50"),
    "ModelLatency:p99": ("ModelLatency", "p99"),
    "ModelLatency:Average": ("ModelLatency", "Average"),
    "OverheadLatency:p99": ("OverheadLatency", "p99"),
    "CPUUtilization:Average": ("CPUUtilization", "Average"),
    "MemoryUtilization:Average": ("MemoryUtilization", "Average"),
}


AGREEMENT, MEAN_ABS_DIFF, PAIRED = _AGREEMENT.AGREEMENT, _AGREEMENT.MEAN_ABS_DIFF, _AGREEMENT.PAIRED
#: The live agreement metrics the workflow publishes at each look (with CaptureAnalytics): name -> (label, unit text).
AGREEMENT_METRICS: dict[str, str] = {AGREEMENT: "label agreement (%)", MEAN_ABS_DIFF: "mean |shadow - production|",
                                     PAIRED: "paired predictions"}


def _safe_id(text: str) -> str:
    """A metric-math id: starts lower-case, letters, digits and underscores only."""
    return "m_" + re.sub(r"[^a-zA-Z0-9_]", "_", text).lower()


class ShadowMetricFactory:
    """Builds the metrics, metric-math expressions and GetMetricData queries of one shadow test.

    Latencies are converted from microseconds (how SageMaker reports them) to milliseconds
    with metric math; error rates are errors / invocations in percent, per variant.

    :param endpoint: an ``IShadowEndpoint`` (a ShadowEndpoint, or one imported with
        ``ShadowEndpoint.from_endpoint_name`` / ``from_endpoint_attributes``). It must have a shadow variant.
    :param period: the period of every metric. Default: 1 minute.
    :param production_only: build production's metrics alone, for an endpoint outside its SHADOW phase (the
        comparisons then raise). Default: False (the endpoint must have a shadow variant).
    """

    def __init__(self, endpoint: IShadowEndpoint, *, period: cdk.Duration | None = None,
                 production_only: bool = False) -> None:
        problems = Problems("ShadowMetricFactory")
        check_endpoint(problems, endpoint, shadow=not production_only)
        problems.raise_if_any()
        self.endpoint = endpoint
        self.period = period or cdk.Duration.minutes(1)
        self.production = endpoint.production_variant_name
        self._shadow = None if production_only else endpoint.shadow_variant_name

    @property
    def shadow(self) -> str:
        """The shadow variant's name (a ``ConfigError`` for a production-only factory)."""
        if self._shadow is None:
            raise ConfigError("ShadowMetricFactory", [no_shadow_problem(self.endpoint)])
        return self._shadow

    def agreement_metric(self, name: str, statistic: str = "Average",
                         period: cdk.Duration | None = None) -> cloudwatch.Metric:
        """One of the live agreement metrics (``AGREEMENT_METRICS``) of the shadow variant. Default period: 1 hour
        (the workflow publishes at each look, hourly by default)."""
        if name not in AGREEMENT_METRICS:
            raise ConfigError("ShadowMetricFactory", [f"agreement metric must be one of {', '.join(AGREEMENT_METRICS)}, "
                                                      f"got {name!r}"])
        return cloudwatch.Metric(
            namespace=_AGREEMENT.NAMESPACE, metric_name=name, statistic=statistic, label=AGREEMENT_METRICS[name],
            dimensions_map={"EndpointName": self.endpoint.endpoint_name, "VariantName": self.shadow},
            period=period or cdk.Duration.hours(1))

    @property
    def variants(self) -> list[tuple[str, str]]:
        """(role, variant name) pairs: production first (production alone for a production-only factory)."""
        return [("production", self.production)] + ([("shadow", self._shadow)] if self._shadow else [])

    def metric(self, name: str, variant: str, statistic: str | None = None, *,
               label: str | None = None, period: cdk.Duration | None = None) -> cloudwatch.Metric:
        """The raw metric of one variant (SageMaker's units)."""
        return self.endpoint.metric(name, variant=variant, statistic=statistic, period=period or self.period,
                                    label=label or f"{variant} {name}" + (f" {statistic}" if statistic else ""))

    def latency_ms(self, name: str, variant: str, statistic: str = "p99",
                   period: cdk.Duration | None = None) -> cloudwatch.MathExpression:
        """A latency statistic of one variant in milliseconds."""
        raw = self.metric(name, variant, statistic, period=period)
        key = self._id(name, variant, statistic)  # ids must be unique within a graph or alarm
        return cloudwatch.MathExpression(expression=f"{key} / 1000", using_metrics={key: raw},
                                         label=f"{variant} {statistic} (ms)", period=period or self.period)

    def error_rate(self, variant: str, errors: Sequence[str] = ERROR_METRICS[1:],
                   label: str | None = None) -> cloudwatch.MathExpression:
        """Errors / invocations of one variant in percent (default errors: 5XX + model errors)."""
        # Ids name metric, variant and statistic: unique per metric across nested expressions and graphs.
        inv = self._id("Invocations", variant, "sum")
        using = {inv: self.metric("Invocations", variant)}
        for name in errors:
            using[self._id(name, variant, "sum")] = self.metric(name, variant)
        total = " + ".join(f"FILL({self._id(name, variant, 'sum')}, 0)" for name in errors)
        return cloudwatch.MathExpression(
            expression=f"IF({inv} > 0, 100 * ({total}) / {inv}, 0)", using_metrics=using,
            label=label or f"{variant} error rate (%)", period=self.period)

    def latency_delta_ms(self, name: str = "ModelLatency", statistic: str = "p99") -> cloudwatch.MathExpression:
        """Shadow minus production latency, in milliseconds."""
        s, p = self._id(name, self.shadow, statistic), self._id(name, self.production, statistic)
        return cloudwatch.MathExpression(
            expression=f"({s} - {p}) / 1000",
            using_metrics={s: self.metric(name, self.shadow, statistic), p: self.metric(name, self.production, statistic)},
            label=f"shadow - production {name} {statistic} (ms)", period=self.period)

    def error_rate_delta(self) -> cloudwatch.MathExpression:
        """Shadow minus production error rate (5XX + model errors), in percentage points."""
        return cloudwatch.MathExpression(
            expression="s - p", using_metrics={"s": self.error_rate(self.shadow), "p": self.error_rate(self.production)},
            label="shadow - production error rate (pp)", period=self.period)

    def _tag(self, variant: str) -> str:
        return "prod" if variant == self.production else "shadow"

    def _id(self, name: str, variant: str, statistic: str) -> str:
        return re.sub(r"[^a-z0-9_]", "_", f"{name}_{self._tag(variant)}_{statistic}".lower())

    def instance_metric(self, name: str, variant: str) -> cloudwatch.Metric:
        if ENDPOINT_METRICS[name].namespace != INSTANCE_NAMESPACE:
            raise ConfigError("ShadowMetricFactory", [f"name must be an instance metric, got {name!r}"])
        return self.metric(name, variant, "Average", label=f"{variant} {name} (%)")

    def metric_data_queries(self, period_seconds: int = 60, keys: Sequence[str] | None = None) -> list[dict]:
        """GetMetricData ``MetricDataQueries`` for the verdict's series of both variants.

        Each query's Id is ``<role>_<key>`` made safe (e.g. ``m_shadow_modellatency_p99``); the
        resolved endpoint name is filled in by CloudFormation when the value is used in a template.
        """
        chosen = list(VERDICT_SERIES) if keys is None else list(keys)
        unknown = [k for k in chosen if k not in VERDICT_SERIES]
        if unknown:
            raise ConfigError("ShadowMetricFactory", [f"keys must be among {', '.join(VERDICT_SERIES)}, got {unknown}"])
        queries = []
        for role, variant in self.variants:
            for key in chosen:
                name, statistic = VERDICT_SERIES[key]
                queries.append({
                    "Id": _safe_id(f"{role}_{key}"),
                    "Label": f"{role}|{key}",
                    "ReturnData": True,
                    "MetricStat": {
                        "Metric": {"Namespace": ENDPOINT_METRICS[name].namespace, "MetricName": name,
                                   "Dimensions": [{"Name": "EndpointName", "Value": self.endpoint.endpoint_name},
                                                  {"Name": "VariantName", "Value": variant}]},
                        "Period": period_seconds,
                        "Stat": statistic,
                    },
                })
        return queries
