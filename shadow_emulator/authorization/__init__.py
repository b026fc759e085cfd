"""Authorization in the emulator: every request a principal of the deployed app makes is authorized as AWS would,
as that principal, by a maintained IAM evaluator (iam-simulate), before it is served.

``AuthorizationDouble`` installs it into a process running moto (``EmulatorServer`` does, unless told
``authorization=False``):

- botocore signs with the credentials of whoever the current thread acts as (``principals.acting_as``), and
  threads started while acting inherit them;
- Step Functions executions act as their state machine's role (so their service integrations, SNS Publish or
  SageMaker UpdateEndpoint, are made as it), Lambda functions as their execution role (the ``LambdaDouble`` asks
  ``authorizer.sessions`` for it), each session issued by the emulated STS after the role's trust policy lets the
  service assume it;
- a role passed to Step Functions (CreateStateMachine, UpdateStateMachine with a new roleArn) or to Lambda
  (CreateFunction, UpdateFunctionConfiguration with a new Role) is refused as AWS refuses it when the service may
  not assume it (``AccessDeniedException`` / ``InvalidParameterValueException`` with AWS's message), through the
  API and through CloudFormation (the resource's create fails, the stack rolls back); an execution whose role can no
  longer be assumed (its trust policy changed, or the role was deleted, since) fails, and says why;
- CloudFormation's ``AWS::S3::BucketPolicy`` and ``AWS::SNS::TopicPolicy`` reach the bucket and topic (moto's
  CloudFormation skips them), so their statements take part in decisions.

The rules table is ``rules.py``; the decisions are ``enforcer.Authorizer``'s.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from .enforcer import AccessDenied, Authorizer
from .principals import ThreadSigning, acting_as
from .rules import RULES

__all__ = ["AccessDenied", "AuthorizationDouble", "Authorizer", "RULES", "acting_as"]

STATES_SERVICE = "states.amazonaws.com"
_MISSING = object()  # an attribute the patched class did not hold itself (it inherited it)
LAMBDA_SERVICE = "lambda.amazonaws.com"
#: Step Functions' answer (AccessDeniedException) to CreateStateMachine or UpdateStateMachine with a role it may not
#: assume: https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html
STATES_ROLE_REFUSED = ("Neither the global service principal states.amazonaws.com, nor the regional one is authorized "
                       "to assume the provided role.")
#: Lambda's answer (InvalidParameterValueException) to CreateFunction or UpdateFunctionConfiguration with a role it
#: may not assume: https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html
LAMBDA_ROLE_REFUSED = "The role defined for the function cannot be assumed by Lambda."
_ROLE_ARN = re.compile(r"arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]+")


@functools.cache
def _role_not_assumable() -> type:
    """The error a service answers when it may not assume the role it is given (moto turns it into the API's error
    response; ``AuthorizationDouble`` turns it into a failed resource in CloudFormation)."""
    from moto.core.exceptions import JsonRESTError

    class RoleNotAssumable(JsonRESTError):
        code = 400

        def __init__(self, error_type: str, message: str, service: str, handler_error_code: str) -> None:
            super().__init__(error_type, message)
            self.service, self.handler_error_code = service, handler_error_code

        def cloudformation_reason(self) -> str:
            """The resource's CREATE_FAILED reason, as CloudFormation words a resource handler's error."""
            return (f'Resource handler returned message: "{self.message} (Service: {self.service}, Status Code: 400, '
                    f'Request ID: {uuid.uuid4()})" (RequestToken: {uuid.uuid4()}, HandlerErrorCode: '
                    f"{self.handler_error_code})")

    return RoleNotAssumable


@dataclass
class _FailedResource:
    """A resource whose create failed, as the CloudFormation double's rollback reads it (nothing to delete)."""

    logical_id: str
    stack_id: str
    resource_type: str
    physical_id: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    answered: bool = False  # no handler answered: the rollback sends nothing


def _failed_resource(resources_map: Any, logical_id: str, resource_json: dict[str, Any], refusal: Any,
                     status: str = "CREATE_FAILED") -> Exception:
    """A resource's create (or update) refused: its CREATE_FAILED (UPDATE_FAILED) event with CloudFormation's reason,
    and the error that makes the CloudFormation double roll the stack back."""
    from moto.cloudformation.models import Event, cloudformation_backends

    from ..cloudformation import _CreateFailed

    stack = cloudformation_backends[resources_map._account_id][resources_map._region_name].get_stack(
        resources_map.stack_id)
    reason = refusal.cloudformation_reason()
    resource_type = resource_json.get("Type", "")
    stack.events.append(Event(stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
                              physical_resource_id="", resource_type=resource_type, resource_status=status,
                              resource_status_reason=reason,
                              resource_properties=json.dumps(resource_json.get("Properties") or {}, default=str)))
    return _CreateFailed(_FailedResource(logical_id, stack.stack_id, resource_type), reason)  # type: ignore[arg-type]


