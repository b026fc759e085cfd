"""The promotion workflow's Lambda functions (``shadow_runtime``) and the IAM each of them needs, least privilege."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from shadow_runtime.agreement_metrics import NAMESPACE as AGREEMENT_NAMESPACE

from ._nag import acknowledge_wildcard_resource
from ._runtime import runtime_asset_dir
from .capture import CaptureStore
from .capture_analytics import CaptureAnalytics
from .model import service_role

#: Where the workflow's functions write series and reports in the report store.
REPORT_PREFIX = "shadow-tests"
#: Application Auto Scaling's service-linked role for SageMaker variants (its name is fixed by AWS):
#: https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html
SCALING_SERVICE_LINKED_ROLE = ("aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                               "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")
#: What the prepare step does to production's auto scaling before an update (read it, take it off) and what the restore
#: step does after (put it back): each role gets its own half.
_SUSPEND_SCALING = ["application-autoscaling:DescribeScalableTargets", "application-autoscaling:DescribeScalingPolicies",
                    "application-autoscaling:DeleteScalingPolicy", "application-autoscaling:DeregisterScalableTarget"]
_RESTORE_SCALING = ["application-autoscaling:RegisterScalableTarget", "application-autoscaling:PutScalingPolicy"]


def role_of(function: lambda_.Function) -> iam.IRole:
    """The execution role of one of the workflow's functions (each is made with one)."""
    if function.role is None:
        raise TypeError(f"the workflow's function {function.node.path} has no execution role")
    return function.role


def executions_arn(scope: Construct, state_machine_name: str) -> str:
    """The ARN pattern of every execution of the state machine ``state_machine_name``."""
    return cdk.Stack.of(scope).format_arn(service="states", resource="execution", resource_name=f"{state_machine_name}:*",
                                          arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)


