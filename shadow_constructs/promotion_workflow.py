"""PromotionWorkflow: a Step Functions state machine that judges a shadow test and acts on it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct
from shadow_runtime import looks as _looks

from ._nag import acknowledge, acknowledge_wildcard_resource
from .capture import CaptureStore
from .capture_analytics import CaptureAnalytics
from .endpoint import ShadowEndpoint
from .endpoint_base import IShadowEndpoint
from .endpoint_update import EndpointUpdate, WorkflowSteps, outcome
from .errors import ConfigError, Problems, check_removal_policy
from .managed_test import ManagedShadowTest
from .metric_factory import VERDICT_SERIES, ShadowMetricFactory
from .model import service_role
from .phase import METADATA_KEY, InstanceSettings
from .workflow_checks import (
    Criteria,
    InconclusiveAction,
    check_agreement,
    check_choices,
    check_collaborators,
    check_end,
    check_looks,
    check_timing,
    criteria_mapping,
    promotion_settings,
)
from .workflow_functions import REPORT_PREFIX, WorkflowFunctions

#: Between two looks at the self-ending execution a pipeline's run follows.
FOLLOW_INTERVAL = cdk.Duration.minutes(5)


class PromotionWorkflow(Construct):
    """Judges a shadow test and promotes or removes the shadow, never leaving production unserved.

    Order: (optional) wait until the test's end → gather both variants' metrics over the window
    (GetMetricData) → verdict → JSON and Markdown report to S3, summary to SNS and EventBridge →
    PROMOTE (automatically, or after a human approves through a task token) / REJECT (remove
    the shadow) / INCONCLUSIVE (extend, remove or keep). A self-service endpoint gets a new
    endpoint config built from the LIVE one (UpdateEndpoint with the endpoint's own guardrails,
    polled until it is InService on the new config, rolled back or failed); a managed test is
    ended with StopInferenceExperiment (Promote / Remove / Retain). Auto scaling on variants the
    update removes or retypes is taken down first and put back after. Every task retries
    throttling with backoff; any failure is caught, reported, and leaves the old production
    serving (destructive steps come last, and only the endpoint update itself replaces anything).

    :param endpoint: the ``IShadowEndpoint`` to judge: a ShadowEndpoint in its SHADOW phase, or an imported
        endpoint with a shadow (or the endpoint of ``managed_test``). Required.
    :param managed_test: the ManagedShadowTest to end instead of updating the endpoint. Default: none.
    :param window: how much traffic to judge. Default: 60 minutes ending when the run starts.
    :param criteria: verdict criteria: a ``Criteria`` (``shadow_constructs.Criteria``, the judge's own class)
        or a mapping of its fields, checked at synth (every field's type and range); its
        ``sampling_percent`` comes from the endpoint unless a mapping sets it. Default: the verdict's
        defaults.
    :param require_approval: wait for a person (task token, sent to the topic) before promoting.
        Default: False.
    :param instance_settings: ``InstanceSettings`` of the promoted variant. Default: the endpoint's
        ``promoted_instance_settings`` (what its PROMOTED phase renders), else PRODUCTION.
    :param instance_override: instance settings for the promoted variant instead, as ProductionVariant
        members, e.g. ``{"InstanceType": "ml.m5.2xlarge", "InitialInstanceCount": 3}``. Default: the
        endpoint's ``promoted_instance_override``, else none.
    :param on_inconclusive: what an INCONCLUSIVE verdict at the test's end does, an ``InconclusiveAction``: EXTEND
        (judge again after ``extension``, up to ``max_extensions`` times, then ``after_extensions``), REMOVE_SHADOW
        (now) or KEEP (nothing changes: the shadow keeps running). Default: EXTEND.
    :param extension: how long each extension waits. Default: 1 hour.
    :param max_extensions: Default: 2.
    :param after_extensions: what a test still INCONCLUSIVE after its extensions does: REMOVE_SHADOW (production
        untouched, the verdict reported INCONCLUSIVE: the test stops costing) or KEEP (the shadow keeps running and
        billing until someone ends it: explicit). Default: REMOVE_SHADOW.
    :param poll_interval: between DescribeEndpoint calls during an update. Default: 1 minute.
    :param update_timeout: give up waiting for the update (production keeps serving). Default: 2 hours.
    :param retry_interval: first wait before retrying a throttled call (doubles each time). Default: 2 s.
    :param duration: how long a self-service test runs, 1 hour to 30 days, counted from the deploy
        that creates it: then the workflow runs by itself (one execution started at deploy time waits in
        ``WaitForTestEnd``; a redeploy that keeps the test starts no second one, a changed duration
        counts from the original start, leaving the SHADOW phase or deleting the stack cancels it).
        Default: 7 days (SageMaker's managed default).
    :param look_interval: how often a test that ends itself is judged before its end: on all its data so far,
        every ``look_interval`` from the criteria's ``min_minutes`` on, and at its end. A PROMOTE or REJECT at a look
        ends the test then (the verdict stays valid however many looks there are); an INCONCLUSIVE waits for the
        next look, and at the end ``on_inconclusive`` applies. 10 minutes to ``duration`` (judging only at the end
        is ``look_interval=duration``); a test has at most 900 looks (Step Functions' 25,000-event history). With
        ``capture_analytics`` each look also publishes the live agreement metrics (``ShadowDashboard`` shows them),
        so the interval is at most 1 hour then. Default: 1 hour.
    :param ends_itself: whether the test ends itself after ``duration`` (or at ``test_end``). Turning it
        off is explicit: ``ends_itself=False`` leaves the shadow running until someone starts the
        workflow. Default: True for a self-service test; a managed test ends on its own schedule.
    :param test_end: an absolute end instead of ``duration``: EventBridge Scheduler starts the workflow
        then. Default: none (the test ends ``duration`` after its deploy).
    :param topic: SNS topic for summaries and approval requests. Default: a new encrypted topic.
    :param report_store: where series and reports go. Default: a new CaptureStore (retained).
    :param capture_analytics: the endpoint's ``CaptureAnalytics``: each run then measures the label
        agreement of production and shadow on the captured data of the window (its
        ``label-agreement`` query on Athena, from a Lambda) and the verdict judges it against
        ``criteria["min_agreement"]``, which must then be set. Default: none (metrics only).
    :param removal_policy: what happens to the log groups (the functions' and the executions') and the topic's
        key this workflow creates when the stack deletes them. Default: ``cdk.RemovalPolicy.DESTROY``
        (the logs' one-year retention ends with the test; reports stay in ``report_store``).
    """

    #: The input a pipeline's verdict step starts the workflow with: follow the test's self-ending execution
    #: (judge now when there is none) and end FAILED unless the shadow was promoted.
    PIPELINE_INPUT = {"follow": True, "fail_unless_promoted": True}

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: IShadowEndpoint,
        managed_test: ManagedShadowTest | None = None,
        window: cdk.Duration | None = None,
        criteria: Mapping[str, Any] | None = None,
        require_approval: bool = False,
        instance_settings: InstanceSettings | None = None,
        instance_override: Mapping[str, Any] | None = None,
        on_inconclusive: InconclusiveAction = InconclusiveAction.EXTEND,
        extension: cdk.Duration | None = None,
        max_extensions: int = 2,
        after_extensions: InconclusiveAction = InconclusiveAction.REMOVE_SHADOW,
        poll_interval: cdk.Duration | None = None,
        update_timeout: cdk.Duration | None = None,
        retry_interval: cdk.Duration | None = None,
        duration: cdk.Duration | None = None,
        look_interval: cdk.Duration | None = None,
        ends_itself: bool | None = None,
        test_end: datetime | None = None,
        topic: sns.ITopic | None = None,
        report_store: CaptureStore | None = None,
        capture_analytics: CaptureAnalytics | None = None,
        removal_policy: cdk.RemovalPolicy | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        problems = Problems(f"PromotionWorkflow {self.node.path!r}")
        check_collaborators(problems, endpoint, managed_test, topic, report_store)
        criteria = criteria_mapping(problems, criteria)
        check_agreement(problems, capture_analytics, criteria)
        settings, override = promotion_settings(problems, endpoint, instance_settings, instance_override)
        check_choices(problems, require_approval, on_inconclusive, max_extensions, after_extensions)
        check_timing(problems, window, extension, poll_interval, update_timeout, retry_interval, duration)
        test_end = check_end(problems, managed_test, ends_itself, duration, test_end)
        check_looks(problems, look_interval, duration, managed_test is None and ends_itself is not False
                          and test_end is None, criteria, capture_analytics is not None)
        removal_policy = check_removal_policy(problems, removal_policy, cdk.RemovalPolicy.DESTROY)
        problems.raise_if_any()

        self.endpoint = endpoint
        self.managed_test = managed_test
        self.capture_analytics = capture_analytics
        #: The promoted variant's instance settings (the endpoint's unless given here).
        self.instance_settings = settings
        self.instance_override = override
        self.window = window or cdk.Duration.minutes(60)
        self.extension = extension or cdk.Duration.hours(1)
        self.poll_interval = poll_interval or cdk.Duration.minutes(1)
        self.update_timeout = update_timeout or cdk.Duration.hours(2)
        self.retry_interval = retry_interval or cdk.Duration.seconds(2)
        self.duration = duration or cdk.Duration.days(7)
        #: How often the self-ending test is judged before its end.
        self.look_interval = look_interval or cdk.Duration.hours(1)
        self.ends_itself = managed_test is None and ends_itself is not False
        #: The criteria the judge gets: the ones given (checked at synth by ``Criteria`` itself), with the
        #: endpoint's sampling share unless given.
        self.criteria = self._judged_criteria(criteria)
        #: The state machine's physical name: deterministic, so a pipeline stack can name it without a reference.
        self.state_machine_name = cdk.Names.unique_resource_name(self, max_length=80, separator="-")
        self.report_store = report_store or CaptureStore(self, "Reports")
        self.topic: sns.ITopic = topic or self._topic(removal_policy)
        self._functions = WorkflowFunctions(
            self, state_machine_name=self.state_machine_name, report_store=self.report_store,
            endpoint_arn=None if managed_test else endpoint.endpoint_arn, capture_analytics=capture_analytics,
            log_removal_policy=removal_policy)
        self.state_machine_arn = self._functions.state_machine_arn
        #: The workflow's Lambda functions, by step.
        self.functions = self._functions.functions
        steps = WorkflowSteps(self, functions=self.functions, topic=self.topic, retry_interval=self.retry_interval,
                              endpoint_name=endpoint.endpoint_name)
        #: What an INCONCLUSIVE test does in the end, once any extensions are used up: REMOVE_SHADOW or KEEP.
        self.undecided = on_inconclusive if on_inconclusive is not InconclusiveAction.EXTEND else after_extensions
        self.state_machine = self._state_machine(self._definition(steps, require_approval, on_inconclusive,
                                                                  max_extensions), removal_policy)
        # SNS asks KMS for a data key AS THE PUBLISHER when the topic is encrypted: the state machine's role needs
        # kms:GenerateDataKey and kms:Decrypt on the topic's key, or every publish fails with KMSAccessDenied
        # (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html). SnsPublish grants sns:Publish only.
        if self.topic.master_key is not None:
            self.topic.master_key.grant(self.state_machine, "kms:GenerateDataKey", "kms:Decrypt")
        cfn_machine = cast(cdk.CfnResource, self.state_machine.node.default_child)
        cfn_machine.add_metadata(METADATA_KEY, {"role": "promotion-workflow", "endpoint": endpoint.node.path,
                                                "undecided": self.undecided.value})
        self.schedule = self._schedule(test_end) if test_end and self.ends_itself else None
        #: The ``Custom::ShadowTestEnd`` resource that starts the self-ending execution (None when off).
        self.test_end = self._test_end() if self.ends_itself and test_end is None else None

    def _judged_criteria(self, criteria: Mapping[str, Any]) -> dict[str, Any]:
        """The criteria given, with the sampling share of the endpoint (or the managed test; else 100) unless given."""
        sampling = self.endpoint.sampling_percent or (self.managed_test.sampling_percent if self.managed_test else 100)
        judged = {"sampling_percent": sampling, **criteria}
        try:
            Criteria.from_mapping(judged)
        except ValueError as error:  # e.g. a sampling share out of range; the rest was checked above
            raise ConfigError(f"PromotionWorkflow {self.node.path!r}", [f"criteria: {error}"]) from None
        return judged

    # Resources

    def _topic(self, removal_policy: cdk.RemovalPolicy) -> sns.ITopic:
        key = kms.Key(self, "TopicKey", enable_key_rotation=True, removal_policy=removal_policy,
                      description=f"Shadow test verdicts of {self.node.path}")
        # jsii: Key and Topic implement IKey and ITopic with other parameter names (aws/jsii#4541).
        return cast(sns.ITopic, sns.Topic(self, "Topic", master_key=cast(kms.IKey, key), enforce_ssl=True,
                                          display_name="Shadow test verdicts and approvals"))

    def _state_machine(self, chain: sfn.IChainable, removal_policy: cdk.RemovalPolicy) -> sfn.StateMachine:
        log_group = logs.LogGroup(self, "ExecutionLogs", retention=logs.RetentionDays.ONE_YEAR,
                                  removal_policy=removal_policy)
        machine = sfn.StateMachine(
            self, "StateMachine", definition_body=sfn.DefinitionBody.from_chainable(chain),
            state_machine_name=self.state_machine_name,
            tracing_enabled=True, logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL),
            timeout=cdk.Duration.days(40), comment=f"Shadow test promotion for {self.node.path}")
        acknowledge(machine, "AwsSolutions-IAM5[Resource::*]",
                    "X-Ray and CloudWatch Logs delivery actions take no resource ARN (CDK's own policy).")
        for function in self.functions.values():
            acknowledge_wildcard_resource(machine, cdk.Fn.join("", [function.function_arn, ":*"]),
                                          "Step Functions invokes the function's versions and aliases.")
        acknowledge_wildcard_resource(machine, cdk.Stack.of(self).format_arn(
            service="sagemaker", resource="endpoint-config", resource_name="*"),
            "UpdateEndpoint names the config the run created; its name is only known at run time.")
        return machine

    # The state machine

    def _context(self) -> dict[str, Any]:
        endpoint = self.endpoint
        shadow = endpoint.shadow_variant_name
        if shadow is None and self.managed_test is not None:  # checked at synth: one of the two has a shadow
            shadow = self.managed_test.shadow_variant_name
        declared = endpoint.variants.get(shadow) if shadow else None
        return {"endpoint_name": endpoint.endpoint_name, "production_variant": endpoint.production_variant_name,
                "shadow_variant": shadow, "shadow_instances": declared.instance_count if declared else None}

    def _metric_queries(self, shadow_variant: str) -> list[dict]:
        endpoint = self.endpoint
        metered = endpoint if endpoint.shadow_variant_name else ShadowEndpoint.from_endpoint_name(
            self, "MeteredEndpoint", endpoint.endpoint_name, production_variant_name=endpoint.production_variant_name,
            shadow_variant_name=shadow_variant)  # a managed test's shadow is not in the endpoint's config
        return ShadowMetricFactory(metered).metric_data_queries(keys=list(VERDICT_SERIES))

    def _judging(self, steps: WorkflowSteps) -> list[sfn.Pass | sfn.TaskStateBase]:
        """The states from setup to the published verdict, in order (``[0]`` is the setup, ``[1]`` the gathering:
        the entry of every judging, extensions included); the caller links them."""
        endpoint, context = self.endpoint, self._context()
        setup = sfn.Pass(self, "Setup", parameters={
            "minutes": int(self.window.to_minutes()), "extensions": 0,
            "started": sfn.JsonPath.string_at("$$.Execution.StartTime"),
            "end": sfn.JsonPath.string_at("$$.State.EnteredTime")}, result_path="$.run")
        gather = steps.guarded(steps.invoke(self, "GatherMetrics", "gather", {
            "queries": self._metric_queries(context["shadow_variant"]), "end": sfn.JsonPath.string_at("$.run.end"),
            "minutes": sfn.JsonPath.number_at("$.run.minutes"), "period": 60,
            "report_bucket": self.report_store.bucket_name, "report_prefix": f"{REPORT_PREFIX}/{endpoint.endpoint_name}",
            "run_id": sfn.JsonPath.string_at("$.run.started")}, "$.gathered"))
        judged = {"series": sfn.JsonPath.string_at("$.gathered.series"), "criteria": self.criteria,
                  "context": {**context, "start": sfn.JsonPath.string_at("$.gathered.start"),
                              "end": sfn.JsonPath.string_at("$.gathered.end")},
                  "run": sfn.JsonPath.object_at("$.run")}
        stages: list[sfn.Pass | sfn.TaskStateBase] = [setup, gather]
        if self.capture_analytics is not None:
            # Athena over the window's capture hours; the function polls the query (at most 4 minutes).
            stages.append(steps.guarded(steps.invoke(self, "MeasureAgreement", "agreement", {
                "query": self.capture_analytics.query_strings["label-agreement"],
                "workgroup": self.capture_analytics.workgroup_name,
                "start": sfn.JsonPath.string_at("$.gathered.start"), "end": sfn.JsonPath.string_at("$.gathered.end"),
                # Each run (each look) publishes the agreement so far: ShadowDashboard shows it, ShadowAlarms watch it.
                "publish": {"endpoint_name": endpoint.endpoint_name, "variant_name": context["shadow_variant"]},
                "poll_seconds": 2, "timeout_seconds": 240}, "$.agreement")))
            judged["agreement"] = sfn.JsonPath.object_at("$.agreement")
        judge = steps.guarded(steps.invoke(self, "Judge", "judge", judged, "$.verdict"))
        summary = steps.guarded(steps.notify(self, "PublishVerdict", "Shadow test verdict", sfn.TaskInput.from_object({
            "endpoint": endpoint.endpoint_name, "decision": sfn.JsonPath.string_at("$.verdict.decision"),
            "score": sfn.JsonPath.number_at("$.verdict.score"), "summary": sfn.JsonPath.string_at("$.verdict.summary"),
            "report": sfn.JsonPath.string_at("$.verdict.report_markdown")})))
        event = steps.guarded(steps.retry(tasks.EventBridgePutEvents(
            self, "EmitVerdictEvent", result_path=sfn.JsonPath.DISCARD, entries=[tasks.EventBridgePutEventsEntry(
                source="shadow-constructs", detail_type="Shadow test verdict",
                detail=sfn.TaskInput.from_object({"endpoint": endpoint.endpoint_name,
                                                  "verdict": sfn.JsonPath.object_at("$.verdict")}))])))
        return [*stages, judge, summary, event]

    def _definition(self, steps: WorkflowSteps, require_approval: bool, on_inconclusive: InconclusiveAction,
                    max_extensions: int) -> sfn.IChainable:
        judging = self._judging(steps)
        # The execution's output: what was decided and done (and nothing of the working state).
        # Every ending leaves {"decision", "score", "report", "outcome", "action"} in $.result; a run started with
        # {"fail_unless_promoted": true} (a pipeline's verdict step) then fails unless the shadow was promoted.
        succeed = sfn.Succeed(self, "Done", output_path="$.result")
        not_promoted = sfn.Fail(self, "NotPromoted", error="ShadowNotPromoted", cause_path=sfn.JsonPath.format(
            "The shadow was not promoted: decision {}, {}", sfn.JsonPath.string_at("$.result.decision"),
            sfn.JsonPath.string_at("$.result.outcome")))
        finish = sfn.Choice(self, "FailUnlessPromoted?").when(
            sfn.Condition.is_present("$.fail_unless_promoted"),
            sfn.Choice(self, "Promoted?").when(sfn.Condition.string_equals("$.result.action", "promoted"), succeed)
            .otherwise(not_promoted)).otherwise(succeed)
        done = sfn.Pass(self, "Result", parameters={
            **_VERDICT_FIELDS, "outcome": sfn.JsonPath.string_at("$.outcome.text"),
            "action": sfn.JsonPath.string_at("$.outcome.action")}, result_path="$.result").next(finish)
        promote = self._act("Promote", "promote", steps, done)
        remove = self._act("RemoveShadow", "remove_shadow", steps, done)
        on_promote = self._approval(steps, promote, finish) if require_approval else promote
        # Undecided in the end: remove the shadow (the default: the test stops costing) or, explicitly, keep it.
        undecided: sfn.IChainable = remove if self.undecided is InconclusiveAction.REMOVE_SHADOW else sfn.Pass(
            self, "KeptAsIs", parameters={
                **_VERDICT_FIELDS, "outcome": "INCONCLUSIVE; nothing changed: the shadow keeps running.",
                "action": "none"}, result_path="$.result").next(finish)
        if on_inconclusive is InconclusiveAction.EXTEND and max_extensions > 0:
            inconclusive: sfn.IChainable = self._extension(judging[1], undecided, max_extensions)
        else:
            inconclusive = undecided
        decide = sfn.Choice(self, "Decision") \
            .when(sfn.Condition.string_equals("$.verdict.decision", "PROMOTE"), on_promote) \
            .when(sfn.Condition.string_equals("$.verdict.decision", "REJECT"), remove) \
            .otherwise(inconclusive)
        # Linked only now: the order of links is the order of the states in the definition.
        setup, judge, summary = judging[0], judging[-3], judging[-2]
        chain = sfn.Chain.start(setup)
        for state in judging[1:-2]:
            chain = chain.next(state)
        plan = self._look_plan(steps)
        # At an interim look only a PROMOTE or a REJECT goes on (reports and acts); INCONCLUSIVE waits for the next.
        judge.next(sfn.Choice(self, _looks.INTERIM_CHOICE).when(sfn.Condition.and_(
            sfn.Condition.is_present("$.look.final"), sfn.Condition.boolean_equals("$.look.final", False),
            sfn.Condition.string_equals("$.verdict.decision", "INCONCLUSIVE")), plan).otherwise(summary))
        sfn.Chain.start(summary).next(judging[-1]).next(decide)
        plan.next(sfn.Wait(self, _looks.LOOK_WAIT_STATE, time=sfn.WaitTime.timestamp_path("$.look.at"))).next(
            sfn.Pass(self, "LookWindow", parameters={
                "minutes": sfn.JsonPath.number_at("$.look.minutes"), "extensions": 0,
                "started": sfn.JsonPath.string_at("$$.Execution.StartTime"),
                "end": sfn.JsonPath.string_at("$.look.at"), "look": sfn.JsonPath.object_at("$.look")},
                result_path="$.run")).next(judging[1])
        # The self-ending execution (its input has the test's start and end) judges at every look; an execution given
        # only {"test_end": "<ISO time>"} waits for it and judges once; any other judges now.
        looks = sfn.Pass(self, "StartLooks", result=sfn.Result.from_object({"number": 0}), result_path="$.look")
        looks.next(plan)
        judge_run = sfn.Choice(self, "WaitForTestEnd?").when(
            sfn.Condition.and_(sfn.Condition.is_present("$.test_start"), sfn.Condition.is_present("$.test_end")), looks
        ).when(
            sfn.Condition.is_present("$.test_end"),
            sfn.Wait(self, _looks.WAIT_STATE, time=sfn.WaitTime.timestamp_path("$.test_end")).next(setup)
        ).otherwise(setup)
        return sfn.Choice(self, "Follow?").when(sfn.Condition.is_present("$.follow"),
                                                self._follow(steps, judge_run, finish)).otherwise(judge_run)

    def _look_plan(self, steps: WorkflowSteps) -> sfn.TaskStateBase:
        """The step before each look's wait: the next look after the last one judged (``looks.plan_look``)."""
        min_minutes = Criteria.from_mapping(self.criteria).min_minutes
        return steps.guarded(steps.invoke(self, _looks.PLAN_STATE, "plan_look", {
            "test_start": sfn.JsonPath.string_at("$.test_start"), "test_end": sfn.JsonPath.string_at("$.test_end"),
            "look_seconds": int(self.look_interval.to_seconds()), "min_minutes": min_minutes,
            "now": sfn.JsonPath.string_at("$$.State.EnteredTime"), "after": sfn.JsonPath.number_at("$.look.number")},
            "$.look"))

    def _approval(self, steps: WorkflowSteps, promote: sfn.IChainable, finish: sfn.IChainable) -> sfn.IChainable:
        """Wait for a person's answer (task token, sent to the topic); promote only on {"approved": true}."""
        approval = steps.guarded(steps.retry(tasks.SnsPublish(
            self, "AwaitApproval", topic=self.topic, subject="Approve shadow promotion?",
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            message=sfn.TaskInput.from_object({
                "endpoint": self.endpoint.endpoint_name, "report": sfn.JsonPath.string_at("$.verdict.report_markdown"),
                "approve": "SendTaskSuccess with {\"approved\": true} and this token; false to keep production",
                "token": sfn.JsonPath.task_token}),
            result_path="$.approval")))
        declined = sfn.Pass(self, "PromotionDeclined", parameters={
            **_VERDICT_FIELDS, "outcome": "A person declined; production unchanged.", "action": "declined"},
            result_path="$.result").next(finish)
        approval.next(sfn.Choice(self, "Approved?").when(
            sfn.Condition.boolean_equals("$.approval.approved", True), promote).otherwise(declined))
        return approval

    def _extension(self, gather: sfn.IChainable, undecided: sfn.IChainable, max_extensions: int) -> sfn.IChainable:
        """Wait ``extension`` and judge again on a window grown by as much, up to ``max_extensions`` times."""
        wait_more = sfn.Wait(self, "WaitForMoreTraffic", time=sfn.WaitTime.duration(self.extension))
        extend = sfn.Pass(self, "ExtendWindow", parameters={
            "minutes": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.run.minutes"), int(self.extension.to_minutes())),
            "extensions": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.run.extensions"), 1),
            "started": sfn.JsonPath.string_at("$.run.started"),
            "end": sfn.JsonPath.string_at("$$.State.EnteredTime")}, result_path="$.run")
        wait_more.next(extend).next(gather)
        return sfn.Choice(self, "ExtendAgain?").when(
            sfn.Condition.number_less_than("$.run.extensions", max_extensions), wait_more).otherwise(undecided)

    def _follow(self, steps: WorkflowSteps, judge_run: sfn.IChainable, finish: sfn.IChainable) -> sfn.IChainable:
        """{"follow": true}: wait for the test's self-ending execution and take its result (no second judge);
        without one, judge now."""
        follow = steps.guarded(steps.invoke(self, "FollowTestEnd", "follow", {
            "state_machine_arn": self.state_machine_arn, "execution_arn": sfn.JsonPath.execution_id}, "$.followed"))
        follow_wait = sfn.Wait(self, "WaitForFollowedRun", time=sfn.WaitTime.duration(FOLLOW_INTERVAL))
        follow_wait.next(follow)
        followed = sfn.Pass(self, "FollowedResult", input_path="$.followed.output", result_path="$.result").next(finish)
        follow_failed = sfn.Fail(self, "FollowedRunFailed", error="ShadowWorkflowFailed",
                                 cause="The test's self-ending execution did not succeed; see its history.")
        follow.next(sfn.Choice(self, "FollowedRunEnded?")
                    .when(sfn.Condition.boolean_equals("$.followed.found", False), judge_run)
                    .when(sfn.Condition.string_equals("$.followed.status", "RUNNING"), follow_wait)
                    .when(sfn.Condition.string_equals("$.followed.status", "SUCCEEDED"), followed)
                    .otherwise(follow_failed))
        return follow

    def _act(self, name: str, action: str, steps: WorkflowSteps, done: sfn.IChainable) -> sfn.IChainable:
        """Promote or remove the shadow (end the managed test, or update the endpoint safely), then report."""
        report = steps.guarded(steps.notify(self, f"{name}Outcome", f"Shadow test: {action} finished",
                                            sfn.TaskInput.from_object({
                                                "endpoint": self.endpoint.endpoint_name, "action": action,
                                                "decision": sfn.JsonPath.string_at("$.verdict.decision"),
                                                "outcome": sfn.JsonPath.string_at("$.outcome.text")})))
        report.next(done)
        if self.managed_test is not None:
            return self._stop_experiment(name, action, steps).next(report)
        settings: dict[str, Any] = {"instance_settings": self.instance_settings.value}
        if self.instance_override:
            settings = {"instance_settings": "override", "override": self.instance_override}
        return EndpointUpdate(self, f"{name}Update", name=name, action=action, endpoint=self.endpoint,
                              settings=settings, steps=steps, poll_interval=self.poll_interval,
                              update_timeout=self.update_timeout).next(report)

    def _stop_experiment(self, name: str, action: str, steps: WorkflowSteps) -> sfn.Chain:
        test = self.managed_test
        if test is None:
            raise TypeError("only a workflow that ends a managed test stops an experiment")
        actions = {test.production_variant_name: "Remove", test.shadow_variant_name: "Promote"} \
            if action == "promote" else {test.production_variant_name: "Retain", test.shadow_variant_name: "Remove"}
        stop = steps.guarded(steps.sdk(self, f"{name}StopExperiment", "sagemaker", "stopInferenceExperiment", {
            "Name": test.experiment_name, "ModelVariantActions": actions, "DesiredState": "Completed",
            "Reason": sfn.JsonPath.string_at("$.verdict.summary")}, [test.experiment_arn], result_path="$.stopped"))
        return stop.next(sfn.Pass(self, f"{name}Stopped", result=outcome(action, f"experiment stopped: {action}"),
                                  result_path="$.outcome"))

    def _test_end(self) -> cdk.CustomResource:
        """The deploy-time timer: a custom resource whose function starts the self-ending execution."""
        function = self._functions.test_end()
        shadow = self.endpoint.variants.get(self.endpoint.shadow_variant_name or "")
        # A new candidate model is a new test: its end counts from the deploy that brings it (a SHADOW deploy over a
        # finished test would otherwise run a shadow that never ends itself).
        candidate = {"Candidate": shadow.model.model_name} if shadow is not None else {}
        resource = cdk.CustomResource(
            self, "TestEnd", service_token=function.function_arn, resource_type="Custom::ShadowTestEnd",
            properties={**candidate, "StateMachineArn": self.state_machine_arn,
                        "DurationSeconds": int(self.duration.to_seconds()),
                        # A running execution keeps the definition it started with: a redeploy that changes the
                        # workflow (criteria, window, ...) must restart the pending end with the new one.
                        "DefinitionHash": cdk.Lazy.string(_DefinitionHash(self.state_machine))})
        resource.node.add_dependency(self.state_machine, function.role)
        cast(cdk.CfnResource, resource.node.default_child).add_metadata(METADATA_KEY, {"role": "test-end"})
        return resource

    def _schedule(self, test_end: datetime) -> scheduler.CfnSchedule:
        role = service_role(self, "SchedulerRole", "scheduler.amazonaws.com")
        self.state_machine.grant_start_execution(role)
        return scheduler.CfnSchedule(
            self, "EndOfTest", flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            schedule_expression=f"at({test_end.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})",
            schedule_expression_timezone="UTC",
            description=f"End the shadow test of {self.endpoint.endpoint_name} at its planned end",
            target=scheduler.CfnSchedule.TargetProperty(arn=self.state_machine.state_machine_arn,
                                                        role_arn=role.role_arn, input="{}"))


_VERDICT_FIELDS = {"decision": sfn.JsonPath.string_at("$.verdict.decision"),
                   "score": sfn.JsonPath.number_at("$.verdict.score"),
                   "report": sfn.JsonPath.string_at("$.verdict.report_markdown")}


@jsii.implements(cdk.IStableStringProducer)
class _DefinitionHash:
    """A digest of the state machine's definition as synthesized (references unresolved, so deterministic)."""

    def __init__(self, machine: sfn.StateMachine) -> None:
        self.machine = machine

    def produce(self) -> str:
        cfn = cast(sfn.CfnStateMachine, self.machine.node.default_child)
        definition = cdk.Stack.of(self.machine).resolve(cfn.definition_string)
        return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


__all__ = ["Criteria", "InconclusiveAction", "InstanceSettings", "PromotionWorkflow"]