def _fail_execution(worker: Any, error: str, cause: str) -> None:
    """End the execution ``worker`` would run before its first state: ExecutionStarted, then ExecutionFailed."""
    from moto.stepfunctions.parser.api import (
        ExecutionFailedEventDetails,
        ExecutionStartedEventDetails,
        HistoryEventExecutionDataDetails,
        HistoryEventType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    details = worker._evaluation_details
    env = worker.env = worker._get_evaluation_environment()
    env.event_manager.add_event(
        context=env.event_history_context, event_type=HistoryEventType.ExecutionStarted,
        event_details=EventDetails(executionStartedEventDetails=ExecutionStartedEventDetails(
            input=to_json_str(details.execution_details.inpt),
            inputDetails=HistoryEventExecutionDataDetails(truncated=False),
            roleArn=details.aws_execution_details.role_arn)),
        update_source_event_id=False)
    failed = ExecutionFailedEventDetails(error=error, cause=cause)
    env.set_error(failed)
    env.event_manager.add_event(context=env.event_history_context, event_type=HistoryEventType.ExecutionFailed,
                                event_details=EventDetails(executionFailedEventDetails=failed))
    worker._execution_communication.terminated()


def _put_bucket_policy(properties: dict[str, Any], name: str, account: str, region: str) -> str:
    from moto.s3.models import s3_backends

    bucket = properties["Bucket"]
    s3_backends[account]["aws"].put_bucket_policy(bucket, json.dumps(properties["PolicyDocument"]).encode())
    return f"{bucket}-policy"


def _delete_bucket_policy(properties: dict[str, Any], name: str, account: str, region: str) -> None:
    from moto.s3.models import s3_backends

    name = properties.get("Bucket")
    bucket = s3_backends[account]["aws"].buckets.get(name) if isinstance(name, str) else None
    if bucket is not None:  # (moto passes a deleted stack's properties unresolved: the bucket goes with it)
        bucket.policy = None


def _put_topic_policy(properties: dict[str, Any], name: str, account: str, region: str) -> str:
    from moto.sns.models import sns_backends

    for topic in properties.get("Topics", []):
        found = sns_backends[account][region].topics.get(topic) if isinstance(topic, str) else None
        if found is not None:
            found.policy = json.dumps(properties["PolicyDocument"])
    return f"{name}-policy"


def _delete_topic_policy(properties: dict[str, Any], name: str, account: str, region: str) -> None:
    from moto.sns.models import sns_backends

    for topic in properties.get("Topics", []):
        found = sns_backends[account][region].topics.get(topic) if isinstance(topic, str) else None
        if found is not None:
            found.policy = json.dumps(found._create_default_topic_policy(region, account, topic.split(":")[-1]))


class AuthorizationDouble:
    """Installs the emulator's authorization into this process's moto (see the module's text).

    :param authorizer: the decisions. Default: a new ``Authorizer`` (it starts iam-simulate's Node process).
    """

    def __init__(self, authorizer: Authorizer | None = None) -> None:
        self.authorizer = authorizer or Authorizer()
        self._signing = ThreadSigning()
        #: What install replaced, to put back: (owner, attribute, its own value there or _MISSING), in order.
        self._patches: list[tuple[Any, str, Any]] = []

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        """Set ``owner.name`` (a class or a module) to ``value``; ``uninstall`` puts back what ``owner`` itself held."""
        self._patches.append((owner, name, vars(owner).get(name, _MISSING)))
        setattr(owner, name, value)

    def install(self) -> AuthorizationDouble:
        from moto.cloudformation import parsing
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        from ..athena import _cfn_model

        self.authorizer.start()
        self._signing.install()
        sessions = self.authorizer.sessions
        start, original_map = ExecutionWorker.start, parsing.get_model_map

        def start_as_role(worker: ExecutionWorker) -> None:
            details = worker._evaluation_details
            role_arn = details.aws_execution_details.role_arn
            state_machine = details.state_machine_details.arn
            try:
                credentials = sessions.credentials(role_arn, STATES_SERVICE, state_machine)
            except AccessDenied as denied:
                # Checked at CreateStateMachine; the trust policy has changed since. StartExecution is answered and
                # the execution fails, saying why (the emulator's choice: AWS does not document this case).
                _fail_execution(worker, "States.Runtime", f"{STATES_ROLE_REFUSED} ({denied})")
                return
            with acting_as(credentials):
                start(worker)

        models = {"AWS::S3::BucketPolicy": _cfn_model("AWS::S3::BucketPolicy", _put_bucket_policy, _delete_bucket_policy),
                  "AWS::SNS::TopicPolicy": _cfn_model("AWS::SNS::TopicPolicy", _put_topic_policy, _delete_topic_policy)}

        def get_model_map() -> dict[str, Any]:
            return {**original_map(), **models}

        self._patch(ExecutionWorker, "start", start_as_role)
        self._patch(parsing, "get_model_map", get_model_map)
        self._roles_checked_when_passed()
        self._keep_managed_policy_arns()
        self._keep_function_log_groups()
        self._log_group_arn_as_cloudformation_gives_it()
        self._bucket_policies_decided_here()
        return self

    def _roles_checked_when_passed(self) -> None:
        """Step Functions and Lambda check, when given a role, that they may assume it (see the module's text): in the
        backends' methods the API and CloudFormation both call, so a stack's state machine or function with such a
        role fails its create (CREATE_FAILED with CloudFormation's reason; the stack rolls back)."""
        from moto.awslambda.models import LambdaBackend, LambdaFunction
        from moto.cloudformation import parsing
        from moto.stepfunctions.models import StepFunctionBackend
        from moto.utilities.utils import get_partition

        sessions, refusal = self.authorizer.sessions, _role_not_assumable()
        create_machine, update_machine = StepFunctionBackend.create_state_machine, StepFunctionBackend.update_state_machine
        create_function, update_configuration = LambdaBackend.create_function, LambdaFunction.update_configuration
        create_resource, update_resource = parsing.parse_and_create_resource, parsing.parse_and_update_resource
        refused_updates: dict[tuple[int, str], tuple[Any, Exception]] = {}

        def check_states(role_arn: str, state_machine_arn: str) -> None:
            try:
                sessions.check(role_arn, STATES_SERVICE, state_machine_arn)
            except AccessDenied as denied:
                raise refusal("AccessDeniedException", STATES_ROLE_REFUSED, "Sfn", "AccessDenied") from denied

        def check_lambda(role_arn: str) -> None:
            try:
                sessions.check(role_arn, LAMBDA_SERVICE)
            except AccessDenied as denied:
                error = refusal("InvalidParameterValueException", LAMBDA_ROLE_REFUSED, "Lambda", "InvalidRequest")
                raise error from denied

        def create_state_machine(backend: Any, name: str, definition: str, roleArn: str, *args: Any,  # noqa: N803
                                 **kwargs: Any) -> Any:
            backend._validate_name(name)  # moto's own checks first, as AWS validates the request first
            backend._validate_role_arn(roleArn)
            partition, region, account = get_partition(backend.region_name), backend.region_name, backend.account_id
            check_states(roleArn, f"arn:{partition}:states:{region}:{account}:stateMachine:{name}")
            return create_machine(backend, name, definition, roleArn, *args, **kwargs)

        def update_state_machine(backend: Any, arn: str, definition: Any = None, role_arn: Any = None, *args: Any,
                                 **kwargs: Any) -> Any:
            if role_arn:
                machine = backend.describe_state_machine(arn)
                if role_arn != machine.roleArn:
                    backend._validate_role_arn(role_arn)
                    check_states(role_arn, machine.arn)
            return update_machine(backend, arn, definition, role_arn, *args, **kwargs)

        def create_lambda_function(backend: Any, spec: dict[str, Any]) -> Any:
            role = spec.get("Role")
            if isinstance(role, str) and _ROLE_ARN.fullmatch(role) and role.split(":")[4] == backend.account_id:
                check_lambda(role)  # (moto answers a malformed or another account's role itself)
            return create_function(backend, spec)

        def update_function_configuration(function: Any, config_updates: dict[str, Any]) -> Any:
            role = config_updates.get("Role")
            if isinstance(role, str) and role != function.role and _ROLE_ARN.fullmatch(role) and \
                    role.split(":")[4] == function.account_id:
                check_lambda(role)
            return update_configuration(function, config_updates)

        def parse_and_create_resource(logical_id: str, resource_json: dict[str, Any], resources_map: Any, *args: Any,
                                      **kwargs: Any) -> Any:
            try:
                return create_resource(logical_id, resource_json, resources_map, *args, **kwargs)
            except refusal as refused:
                raise _failed_resource(resources_map, logical_id, resource_json, refused) from refused

        def parse_and_update_resource(logical_id: str, resource_json: dict[str, Any], resources_map: Any, *args: Any,
                                      **kwargs: Any) -> Any:
            # moto tries a failed update again (up to 4 times, for dependencies): the same refusal, reported once.
            key = (id(resources_map), logical_id)
            earlier = refused_updates.get(key)
            if earlier is not None and earlier[0] is resource_json:
                raise earlier[1]
            try:
                return update_resource(logical_id, resource_json, resources_map, *args, **kwargs)
            except refusal as refused:
                failed = _failed_resource(resources_map, logical_id, resource_json, refused, "UPDATE_FAILED")
                refused_updates[key] = (resource_json, failed)
                raise failed from refused

        self._patch(StepFunctionBackend, "create_state_machine", create_state_machine)
        self._patch(StepFunctionBackend, "update_state_machine", update_state_machine)
        self._patch(LambdaBackend, "create_function", create_lambda_function)
        self._patch(LambdaFunction, "update_configuration", update_function_configuration)
        self._patch(parsing, "parse_and_create_resource", parse_and_create_resource)
        self._patch(parsing, "parse_and_update_resource", parse_and_update_resource)

    def _log_group_arn_as_cloudformation_gives_it(self) -> None:
        """CloudFormation's ``Fn::GetAtt LogGroup.Arn`` ends in ``:*`` (it covers the group's streams, which is what
        a policy granting logs:PutLogEvents on it needs); moto's has no ``:*``.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-logs-loggroup.html"""
        from moto.logs.models import LogGroup

        attribute = LogGroup.get_cfn_attribute

        def get_cfn_attribute(group: Any, attribute_name: str) -> str:
            value = attribute(group, attribute_name)
            return f"{value}:*" if attribute_name == "Arn" and not value.endswith(":*") else value

        self._patch(LogGroup, "get_cfn_attribute", get_cfn_attribute)

    def _keep_function_log_groups(self) -> None:
        """moto's Lambda drops a function's LoggingConfig: the function keeps its log group, where the Lambda double
        writes its logs as the execution role."""
        from moto.awslambda.models import LambdaFunction

        create = LambdaFunction.create_from_cloudformation_json

        def create_function(cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
            function = create.__func__(cls, resource_name, cloudformation_json, *args, **kwargs)
            logging_config = cloudformation_json.get("Properties", {}).get("LoggingConfig") or {}
            function.emulator_log_group = logging_config.get("LogGroup")
            return function

        self._patch(LambdaFunction, "create_from_cloudformation_json", classmethod(create_function))

    def _bucket_policies_decided_here(self) -> None:
        """moto reads a bucket policy itself, conditions ignored: the TLS-only statement (Deny when
        aws:SecureTransport is false) would deny every request. The authorization has decided by then, with the
        policy's conditions evaluated, so moto's own reading is turned off."""
        from moto.iam.access_control import PermissionResult
        from moto.s3.models import FakeBucket

        def get_permission(bucket: Any, action: str, resource: str) -> Any:
            return PermissionResult.NEUTRAL

        self._patch(FakeBucket, "get_permission", get_permission)

        # moto's KMS reads a key's policy itself too (DescribeKey, Encrypt, ...), as a string: a key CloudFormation made
        # holds it as a dict, and its reading crashed the request (500). The key policy took part in the decision.
        from moto.kms import responses as kms_responses

        self._patch(kms_responses, "validate_policy", lambda key, action: None)

    def _keep_managed_policy_arns(self) -> None:
        """moto's CloudFormation ignores a role's ManagedPolicyArns (AWS's own policies, such as the CDK deploy role's
        AWSCloudFormationReadOnlyAccess, are not even loaded): the role keeps them, for ``policies.identity_policies``."""
        from moto.iam.models import Role

        create, update = Role.create_from_cloudformation_json, Role.update_from_cloudformation_json

        def keep(role: Any, cloudformation_json: Any) -> Any:
            role.emulator_managed_policy_arns = list(cloudformation_json.get("Properties", {}).get("ManagedPolicyArns", []))
            return role

        def create_role(cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
            return keep(create.__func__(cls, resource_name, cloudformation_json, *args, **kwargs), cloudformation_json)

        def update_role(cls: Any, original: Any, new_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
            return keep(update.__func__(cls, original, new_name, cloudformation_json, *args, **kwargs), cloudformation_json)

        self._patch(Role, "create_from_cloudformation_json", classmethod(create_role))
        self._patch(Role, "update_from_cloudformation_json", classmethod(update_role))

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._patches):
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._patches = []
        self._signing.uninstall()
        self.authorizer.stop()

    def __enter__(self) -> AuthorizationDouble:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()
