"""ShadowAlarms: alarms that say "the shadow is worse than production", with a minimum-traffic guard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from .endpoint_base import IShadowEndpoint, check_endpoint
from .errors import Problems, shown
from .metric_factory import AGREEMENT, ShadowMetricFactory


class ShadowAlarms(Construct):
    """Regression alarms comparing the shadow with production, and a composite "shadow regressed".

    Every alarm is guarded: while the shadow served fewer than ``min_shadow_invocations``
    requests in a period its expression is 0, so an idle or starting shadow never alarms.
    Missing data is not breaching. The alarms have fixed physical names, so they can be given to
    the same endpoint's ``DeploymentGuardrails`` / ``add_rollback_alarm`` without a dependency cycle.

    :param endpoint: an ``IShadowEndpoint`` (a ShadowEndpoint, created or imported) with a shadow variant.
        Required.
    :param latency_statistic: the latency statistic compared. Default: ``p99``.
    :param latency_ratio_threshold: alarm when shadow / production ModelLatency exceeds it.
        Default: 1.2 (20% slower).
    :param error_rate_increase_threshold: alarm when the shadow's error rate (5XX + model errors,
        percent of invocations) exceeds production's by more than this many percentage points.
        Default: 1.0.
    :param model_errors_threshold: alarm when the shadow's InvocationModelErrors in a period reach
        it. Default: 5.
    :param min_shadow_invocations: the guard: shadow requests per period needed to judge.
        Default: 50.
    :param min_agreement: also alarm when the label agreement of the shadow's answers with production's (0-1), as the
        promotion workflow publishes it at each look with CaptureAnalytics, falls below this (e.g. 0.95). The
        agreement alarm joins the composite and the actions, not the rollback alarms (a disagreeing shadow is no reason
        to roll back an update). Default: none.
    :param period: Default: 5 minutes.
    :param evaluation_periods: Default: 3.
    :param datapoints_to_alarm: Default: 3 (every evaluated period must breach).
    :param topic: an SNS topic notified on ALARM and OK of every alarm. Default: none.
    :param alarm_name_prefix: prefix of the alarms' physical names. Default: a name unique to
        this construct in the app.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: IShadowEndpoint,
        latency_statistic: str = "p99",
        latency_ratio_threshold: float = 1.2,
        error_rate_increase_threshold: float = 1.0,
        model_errors_threshold: int = 5,
        min_shadow_invocations: int = 50,
        min_agreement: float | None = None,
        period: cdk.Duration | None = None,
        evaluation_periods: int = 3,
        datapoints_to_alarm: int | None = None,
        topic: sns.ITopic | None = None,
        alarm_name_prefix: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        problems = Problems(f"ShadowAlarms {self.node.path!r}")
        problems.check_pattern("latency_statistic", latency_statistic, r"Average|p\d{1,2}(\.\d+)?",
                               "must be 'Average' or a percentile like 'p99'")
        if problems.check_type("latency_ratio_threshold", latency_ratio_threshold, (int, float), "a number") \
                and latency_ratio_threshold <= 1:
            problems.add(f"latency_ratio_threshold must be above 1 (shadow slower than production), "
                         f"got {latency_ratio_threshold}")
        problems.check_number_range("error_rate_increase_threshold", error_rate_increase_threshold, 0.001, 100)
        problems.check_int_range("model_errors_threshold", model_errors_threshold, 1)
        problems.check_int_range("min_shadow_invocations", min_shadow_invocations, 1)
        if min_agreement is not None:
            problems.check_number_range("min_agreement", min_agreement, 0.01, 1)
        self.period = period or cdk.Duration.minutes(5)
        problems.check_seconds("period", self.period, 60, 86400)
        problems.check_int_range("evaluation_periods", evaluation_periods, 1, 100)
        datapoints_to_alarm = evaluation_periods if datapoints_to_alarm is None else datapoints_to_alarm
        if problems.check_int_range("datapoints_to_alarm", datapoints_to_alarm, 1) and \
                isinstance(evaluation_periods, int) and datapoints_to_alarm > evaluation_periods:
            problems.add(f"datapoints_to_alarm must not exceed evaluation_periods ({evaluation_periods}), "
                         f"got {datapoints_to_alarm}")
        if topic is not None and not hasattr(topic, "topic_arn"):
            problems.add(f"topic must be an aws_sns.ITopic, got {shown(topic)}")
        if alarm_name_prefix is not None:
            problems.check_pattern("alarm_name_prefix", alarm_name_prefix, r"[A-Za-z0-9_.-]{1,200}",
                                   "must be 1-200 letters, digits, '.', '-' or '_'")
        check_endpoint(problems, endpoint, shadow=True)
        problems.raise_if_any()
        self.factory = ShadowMetricFactory(endpoint, period=self.period)
        self.min_shadow_invocations = min_shadow_invocations
        prefix = alarm_name_prefix or cdk.Names.unique_resource_name(self, max_length=200, separator="-")
        common = {"evaluation_periods": evaluation_periods, "datapoints_to_alarm": datapoints_to_alarm,
                  "treat_missing_data": cloudwatch.TreatMissingData.NOT_BREACHING}
        f, shadow, production = self.factory, self.factory.shadow, self.factory.production

        latency_s = f.metric("ModelLatency", shadow, latency_statistic)
        latency_p = f.metric("ModelLatency", production, latency_statistic)
        self.latency_alarm = cloudwatch.Alarm(
            self, "LatencyRatio", alarm_name=f"{prefix}-latency-ratio",
            alarm_description=f"Shadow ModelLatency {latency_statistic} is more than {latency_ratio_threshold:g}x "
                              f"production's (guard: {min_shadow_invocations} shadow requests per period).",
            metric=self._guarded("ls / lp", {"ls": latency_s, "lp": latency_p},
                                 f"shadow / production ModelLatency {latency_statistic}"),
            threshold=latency_ratio_threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, **common)
        self.error_rate_alarm = cloudwatch.Alarm(
            self, "ErrorRateIncrease", alarm_name=f"{prefix}-error-rate-increase",
            alarm_description=f"Shadow error rate (5XX + model errors) exceeds production's by more than "
                              f"{error_rate_increase_threshold:g} percentage points.",
            metric=self._guarded("delta", {"delta": f.error_rate_delta()}, "shadow - production error rate (pp)"),
            threshold=error_rate_increase_threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, **common)
        self.model_errors_alarm = cloudwatch.Alarm(
            self, "ShadowModelErrors", alarm_name=f"{prefix}-shadow-model-errors",
            alarm_description=f"The shadow model answered {model_errors_threshold} or more requests with an error "
                              "in a period.",
            metric=self._guarded("FILL(me, 0)", {"me": f.metric("InvocationModelErrors", shadow)},
                                 "shadow InvocationModelErrors"),
            threshold=model_errors_threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, **common)
        self.alarms: list[cloudwatch.Alarm] = [self.latency_alarm, self.error_rate_alarm, self.model_errors_alarm]
        #: Below ``min_agreement`` at a look (None without one).
        self.agreement_alarm = None if min_agreement is None else cloudwatch.Alarm(
            self, "AgreementBelowMinimum", alarm_name=f"{prefix}-agreement-below-minimum",
            alarm_description=f"The shadow gave production's label on fewer than {100 * min_agreement:g}% of the paired "
                              "predictions so far (published by the promotion workflow at each look).",
            metric=f.agreement_metric(AGREEMENT, statistic="Minimum"), threshold=100 * min_agreement,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
        #: Every metric alarm: the rollback alarms and the agreement alarm (when there is one).
        self.watched_alarms: list[cloudwatch.Alarm] = [*self.alarms, *([self.agreement_alarm] if self.agreement_alarm else [])]
        self.composite = cloudwatch.CompositeAlarm(
            self, "ShadowRegressed", composite_alarm_name=f"{prefix}-shadow-regressed",
            alarm_description="The shadow regressed against production: latency, error rate or model errors"
                              + (", or its answers agree less than the minimum." if self.agreement_alarm else "."),
            alarm_rule=cloudwatch.AlarmRule.any_of(*[cloudwatch.AlarmRule.from_alarm(a, cloudwatch.AlarmState.ALARM)
                                                     for a in self.watched_alarms]))
        if topic is not None:
            # jsii: SnsAction implements IAlarmAction with other parameter names (aws/jsii#4541).
            self.add_action(cast(cloudwatch.IAlarmAction, cw_actions.SnsAction(topic)))

    @property
    def rollback_alarms(self) -> Sequence[cloudwatch.Alarm]:
        """The metric alarms, for ``DeploymentGuardrails(rollback_alarms=...)``."""
        return list(self.alarms)

    def add_action(self, action: cloudwatch.IAlarmAction) -> None:
        """Run ``action`` when any alarm (and the composite) goes to ALARM or back to OK."""
        for alarm in (*self.watched_alarms, self.composite):
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

    def _guarded(self, expression: str, using: dict, label: str) -> cloudwatch.MathExpression:
        guard = self.factory._id("Invocations", self.factory.shadow, "sum")
        using = {**using, guard: self.factory.metric("Invocations", self.factory.shadow)}
        return cloudwatch.MathExpression(
            expression=f"IF(FILL({guard}, 0) >= {self.min_shadow_invocations}, {expression}, 0)",
            using_metrics=using, label=label, period=self.period)