class WorkflowFunctions:
    """The functions of one PromotionWorkflow, made in ``scope`` (the workflow), each with a role of its own.

    ``functions`` holds, by step: ``gather`` (GetMetricData, writes series), ``judge`` (writes reports),
    ``follow`` (reads this state machine's executions), ``plan_look`` (the next interim look), ``agreement``
    with ``capture_analytics`` (its queries),
    and for a self-service test ``prepare`` (reads the endpoint, creates configs, takes scaling down) and
    ``restore`` (puts scaling back). ``test_end()`` adds the deploy-time timer's function.

    :param state_machine_name: the workflow state machine's physical name.
    :param report_store: where series and reports go.
    :param endpoint_arn: the endpoint a self-service test updates; None for a managed test.
    :param capture_analytics: the analytics whose agreement query a step runs. Default: none.
    :param log_removal_policy: what happens to the functions' log groups when the stack deletes them.
    """

    def __init__(self, scope: Construct, *, state_machine_name: str, report_store: CaptureStore,
                 endpoint_arn: str | None, capture_analytics: CaptureAnalytics | None,
                 log_removal_policy: cdk.RemovalPolicy) -> None:
        self.scope = scope
        self.state_machine_name = state_machine_name
        self.state_machine_arn = cdk.Stack.of(scope).format_arn(
            service="states", resource="stateMachine", resource_name=state_machine_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        self.report_store = report_store
        self.log_removal_policy = log_removal_policy
        self.functions: dict[str, lambda_.Function] = {
            "gather": self._gather(), "judge": self._judge(), "follow": self._follow(),
            # Pure: when the next interim look falls and what it judges (no AWS call, so no permission).
            "plan_look": self._function("PlanLook", "plan_look", cdk.Duration.seconds(30), module="looks")}
        if capture_analytics is not None:
            self.functions["agreement"] = self._agreement(capture_analytics)
        if endpoint_arn is not None:
            self.functions["prepare"], self.functions["restore"] = self._update_functions(endpoint_arn)

    def test_end(self) -> lambda_.Function:
        """The function of the deploy-time timer: starts, follows and stops this workflow's executions."""
        function = self._function("TestEnd", "test_end_resource", cdk.Duration.minutes(2), module="lifecycle")
        function.add_to_role_policy(iam.PolicyStatement(actions=["states:StartExecution"],
                                                        resources=[self.state_machine_arn]))
        self._on_executions(function, ["states:DescribeExecution", "states:GetExecutionHistory", "states:StopExecution"])
        return function

    def _function(self, name: str, handler: str, timeout: cdk.Duration, module: str = "handlers") -> lambda_.Function:
        group = logs.LogGroup(self.scope, f"{name}Logs", retention=logs.RetentionDays.ONE_YEAR,
                              removal_policy=self.log_removal_policy)
        role = service_role(self.scope, f"{name}Role", "lambda.amazonaws.com", f"{name} step of {self.scope.node.path}")
        group.grant_write(role)
        return lambda_.Function(
            self.scope, f"{name}Function", runtime=lambda_.Runtime.PYTHON_3_14, handler=f"shadow_runtime.{module}.{handler}",
            code=lambda_.Code.from_asset(str(runtime_asset_dir())), timeout=timeout,
            memory_size=512, role=role, log_group=group, description=f"shadow-constructs: {handler}")

    def _gather(self) -> lambda_.Function:
        function = self._function("GatherMetrics", "gather_metrics", cdk.Duration.minutes(5))
        function.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"]))
        acknowledge_wildcard_resource(role_of(function), "*", "cloudwatch:GetMetricData takes no resource ARN.")
        self._grant_reports(role_of(function), read=False)
        return function

    def _judge(self) -> lambda_.Function:
        function = self._function("Judge", "judge", cdk.Duration.minutes(5))
        self._grant_reports(role_of(function), read=True)
        return function

    def _agreement(self, capture_analytics: CaptureAnalytics) -> lambda_.Function:
        """Runs the label-agreement query and publishes the figures to its own CloudWatch namespace only."""
        function = self._function("MeasureAgreement", "measure_agreement", cdk.Duration.minutes(5))
        capture_analytics.grant_query(function, named_queries=False)
        function.add_to_role_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": AGREEMENT_NAMESPACE}}))
        acknowledge_wildcard_resource(role_of(function), "*", "cloudwatch:PutMetricData takes no resource ARN; "
                                      "the statement is conditioned on the agreement metrics' namespace.")
        return function

    def _follow(self) -> lambda_.Function:
        function = self._function("FollowTestEnd", "follow_test_end", cdk.Duration.minutes(1), module="lifecycle")
        function.add_to_role_policy(iam.PolicyStatement(actions=["states:ListExecutions"],
                                                        resources=[self.state_machine_arn]))
        self._on_executions(function, ["states:DescribeExecution"])
        return function

    def _on_executions(self, function: lambda_.Function, actions: list[str]) -> None:
        executions = executions_arn(self.scope, self.state_machine_name)
        function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=[executions]))
        acknowledge_wildcard_resource(role_of(function), executions,
                                      "The executions of this workflow's own state machine, named at run time.")

    def _update_functions(self, endpoint_arn: str) -> tuple[lambda_.Function, lambda_.Function]:
        prepare = self._function("PrepareUpdate", "prepare_update", cdk.Duration.minutes(2))
        restore = self._function("RestoreAutoscaling", "restore_autoscaling", cdk.Duration.minutes(2))
        configs = cdk.Stack.of(self.scope).format_arn(service="sagemaker", resource="endpoint-config", resource_name="*")
        prepare.add_to_role_policy(iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"], resources=[endpoint_arn]))
        prepare.add_to_role_policy(iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpointConfig", "sagemaker:CreateEndpointConfig"], resources=[configs]))
        prepare.add_to_role_policy(iam.PolicyStatement(actions=_SUSPEND_SCALING, resources=["*"]))
        restore.add_to_role_policy(iam.PolicyStatement(actions=_RESTORE_SCALING, resources=["*"]))
        # Registering a SageMaker target uses the service-linked role and reads the endpoint.
        restore.add_to_role_policy(iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"],
            resources=[endpoint_arn]))
        # RegisterScalableTarget creates Application Auto Scaling's service-linked role for SageMaker if it is missing.
        restore.add_to_role_policy(iam.PolicyStatement(
            actions=["iam:CreateServiceLinkedRole"], resources=[cdk.Stack.of(self.scope).format_arn(
                service="iam", region="", resource="role", resource_name=SCALING_SERVICE_LINKED_ROLE)],
            conditions={"StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}}))
        acknowledge_wildcard_resource(role_of(prepare), configs,
                                      "New endpoint configs are named at run time; reads and creates only.")
        for function in (prepare, restore):
            acknowledge_wildcard_resource(role_of(function), "*", "Application Auto Scaling calls take no resource ARN.")
        return prepare, restore

    def _grant_reports(self, role: iam.IRole, read: bool) -> None:
        """Put (and, for the judge, get) objects under the workflow's prefix, with the store's key."""
        objects = self.report_store.bucket.arn_for_objects(f"{REPORT_PREFIX}/*")
        actions = ["s3:PutObject"] + (["s3:GetObject"] if read else [])
        role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=[objects]))
        # S3 asks KMS for a data key as the writer (GenerateDataKey) and decrypts it for a reader: no kms:Encrypt.
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:GenerateDataKey"] + (["kms:Decrypt"] if read else []),
            resources=[self.report_store.encryption_key.key_arn]))
        acknowledge_wildcard_resource(role, objects, "Each run writes under its own key below the workflow's prefix.")


__all__ = ["REPORT_PREFIX", "WorkflowFunctions", "executions_arn"]
