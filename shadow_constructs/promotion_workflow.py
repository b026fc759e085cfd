"""PromotionWorkflow: a Step Functions state machine that judges a shadow test and acts on it."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ._nag import acknowledge, acknowledge_wildcard_resource
from ._runtime import RUNTIME_DIR, runtime_module
from .capture import CaptureStore
from .capture_analytics import CaptureAnalytics
from .endpoint import ShadowEndpoint, ShadowEndpointBase
from .errors import ConfigError, Problems, shown
from .managed_test import ManagedShadowTest
from .metric_factory import VERDICT_SERIES, ShadowMetricFactory
from .phase import METADATA_KEY, OVERRIDE_FIELDS, InstanceSettings, TestPhase

THROTTLING_ERRORS = ["SageMaker.ThrottlingException", "SageMaker.SageMakerException", "ThrottlingException",
                     "Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.SdkClientException",
                     "SNS.ThrottledException", "EventBridge.EventBridgeException"]
#: Between two looks at the self-ending execution a pipeline's run follows.
FOLLOW_INTERVAL = cdk.Duration.minutes(5)
IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack")
#: The verdict's criteria: the Judge function's own class, so what synthesizes is what the judge accepts.
Criteria = runtime_module("verdict").Criteria


def _criteria_mapping(problems: Problems, criteria: Any) -> dict[str, Any]:
    """The criteria as the JSON the judge gets: the fields given (a ``Criteria`` gives those that differ from
    the defaults), each checked now by ``Criteria`` (type, range, metric keys): a bad value fails the synth,
    not the Judge step at the end of the test window."""
    if criteria is None:
        return {}
    if dataclasses.is_dataclass(criteria) and type(criteria).__name__ == "Criteria":
        defaults = Criteria()
        given = {f.name: getattr(criteria, f.name) for f in dataclasses.fields(criteria)
                 if f.name != "sampling_percent" and getattr(criteria, f.name) != getattr(defaults, f.name)}
    elif isinstance(criteria, Mapping):
        given = dict(criteria)
    else:
        problems.add(f"criteria must be a Criteria or a mapping of its fields, got {shown(criteria)}")
        return {}
    given = {k: list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, Mapping) else v for k, v in given.items()}
    try:
        Criteria.from_mapping(given)
    except (ValueError, TypeError) as error:
        problems.add(f"criteria: {str(error).removeprefix('invalid criteria: ')}")
        return {}
    return given


class InconclusiveAction(enum.Enum):
    """What the workflow does when the verdict is INCONCLUSIVE."""

    #: Wait ``extension`` longer and judge again on a window grown by as much (up to ``max_extensions``).
    EXTEND = "extend"
    #: Remove the shadow; production stays as it is.
    REMOVE_SHADOW = "remove_shadow"
    #: Change nothing; report and stop.
    KEEP = "keep"


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

    :param endpoint: the ShadowEndpoint (or imported endpoint with a shadow). Required.
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
    :param on_inconclusive: an ``InconclusiveAction``. Default: EXTEND.
    :param extension: how long each extension waits. Default: 1 hour.
    :param max_extensions: Default: 2.
    :param poll_interval: between DescribeEndpoint calls during an update. Default: 1 minute.
    :param update_timeout: give up waiting for the update (production keeps serving). Default: 2 hours.
    :param retry_interval: first wait before retrying a throttled call (doubles each time). Default: 2 s.
    :param duration: how long a self-service test runs, 1 hour to 30 days, counted from the deploy
        that creates it: then the workflow runs by itself (one execution started at deploy time waits in
        ``WaitForTestEnd``; a redeploy that keeps the test starts no second one, a changed duration
        counts from the original start, leaving the SHADOW phase or deleting the stack cancels it).
        Default: 7 days (SageMaker's managed default).
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
    """

    #: The input a pipeline's verdict step starts the workflow with: follow the test's self-ending execution
    #: (judge now when there is none) and end FAILED unless the shadow was promoted.
    PIPELINE_INPUT = {"follow": True, "fail_unless_promoted": True}

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: ShadowEndpointBase,
        managed_test: ManagedShadowTest | None = None,
        window: cdk.Duration | None = None,
        criteria: Mapping[str, Any] | None = None,
        require_approval: bool = False,
        instance_settings: InstanceSettings | None = None,
        instance_override: Mapping[str, Any] | None = None,
        on_inconclusive: InconclusiveAction = InconclusiveAction.EXTEND,
        extension: cdk.Duration | None = None,
        max_extensions: int = 2,
        poll_interval: cdk.Duration | None = None,
        update_timeout: cdk.Duration | None = None,
        retry_interval: cdk.Duration | None = None,
        duration: cdk.Duration | None = None,
        ends_itself: bool | None = None,
        test_end: datetime | None = None,
        topic: sns.ITopic | None = None,
        report_store: CaptureStore | None = None,
        capture_analytics: CaptureAnalytics | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        problems = Problems(f"PromotionWorkflow {self.node.path!r}")
        if not isinstance(endpoint, ShadowEndpointBase):
            problems.add(f"endpoint must be a ShadowEndpoint, got {shown(endpoint)}")
        elif not endpoint.shadow_variant_name and managed_test is None:
            problems.add("endpoint must have a shadow variant (or give managed_test)")
        if managed_test is not None and not isinstance(managed_test, ManagedShadowTest):
            problems.add(f"managed_test must be a ManagedShadowTest, got {shown(managed_test)}")
        self.window = window or cdk.Duration.minutes(60)
        problems.check_seconds("window", self.window, 600, 30 * 86400)
        criteria = _criteria_mapping(problems, criteria)
        problems.check_type("require_approval", require_approval, bool, "a bool")
        instance_settings, instance_override = self._promotion_settings(problems, endpoint, instance_settings,
                                                                        instance_override)
        #: The promoted variant's instance settings (the endpoint's unless given here).
        self.instance_settings = instance_settings
        self.instance_override = dict(instance_override) if isinstance(instance_override, Mapping) else None
        if not isinstance(on_inconclusive, InconclusiveAction):
            problems.add(f"on_inconclusive must be an InconclusiveAction, got {shown(on_inconclusive)}")
        self.extension = extension or cdk.Duration.hours(1)
        problems.check_seconds("extension", self.extension, 60, 7 * 86400)
        problems.check_int_range("max_extensions", max_extensions, 0, 10)
        self.poll_interval = poll_interval or cdk.Duration.minutes(1)
        problems.check_seconds("poll_interval", self.poll_interval, 1, 3600)
        self.update_timeout = update_timeout or cdk.Duration.hours(2)
        problems.check_seconds("update_timeout", self.update_timeout, 1, 86400)
        self.retry_interval = retry_interval or cdk.Duration.seconds(2)
        problems.check_seconds("retry_interval", self.retry_interval, 1, 300)
        if test_end is not None and problems.check_type("test_end", test_end, datetime, "a datetime") \
                and test_end.tzinfo is None:
            test_end = test_end.replace(tzinfo=UTC)
        if ends_itself is not None:
            problems.check_type("ends_itself", ends_itself, bool, "a bool")
        if managed_test is not None and ends_itself:
            problems.add("ends_itself applies to self-service tests; a managed test ends on its own schedule "
                         "(ManagedShadowTest schedule), got ends_itself=True with managed_test")
        if isinstance(endpoint, ShadowEndpoint) and endpoint.phase is not TestPhase.SHADOW:
            problems.add(f"endpoint must be in the SHADOW phase to be judged, got {endpoint.phase.name}: "
                         "create the workflow only while the shadow runs")
        self.ends_itself = managed_test is None and ends_itself is not False
        if duration is not None and test_end is not None:
            problems.add("give duration or test_end, not both")
        self.duration = duration or cdk.Duration.days(7)
        problems.check_seconds("duration", self.duration, 3600, 30 * 86400)
        if topic is not None and not hasattr(topic, "topic_arn"):
            problems.add(f"topic must be an aws_sns.ITopic, got {shown(topic)}")
        if report_store is not None and not isinstance(report_store, CaptureStore):
            problems.add(f"report_store must be a CaptureStore, got {shown(report_store)}")
        if capture_analytics is not None and not isinstance(capture_analytics, CaptureAnalytics):
            problems.add(f"capture_analytics must be a CaptureAnalytics, got {shown(capture_analytics)}")
        elif capture_analytics is not None and criteria.get("min_agreement") is None:
            problems.add("capture_analytics measures the prediction agreement, so criteria must set min_agreement "
                         "(e.g. 0.95), got none")
        elif capture_analytics is None and criteria.get("min_agreement") is not None:
            problems.add(f"criteria min_agreement ({criteria['min_agreement']!r}) is measured on the captured data: "
                         "give capture_analytics")
        problems.raise_if_any()
        self.capture_analytics = capture_analytics

        self.endpoint = endpoint
        self.managed_test = managed_test
        sampling = getattr(endpoint, "sampling_percent", None) or \
            (managed_test.resource.shadow_mode_config.shadow_model_variants[0].sampling_percentage
             if managed_test else 100)
        #: The criteria the judge gets: the ones given (checked at synth by ``Criteria`` itself), with the
        #: endpoint's sampling share unless given.
        self.criteria = {"sampling_percent": sampling, **criteria}
        try:
            Criteria.from_mapping(self.criteria)
        except ValueError as error:  # e.g. a sampling share out of range; the rest was checked above
            raise ConfigError(f"PromotionWorkflow {self.node.path!r}", [f"criteria: {error}"]) from None
        #: The state machine's physical name: deterministic, so a pipeline stack can name it without a reference.
        self.state_machine_name = cdk.Names.unique_resource_name(self, max_length=80, separator="-")
        self.state_machine_arn = cdk.Stack.of(self).format_arn(
            service="states", resource="stateMachine", resource_name=self.state_machine_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        self.report_store = report_store or CaptureStore(self, "Reports")
        self.topic = topic or self._topic()
        self.functions = self._functions()
        self.state_machine = self._state_machine(require_approval, instance_settings, on_inconclusive,
                                                 max_extensions)
        cfn_machine = self.state_machine.node.default_child
        cfn_machine.add_metadata(METADATA_KEY, {"role": "promotion-workflow", "endpoint": endpoint.node.path})
        self.schedule = self._schedule(test_end) if test_end and self.ends_itself else None
        #: The ``Custom::ShadowTestEnd`` resource that starts the self-ending execution (None when off).
        self.test_end = self._test_end() if self.ends_itself and test_end is None else None

    @staticmethod
    def _promotion_settings(problems: Problems, endpoint: Any, settings: Any,
                            override: Any) -> tuple[InstanceSettings, dict[str, Any] | None]:
        """The promoted variant's settings: given here, or the endpoint's (one definition for both the
        workflow and the endpoint's PROMOTED phase; given here and different there is an error)."""
        own_settings = getattr(endpoint, "promoted_instance_settings", None)
        own_override = getattr(endpoint, "promoted_instance_override", None)
        if settings is not None and not isinstance(settings, InstanceSettings):
            problems.add(f"instance_settings must be an InstanceSettings, got {shown(settings)}")
            settings = None
        elif settings is not None and own_settings is not None and settings is not own_settings:
            problems.add(f"instance_settings {settings.name} differs from the endpoint's promoted_instance_settings "
                         f"{own_settings.name}: its PROMOTED phase would deploy another config than the workflow "
                         "builds; set it on the endpoint only")
        if override is not None:
            if not isinstance(override, Mapping) or not override or set(override) - set(OVERRIDE_FIELDS):
                problems.add(f"instance_override must set some of {', '.join(OVERRIDE_FIELDS)}, got "
                             f"{sorted(override) if isinstance(override, Mapping) else shown(override)}")
                override = None
            else:
                if "InstanceType" in override:
                    problems.check_pattern("instance_override InstanceType", override["InstanceType"],
                                           r"ml\.[a-z][a-z0-9-]*\.[a-z0-9]+", "must be a SageMaker instance type")
                if "InitialInstanceCount" in override:
                    problems.check_int_range("instance_override InitialInstanceCount", override["InitialInstanceCount"], 1)
                if own_override is not None and dict(override) != own_override:
                    problems.add(f"instance_override {dict(override)} differs from the endpoint's "
                                 f"promoted_instance_override {own_override}; set it on the endpoint only")
        chosen = settings or own_settings or InstanceSettings.PRODUCTION
        chosen_override = dict(override) if override else own_override
        return chosen, chosen_override

    # Resources

    def _topic(self) -> sns.Topic:
        key = kms.Key(self, "TopicKey", enable_key_rotation=True, removal_policy=cdk.RemovalPolicy.DESTROY,
                      description=f"Shadow test verdicts of {self.node.path}")
        return sns.Topic(self, "Topic", master_key=key, enforce_ssl=True,
                         display_name="Shadow test verdicts and approvals")

    def _executions_arn(self) -> str:
        return cdk.Stack.of(self).format_arn(service="states", resource="execution",
                                             resource_name=f"{self.state_machine_name}:*",
                                             arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)

    def _function(self, name: str, handler: str, timeout: cdk.Duration, module: str = "handlers") -> lambda_.Function:
        group = logs.LogGroup(self, f"{name}Logs", retention=logs.RetentionDays.ONE_YEAR,
                              removal_policy=cdk.RemovalPolicy.DESTROY)
        role = iam.Role(self, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"{name} step of {self.node.path}")
        group.grant_write(role)
        function = lambda_.Function(
            self, f"{name}Function", runtime=lambda_.Runtime.PYTHON_3_14, handler=f"shadow_runtime.{module}.{handler}",
            code=lambda_.Code.from_asset(str(RUNTIME_DIR), exclude=["**/__pycache__"]), timeout=timeout,
            memory_size=512, role=role, log_group=group, description=f"shadow-constructs: {handler}")
        return function

    def _functions(self) -> dict[str, lambda_.Function]:
        functions = {
            "gather": self._function("GatherMetrics", "gather_metrics", cdk.Duration.minutes(5)),
            "judge": self._function("Judge", "judge", cdk.Duration.minutes(5)),
        }
        functions["gather"].add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"]))
        acknowledge_wildcard_resource(functions["gather"].role, "*", "cloudwatch:GetMetricData takes no resource ARN.")
        self._grant_reports(functions["gather"].role, read=False)
        self._grant_reports(functions["judge"].role, read=True)
        functions["follow"] = self._function("FollowTestEnd", "follow_test_end", cdk.Duration.minutes(1),
                                             module="lifecycle")
        functions["follow"].add_to_role_policy(iam.PolicyStatement(
            actions=["states:ListExecutions"], resources=[self.state_machine_arn]))
        executions = self._executions_arn()
        functions["follow"].add_to_role_policy(iam.PolicyStatement(
            actions=["states:DescribeExecution"], resources=[executions]))
        acknowledge_wildcard_resource(functions["follow"].role, executions,
                                      "The executions of this workflow's own state machine, named at run time.")
        if self.capture_analytics is not None:
            functions["agreement"] = self._function("MeasureAgreement", "measure_agreement", cdk.Duration.minutes(5))
            self.capture_analytics.grant_query(functions["agreement"])
        if self.managed_test is None:
            functions["prepare"] = self._function("PrepareUpdate", "prepare_update", cdk.Duration.minutes(2))
            functions["restore"] = self._function("RestoreAutoscaling", "restore_autoscaling", cdk.Duration.minutes(2))
            stack = cdk.Stack.of(self)
            configs = stack.format_arn(service="sagemaker", resource="endpoint-config", resource_name="*")
            functions["prepare"].add_to_role_policy(iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint"], resources=[self.endpoint.endpoint_arn]))
            functions["prepare"].add_to_role_policy(iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpointConfig", "sagemaker:CreateEndpointConfig"], resources=[configs]))
            scaling = iam.PolicyStatement(actions=[
                "application-autoscaling:DescribeScalableTargets", "application-autoscaling:DescribeScalingPolicies",
                "application-autoscaling:DeregisterScalableTarget", "application-autoscaling:DeleteScalingPolicy",
                "application-autoscaling:RegisterScalableTarget", "application-autoscaling:PutScalingPolicy"],
                resources=["*"])
            functions["prepare"].add_to_role_policy(scaling)
            functions["restore"].add_to_role_policy(scaling)
            # Registering a SageMaker target uses the service-linked role and reads the endpoint.
            functions["restore"].add_to_role_policy(iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"],
                resources=[self.endpoint.endpoint_arn]))
            functions["restore"].add_to_role_policy(iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"], resources=["*"],
                conditions={"StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}}))
            acknowledge_wildcard_resource(functions["prepare"].role, configs,
                                          "New endpoint configs are named at run time; reads and creates only.")
            for name in ("prepare", "restore"):
                acknowledge_wildcard_resource(functions[name].role, "*", "Application Auto Scaling calls take no "
                                              "resource ARN; CreateServiceLinkedRole is conditioned on its service.")
        return functions

    def _grant_reports(self, role: iam.IRole, read: bool) -> None:
        """Put (and, for the judge, get) objects under the workflow's prefix, with the store's key."""
        objects = self.report_store.bucket.arn_for_objects("shadow-tests/*")
        actions = ["s3:PutObject"] + (["s3:GetObject"] if read else [])
        role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=[objects]))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:GenerateDataKey", "kms:Encrypt"] + (["kms:Decrypt"] if read else []),
            resources=[self.report_store.encryption_key.key_arn]))
        acknowledge_wildcard_resource(role, objects, "Each run writes under its own key below the workflow's prefix.")

    # The state machine

    def _retry(self, state: sfn.TaskStateBase) -> sfn.TaskStateBase:
        state.add_retry(errors=THROTTLING_ERRORS, interval=self.retry_interval, backoff_rate=2, max_attempts=5)
        return state

    def _invoke(self, state_id: str, function: str, payload: dict, result_path: str) -> tasks.LambdaInvoke:
        return self._retry(tasks.LambdaInvoke(
            self, state_id, lambda_function=self.functions[function], payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True, result_path=result_path, retry_on_service_exceptions=False))

    def _sdk(self, state_id: str, service: str, action: str, parameters: dict, resources: list[str],
             result_path: str | None = None, iam_action: str | None = None) -> tasks.CallAwsService:
        return self._retry(tasks.CallAwsService(
            self, state_id, service=service, action=action, parameters=parameters, iam_resources=resources,
            iam_action=iam_action, result_path=result_path or sfn.JsonPath.DISCARD))

    def _notify(self, state_id: str, subject: str, message: sfn.TaskInput) -> tasks.SnsPublish:
        return self._retry(tasks.SnsPublish(self, state_id, topic=self.topic, subject=subject, message=message,
                                            result_path=sfn.JsonPath.DISCARD))

    def _state_machine(self, require_approval: bool, instance_settings: InstanceSettings,
                       on_inconclusive: InconclusiveAction, max_extensions: int) -> sfn.StateMachine:
        endpoint = self.endpoint
        context = {"endpoint_name": endpoint.endpoint_name, "production_variant": endpoint.production_variant_name,
                   "shadow_variant": endpoint.shadow_variant_name or self.managed_test.shadow_variant_name}
        metered = endpoint if endpoint.shadow_variant_name else ShadowEndpoint.from_endpoint_name(
            self, "MeteredEndpoint", endpoint.endpoint_name, production_variant_name=endpoint.production_variant_name,
            shadow_variant_name=context["shadow_variant"])  # a managed test's shadow is not in the endpoint's config
        queries = ShadowMetricFactory(metered).metric_data_queries(keys=list(VERDICT_SERIES))
        prefix = f"shadow-tests/{endpoint.endpoint_name}"

        failure = self._notify("ReportFailure", "Shadow test workflow failed",
                               sfn.TaskInput.from_object({"endpoint": endpoint.endpoint_name,
                                                          "execution": sfn.JsonPath.execution_id,
                                                          "error": sfn.JsonPath.string_at("$.failure.Error"),
                                                          "cause": sfn.JsonPath.string_at("$.failure.Cause"),
                                                          "production": "unchanged unless the report says otherwise"}))
        failed = sfn.Fail(self, "Failed", error="ShadowWorkflowFailed",
                          cause="A step failed; the previous production config keeps serving.")
        failure.next(failed)
        self._failure = failure

        def guarded(state: sfn.TaskStateBase) -> sfn.TaskStateBase:
            state.add_catch(failure, errors=["States.ALL"], result_path="$.failure")
            return state

        setup = sfn.Pass(self, "Setup", parameters={
            "minutes": int(self.window.to_minutes()), "extensions": 0,
            "started": sfn.JsonPath.string_at("$$.Execution.StartTime"),
            "end": sfn.JsonPath.string_at("$$.State.EnteredTime")}, result_path="$.run")
        gather = guarded(self._invoke("GatherMetrics", "gather", {
            "queries": queries, "end": sfn.JsonPath.string_at("$.run.end"),
            "minutes": sfn.JsonPath.number_at("$.run.minutes"), "period": 60,
            "report_bucket": self.report_store.bucket_name, "report_prefix": prefix,
            "run_id": sfn.JsonPath.string_at("$.run.started")}, "$.gathered"))
        judged = {"series": sfn.JsonPath.string_at("$.gathered.series"), "criteria": self.criteria,
                  "context": {**context, "start": sfn.JsonPath.string_at("$.gathered.start"),
                              "end": sfn.JsonPath.string_at("$.gathered.end")}}
        measure = None
        if self.capture_analytics is not None:
            # Athena over the window's capture hours; the function polls the query (at most 4 minutes).
            measure = guarded(self._invoke("MeasureAgreement", "agreement", {
                "query": self.capture_analytics.query_strings["label-agreement"],
                "workgroup": self.capture_analytics.workgroup_name,
                "start": sfn.JsonPath.string_at("$.gathered.start"), "end": sfn.JsonPath.string_at("$.gathered.end"),
                "poll_seconds": 2, "timeout_seconds": 240}, "$.agreement"))
            judged["agreement"] = sfn.JsonPath.object_at("$.agreement")
        judge = guarded(self._invoke("Judge", "judge", judged, "$.verdict"))
        summary = guarded(self._notify("PublishVerdict", "Shadow test verdict", sfn.TaskInput.from_object({
            "endpoint": endpoint.endpoint_name, "decision": sfn.JsonPath.string_at("$.verdict.decision"),
            "score": sfn.JsonPath.number_at("$.verdict.score"), "summary": sfn.JsonPath.string_at("$.verdict.summary"),
            "report": sfn.JsonPath.string_at("$.verdict.report_markdown")})))
        event = guarded(self._retry(tasks.EventBridgePutEvents(
            self, "EmitVerdictEvent", result_path=sfn.JsonPath.DISCARD, entries=[tasks.EventBridgePutEventsEntry(
                source="shadow-constructs", detail_type="Shadow test verdict",
                detail=sfn.TaskInput.from_object({"endpoint": endpoint.endpoint_name,
                                                  "verdict": sfn.JsonPath.object_at("$.verdict")}))])))

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
        verdict_fields = {"decision": sfn.JsonPath.string_at("$.verdict.decision"),
                          "score": sfn.JsonPath.number_at("$.verdict.score"),
                          "report": sfn.JsonPath.string_at("$.verdict.report_markdown")}
        done = sfn.Pass(self, "Result", parameters={
            **verdict_fields, "outcome": sfn.JsonPath.string_at("$.outcome.text"),
            "action": sfn.JsonPath.string_at("$.outcome.action")}, result_path="$.result").next(finish)
        promote = self._act("Promote", "promote", instance_settings, guarded, done)
        remove = self._act("RemoveShadow", "remove_shadow", instance_settings, guarded, done)
        if require_approval:
            approval = guarded(self._retry(tasks.SnsPublish(
                self, "AwaitApproval", topic=self.topic, subject="Approve shadow promotion?",
                integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
                message=sfn.TaskInput.from_object({
                    "endpoint": endpoint.endpoint_name, "report": sfn.JsonPath.string_at("$.verdict.report_markdown"),
                    "approve": "SendTaskSuccess with {\"approved\": true} and this token; false to keep production",
                    "token": sfn.JsonPath.task_token}),
                result_path="$.approval")))
            declined = sfn.Pass(self, "PromotionDeclined", parameters={
                **verdict_fields, "outcome": "A person declined; production unchanged.", "action": "declined"},
                result_path="$.result").next(finish)
            approval.next(sfn.Choice(self, "Approved?").when(
                sfn.Condition.boolean_equals("$.approval.approved", True), promote).otherwise(declined))
            on_promote: sfn.IChainable = approval
        else:
            on_promote = promote

        kept = sfn.Pass(self, "KeptAsIs", parameters={
            **verdict_fields, "outcome": "INCONCLUSIVE; nothing changed.", "action": "none"},
            result_path="$.result").next(finish)
        if on_inconclusive is InconclusiveAction.EXTEND and max_extensions > 0:
            wait_more = sfn.Wait(self, "WaitForMoreTraffic", time=sfn.WaitTime.duration(self.extension))
            extend = sfn.Pass(self, "ExtendWindow", parameters={
                "minutes": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.run.minutes"),
                                                 int(self.extension.to_minutes())),
                "extensions": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.run.extensions"), 1),
                "started": sfn.JsonPath.string_at("$.run.started"),
                "end": sfn.JsonPath.string_at("$$.State.EnteredTime")}, result_path="$.run")
            wait_more.next(extend).next(gather)
            inconclusive: sfn.IChainable = sfn.Choice(self, "ExtendAgain?").when(
                sfn.Condition.number_less_than("$.run.extensions", max_extensions), wait_more).otherwise(kept)
        elif on_inconclusive is InconclusiveAction.REMOVE_SHADOW:
            inconclusive = remove
        else:
            inconclusive = kept

        decide = sfn.Choice(self, "Decision") \
            .when(sfn.Condition.string_equals("$.verdict.decision", "PROMOTE"), on_promote) \
            .when(sfn.Condition.string_equals("$.verdict.decision", "REJECT"), remove) \
            .otherwise(inconclusive)
        (setup.next(gather).next(measure).next(judge) if measure else setup.next(gather).next(judge)) \
            .next(summary).next(event).next(decide)
        # An execution started before the test's end may pass {"test_end": "<ISO time>"} to wait for it (the
        # self-ending execution started at deploy time does).
        judge_run = sfn.Choice(self, "WaitForTestEnd?").when(
            sfn.Condition.is_present("$.test_end"),
            sfn.Wait(self, "WaitForTestEnd", time=sfn.WaitTime.timestamp_path("$.test_end")).next(setup)
        ).otherwise(setup)
        # {"follow": true}: wait for the test's self-ending execution and take its result (no second judge);
        # without one, judge now.
        follow = guarded(self._invoke("FollowTestEnd", "follow", {
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
        chain = sfn.Choice(self, "Follow?").when(sfn.Condition.is_present("$.follow"), follow).otherwise(judge_run)

        log_group = logs.LogGroup(self, "ExecutionLogs", retention=logs.RetentionDays.ONE_YEAR,
                                  removal_policy=cdk.RemovalPolicy.DESTROY)
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

    def _act(self, name: str, action: str, instance_settings: InstanceSettings, guarded, done: sfn.IChainable):
        """Promote or remove the shadow: end the managed test, or update the endpoint safely."""
        endpoint = self.endpoint
        report = guarded(self._notify(f"{name}Outcome", f"Shadow test: {action} finished", sfn.TaskInput.from_object({
            "endpoint": endpoint.endpoint_name, "action": action, "decision": sfn.JsonPath.string_at("$.verdict.decision"),
            "outcome": sfn.JsonPath.string_at("$.outcome.text")})))
        taken = "promoted" if action == "promote" else "shadow_removed"

        def outcome(text: str) -> sfn.Result:
            return sfn.Result.from_object({"text": text, "action": taken})

        report.next(done)
        if self.managed_test is not None:
            test = self.managed_test
            actions = {test.production_variant_name: "Remove", test.shadow_variant_name: "Promote"} \
                if action == "promote" else {test.production_variant_name: "Retain", test.shadow_variant_name: "Remove"}
            stop = guarded(self._sdk(f"{name}StopExperiment", "sagemaker", "stopInferenceExperiment", {
                "Name": test.experiment_name, "ModelVariantActions": actions, "DesiredState": "Completed",
                "Reason": sfn.JsonPath.string_at("$.verdict.summary")}, [test.experiment_arn],
                result_path="$.stopped"))
            stopped = sfn.Pass(self, f"{name}Stopped", result=outcome(f"experiment stopped: {action}"),
                               result_path="$.outcome")
            return stop.next(stopped).next(report)

        stack = cdk.Stack.of(self)
        configs = stack.format_arn(service="sagemaker", resource="endpoint-config", resource_name="*")
        settings = {"instance_settings": instance_settings.value}
        if self.instance_override:
            settings = {"instance_settings": "override", "override": self.instance_override}
        prepare = guarded(self._invoke(f"{name}Prepare", "prepare", {
            "endpoint_name": endpoint.endpoint_name, "action": action, **settings}, "$.update"))
        update_params: dict[str, Any] = {"EndpointName": endpoint.endpoint_name,
                                         "EndpointConfigName": sfn.JsonPath.string_at("$.update.config_name")}
        if isinstance(endpoint, ShadowEndpoint) and endpoint.deployment is not None:
            # The same guardrails and rollback alarms the endpoint was deployed with.
            update_params["DeploymentConfig"] = cdk.Lazy.any(_DeploymentConfig(endpoint))
        update = self._sdk(f"{name}UpdateEndpoint", "sagemaker", "updateEndpoint", update_params,
                           [endpoint.endpoint_arn, configs])
        update.add_catch(self._restore(f"{name}RestoreAfterUpdateError", "$.update.rollback", guarded)
                         .next(self._failure), errors=["States.ALL"], result_path="$.failure")
        start_polls = sfn.Pass(self, f"{name}StartPolling", result=sfn.Result.from_object({"count": 0}),
                               result_path="$.polls")
        wait = sfn.Wait(self, f"{name}WaitForUpdate", time=sfn.WaitTime.duration(self.poll_interval))
        describe = guarded(self._sdk(f"{name}DescribeEndpoint", "sagemaker", "describeEndpoint",
                                     {"EndpointName": endpoint.endpoint_name}, [endpoint.endpoint_arn],
                                     result_path="$.endpoint"))
        count = sfn.Pass(self, f"{name}CountPoll", parameters={
            "count": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.polls.count"), 1)}, result_path="$.polls")
        max_polls = max(1, int(self.update_timeout.to_seconds() // max(1, self.poll_interval.to_seconds())))

        succeeded = sfn.Pass(self, f"{name}Succeeded", result=outcome(f"{action}: endpoint updated"),
                             result_path="$.outcome")
        restore_ok = self._restore(f"{name}RestoreAutoscaling", "$.update.restore", guarded)
        restore_ok.next(succeeded).next(report)
        rolled_back = sfn.Pass(self, f"{name}RolledBack", parameters={
            "Error": "UpdateRolledBack", "Cause": sfn.JsonPath.format(
                "The endpoint is {} on config {}; the previous production keeps serving. {}",
                sfn.JsonPath.string_at("$.endpoint.EndpointStatus"), sfn.JsonPath.string_at("$.endpoint.EndpointConfigName"),
                sfn.JsonPath.string_at("$.endpoint.FailureReason"))}, result_path="$.failure")
        timed_out = sfn.Pass(self, f"{name}TimedOut", parameters={
            "Error": "UpdateTimedOut", "Cause": f"The endpoint did not finish updating within "
                                                f"{self.update_timeout.to_human_string()}; SageMaker keeps the old fleet "
                                                "serving until a blue/green update completes."}, result_path="$.failure")
        timed_out.next(self._failure)
        restore_bad = self._restore(f"{name}RestoreAfterRollback", "$.update.rollback", guarded)
        rolled_back.next(restore_bad).next(self._failure)

        status = sfn.Choice(self, f"{name}UpdateStatus") \
            .when(sfn.Condition.and_(sfn.Condition.string_equals("$.endpoint.EndpointStatus", "InService"),
                                     sfn.Condition.string_equals_json_path("$.endpoint.EndpointConfigName",
                                                                           "$.update.config_name")), restore_ok) \
            .when(sfn.Condition.or_(*[sfn.Condition.string_equals("$.endpoint.EndpointStatus", s) for s in IN_PROGRESS]),
                  sfn.Choice(self, f"{name}KeepWaiting?").when(
                      sfn.Condition.number_less_than("$.polls.count", max_polls), wait).otherwise(timed_out)) \
            .otherwise(rolled_back)
        wait.next(describe).next(count).next(status)
        already = sfn.Pass(self, f"{name}AlreadyApplied", result=outcome(
            f"{action}: already applied by an earlier run"), result_path="$.outcome")
        already.next(report)
        return prepare.next(sfn.Choice(self, f"{name}AlreadyApplied?").when(
            sfn.Condition.boolean_equals("$.update.already_applied", True), already).otherwise(
            update.next(start_polls).next(wait)))

    def _restore(self, state_id: str, targets_path: str, guarded) -> tasks.LambdaInvoke:
        return guarded(self._invoke(state_id, "restore", {"targets": sfn.JsonPath.list_at(targets_path)},
                                    sfn.JsonPath.DISCARD))

    def _test_end(self) -> cdk.CustomResource:
        """The deploy-time timer: a custom resource whose function starts the self-ending execution."""
        function = self._function("TestEnd", "test_end_resource", cdk.Duration.minutes(2), module="lifecycle")
        function.add_to_role_policy(iam.PolicyStatement(actions=["states:StartExecution"],
                                                        resources=[self.state_machine_arn]))
        executions = self._executions_arn()
        function.add_to_role_policy(iam.PolicyStatement(
            actions=["states:DescribeExecution", "states:GetExecutionHistory", "states:StopExecution"],
            resources=[executions]))
        acknowledge_wildcard_resource(function.role, executions,
                                      "The executions of this workflow's own state machine, named at run time.")
        resource = cdk.CustomResource(
            self, "TestEnd", service_token=function.function_arn, resource_type="Custom::ShadowTestEnd",
            properties={"StateMachineArn": self.state_machine_arn,
                        "DurationSeconds": int(self.duration.to_seconds()),
                        # A running execution keeps the definition it started with: a redeploy that changes the
                        # workflow (criteria, window, ...) must restart the pending end with the new one.
                        "DefinitionHash": cdk.Lazy.string(_DefinitionHash(self.state_machine))})
        resource.node.add_dependency(self.state_machine, function.role)
        cfn = resource.node.default_child
        cfn.add_metadata(METADATA_KEY, {"role": "test-end"})
        return resource

    def _schedule(self, test_end: datetime) -> scheduler.CfnSchedule:
        role = iam.Role(self, "SchedulerRole", assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"))
        self.state_machine.grant_start_execution(role)
        return scheduler.CfnSchedule(
            self, "EndOfTest", flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            schedule_expression=f"at({test_end.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})",
            schedule_expression_timezone="UTC",
            description=f"End the shadow test of {self.endpoint.endpoint_name} at its planned end",
            target=scheduler.CfnSchedule.TargetProperty(arn=self.state_machine.state_machine_arn,
                                                        role_arn=role.role_arn, input="{}"))


@jsii.implements(cdk.IStableStringProducer)
class _DefinitionHash:
    """A digest of the state machine's definition as synthesized (references unresolved, so deterministic)."""

    def __init__(self, machine: sfn.StateMachine) -> None:
        self.machine = machine

    def produce(self) -> str:
        definition = cdk.Stack.of(self.machine).resolve(self.machine.node.default_child.definition_string)
        return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


@jsii.implements(cdk.IStableAnyProducer)
class _DeploymentConfig:
    """The endpoint's guardrails as UpdateEndpoint takes them, rendered at synth (alarms may come later)."""

    def __init__(self, endpoint: ShadowEndpoint) -> None:
        self.endpoint = endpoint

    def produce(self):
        return self.endpoint.deployment_config_request()


__all__ = ["InconclusiveAction", "InstanceSettings", "PromotionWorkflow"]
