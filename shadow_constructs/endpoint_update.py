"""The promotion workflow's states: a factory of retried, guarded tasks (``WorkflowSteps``) and the safe update of
an endpoint to the promoted or shadow-free config (``EndpointUpdate``, a ``StateMachineFragment``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from .deployment import lazy_any
from .endpoint_base import IShadowEndpoint

#: Errors retried with backoff by every task (throttling and transient service errors).
THROTTLING_ERRORS = ["SageMaker.ThrottlingException", "SageMaker.SageMakerException", "ThrottlingException",
                     "Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.SdkClientException",
                     "SNS.ThrottledException", "EventBridge.EventBridgeException"]
#: Endpoint statuses of an update still under way.
IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack")


_Task = TypeVar("_Task", bound=sfn.TaskStateBase)


class WorkflowSteps:
    """Makes the workflow's tasks: each retries throttling (from ``retry_interval``, doubling, 5 attempts); a
    guarded one is caught into ``failure``, which reports to the topic and fails the execution.

    :param scope: where the failure states are made (the workflow).
    :param functions: the workflow's functions by step (see ``WorkflowFunctions``).
    :param topic: the topic reports go to.
    :param retry_interval: the first wait before a retry.
    :param endpoint_name: the endpoint named in the failure report.
    """

    def __init__(self, scope: Construct, *, functions: Mapping[str, lambda_.Function], topic: sns.ITopic,
                 retry_interval: cdk.Duration, endpoint_name: str) -> None:
        self.functions = functions
        self.topic = topic
        self.retry_interval = retry_interval
        #: Reports the error in ``$.failure`` and fails the execution: production is unchanged unless said.
        self.failure = self.notify(scope, "ReportFailure", "Shadow test workflow failed", sfn.TaskInput.from_object({
            "endpoint": endpoint_name, "execution": sfn.JsonPath.execution_id,
            "error": sfn.JsonPath.string_at("$.failure.Error"), "cause": sfn.JsonPath.string_at("$.failure.Cause"),
            "production": "unchanged unless the report says otherwise"}))
        self.failure.next(sfn.Fail(scope, "Failed", error="ShadowWorkflowFailed",
                                   cause="A step failed; the previous production config keeps serving."))

    def retry(self, state: _Task) -> _Task:
        state.add_retry(errors=THROTTLING_ERRORS, interval=self.retry_interval, backoff_rate=2, max_attempts=5)
        return state

    def guarded(self, state: _Task) -> _Task:
        state.add_catch(self.failure, errors=["States.ALL"], result_path="$.failure")
        return state

    def invoke(self, scope: Construct, state_id: str, function: str, payload: dict, result_path: str) -> tasks.LambdaInvoke:
        return self.retry(tasks.LambdaInvoke(
            # jsii: Function implements IFunction with other parameter names (aws/jsii#4541).
            scope, state_id, lambda_function=cast(lambda_.IFunction, self.functions[function]), payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True, result_path=result_path, retry_on_service_exceptions=False))

    def sdk(self, scope: Construct, state_id: str, service: str, action: str, parameters: dict, resources: list[str],
            result_path: str | None = None, statements: list[iam.PolicyStatement] | None = None) -> tasks.CallAwsService:
        return self.retry(tasks.CallAwsService(
            scope, state_id, service=service, action=action, parameters=parameters, iam_resources=resources,
            additional_iam_statements=statements, result_path=result_path or sfn.JsonPath.DISCARD))

    def notify(self, scope: Construct, state_id: str, subject: str, message: sfn.TaskInput) -> tasks.SnsPublish:
        return self.retry(tasks.SnsPublish(scope, state_id, topic=self.topic, subject=subject, message=message,
                                           result_path=sfn.JsonPath.DISCARD))

    def restore(self, scope: Construct, state_id: str, targets_path: str) -> tasks.LambdaInvoke:
        """Put back the auto scaling listed at ``targets_path`` (guarded)."""
        return self.guarded(self.invoke(scope, state_id, "restore", {"targets": sfn.JsonPath.list_at(targets_path)},
                                        sfn.JsonPath.DISCARD))


def storage_key_statements(endpoint: IShadowEndpoint) -> list[iam.PolicyStatement]:
    """What UpdateEndpoint needs of the endpoint's storage key: SageMaker creates a grant on it for the new fleet's
    volumes AS THE CALLER ("The KMS key policy must grant permission to the IAM role that you specify in your
    CreateEndpoint, UpdateEndpoint requests", CreateEndpointConfig's KmsKeyId). None without a known key."""
    key = endpoint.encryption_key
    if key is None:
        return []
    return [iam.PolicyStatement(actions=["kms:CreateGrant"], resources=[key.key_arn],
                                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
            iam.PolicyStatement(actions=["kms:DescribeKey"], resources=[key.key_arn])]


def outcome(action: str, text: str) -> sfn.Result:
    """What an ending of ``action`` (promote, remove_shadow) leaves in ``$.outcome``."""
    return sfn.Result.from_object({"text": text, "action": "promoted" if action == "promote" else "shadow_removed"})


class EndpointUpdate(sfn.StateMachineFragment):
    """Promote or remove the shadow of a self-service endpoint, never leaving production unserved.

    ``<name>Prepare`` builds the new config from the LIVE one (the promoted variant's instance ``settings``, or no
    shadow) and takes down auto scaling the update would break; UpdateEndpoint applies it with the endpoint's own
    guardrails; DescribeEndpoint is polled every ``poll_interval`` until the endpoint is InService on the new
    config (then scaling is put back), rolled back or failed (scaling put back, the failure reported), or
    ``update_timeout`` passes. A config an earlier run applied already is not applied again. The fragment ends
    with ``$.outcome`` set; failures go to the steps' failure report.

    :param name: the prefix of the states' names (``Promote``, ``RemoveShadow``).
    :param action: ``promote`` or ``remove_shadow``.
    :param endpoint: the endpoint to update.
    :param settings: the promoted variant's settings as the prepare function takes them
        (``{"instance_settings": ...}``, with ``override`` when it is ``override``).
    :param steps: the workflow's task factory.
    :param poll_interval: between DescribeEndpoint calls.
    :param update_timeout: how long the update may take.
    """

    def __init__(self, scope: Construct, construct_id: str, *, name: str, action: str, endpoint: IShadowEndpoint,
                 settings: Mapping[str, Any], steps: WorkflowSteps, poll_interval: cdk.Duration,
                 update_timeout: cdk.Duration) -> None:
        super().__init__(scope, construct_id)
        self._steps = steps
        self._prepare = steps.guarded(steps.invoke(self, f"{name}Prepare", "prepare", {
            "endpoint_name": endpoint.endpoint_name, "action": action, **settings}, "$.update"))
        self._succeeded = sfn.Pass(self, f"{name}Succeeded", result=outcome(action, f"{action}: endpoint updated"),
                                   result_path="$.outcome")
        self._already = sfn.Pass(self, f"{name}AlreadyApplied", result=outcome(
            action, f"{action}: already applied by an earlier run"), result_path="$.outcome")
        update = self._update(name, endpoint)  # before the polling: the order of links is the definition's order
        wait = self._polling(name, endpoint, poll_interval, update_timeout)
        self._prepare.next(sfn.Choice(self, f"{name}AlreadyApplied?").when(
            sfn.Condition.boolean_equals("$.update.already_applied", True), self._already).otherwise(
            update.next(
                sfn.Pass(self, f"{name}StartPolling", result=sfn.Result.from_object({"count": 0}),
                         result_path="$.polls")).next(wait)))

    @property
    def start_state(self) -> sfn.State:
        return self._prepare

    @property
    def end_states(self) -> list[sfn.INextable]:
        ends: list[sfn.INextable] = [cast(sfn.INextable, self._succeeded), cast(sfn.INextable, self._already)]
        return ends

    def _update(self, name: str, endpoint: IShadowEndpoint) -> tasks.CallAwsService:
        configs = cdk.Stack.of(self).format_arn(service="sagemaker", resource="endpoint-config", resource_name="*")
        parameters: dict[str, Any] = {"EndpointName": endpoint.endpoint_name,
                                      "EndpointConfigName": sfn.JsonPath.string_at("$.update.config_name")}
        if endpoint.deployment is not None:
            # The same guardrails and rollback alarms the endpoint was deployed with (alarms may come later).
            parameters["DeploymentConfig"] = lazy_any(endpoint.deployment_config_request)
        update = self._steps.sdk(self, f"{name}UpdateEndpoint", "sagemaker", "updateEndpoint", parameters,
                                 [endpoint.endpoint_arn, configs], statements=storage_key_statements(endpoint))
        update.add_catch(self._steps.restore(self, f"{name}RestoreAfterUpdateError", "$.update.rollback")
                         .next(self._steps.failure), errors=["States.ALL"], result_path="$.failure")
        return update

    def _polling(self, name: str, endpoint: IShadowEndpoint, poll_interval: cdk.Duration,
                 update_timeout: cdk.Duration) -> sfn.Wait:
        """Wait, describe, count, and decide: done, keep waiting, timed out, or rolled back."""
        steps = self._steps
        wait = sfn.Wait(self, f"{name}WaitForUpdate", time=sfn.WaitTime.duration(poll_interval))
        describe = steps.guarded(steps.sdk(self, f"{name}DescribeEndpoint", "sagemaker", "describeEndpoint",
                                           {"EndpointName": endpoint.endpoint_name}, [endpoint.endpoint_arn],
                                           result_path="$.endpoint"))
        count = sfn.Pass(self, f"{name}CountPoll", parameters={
            "count": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.polls.count"), 1)}, result_path="$.polls")
        max_polls = max(1, int(update_timeout.to_seconds() // max(1, poll_interval.to_seconds())))
        restore_ok = steps.restore(self, f"{name}RestoreAutoscaling", "$.update.restore")
        restore_ok.next(self._succeeded)
        rolled_back = sfn.Pass(self, f"{name}RolledBack", parameters={
            "Error": "UpdateRolledBack", "Cause": sfn.JsonPath.format(
                "The endpoint is {} on config {}; the previous production keeps serving. {}",
                sfn.JsonPath.string_at("$.endpoint.EndpointStatus"), sfn.JsonPath.string_at("$.endpoint.EndpointConfigName"),
                sfn.JsonPath.string_at("$.endpoint.FailureReason"))}, result_path="$.failure")
        timed_out = sfn.Pass(self, f"{name}TimedOut", parameters={
            "Error": "UpdateTimedOut", "Cause": f"The endpoint did not finish updating within "
                                                f"{update_timeout.to_human_string()}; SageMaker keeps the old fleet "
                                                "serving until a blue/green update completes."}, result_path="$.failure")
        timed_out.next(steps.failure)
        rolled_back.next(steps.restore(self, f"{name}RestoreAfterRollback", "$.update.rollback")).next(steps.failure)
        status = sfn.Choice(self, f"{name}UpdateStatus") \
            .when(sfn.Condition.and_(sfn.Condition.string_equals("$.endpoint.EndpointStatus", "InService"),
                                     sfn.Condition.string_equals_json_path("$.endpoint.EndpointConfigName",
                                                                           "$.update.config_name")), restore_ok) \
            .when(sfn.Condition.or_(*[sfn.Condition.string_equals("$.endpoint.EndpointStatus", s) for s in IN_PROGRESS]),
                  sfn.Choice(self, f"{name}KeepWaiting?").when(
                      sfn.Condition.number_less_than("$.polls.count", max_polls), wait).otherwise(timed_out)) \
            .otherwise(rolled_back)
        wait.next(describe).next(count).next(status)
        return wait


__all__ = ["IN_PROGRESS", "THROTTLING_ERRORS", "EndpointUpdate", "WorkflowSteps", "outcome"]
