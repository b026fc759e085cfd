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
- CloudFormation's ``AWS::S3::BucketPolicy`` and ``AWS::SNS::TopicPolicy`` reach the bucket and topic (moto's
  CloudFormation skips them), so their statements take part in decisions.

The rules table is ``rules.py``; the decisions are ``enforcer.Authorizer``'s.
"""

from __future__ import annotations

import json
from typing import Any

from .enforcer import AccessDenied, Authorizer
from .principals import ThreadSigning, acting_as
from .rules import RULES

__all__ = ["AccessDenied", "AuthorizationDouble", "Authorizer", "RULES", "acting_as"]

STATES_SERVICE = "states.amazonaws.com"


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
        self._saved: dict[str, Any] = {}

    def install(self) -> AuthorizationDouble:
        from moto.cloudformation import parsing
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        from ..athena import _cfn_model

        self.authorizer.start()
        self._signing.install()
        sessions = self.authorizer.sessions
        start, original_map = ExecutionWorker.start, parsing.get_model_map
        self._saved = {"start": start, "model_map": original_map}

        def start_as_role(worker: ExecutionWorker) -> None:
            details = worker._evaluation_details
            role_arn = details.aws_execution_details.role_arn
            state_machine = details.state_machine_details.arn
            with acting_as(sessions.credentials(role_arn, STATES_SERVICE, state_machine)):
                start(worker)

        models = {"AWS::S3::BucketPolicy": _cfn_model("AWS::S3::BucketPolicy", _put_bucket_policy, _delete_bucket_policy),
                  "AWS::SNS::TopicPolicy": _cfn_model("AWS::SNS::TopicPolicy", _put_topic_policy, _delete_topic_policy)}

        def get_model_map() -> dict[str, Any]:
            return {**original_map(), **models}

        ExecutionWorker.start = start_as_role  # type: ignore[method-assign]
        parsing.get_model_map = get_model_map
        self._keep_managed_policy_arns()
        self._keep_function_log_groups()
        self._log_group_arn_as_cloudformation_gives_it()
        self._bucket_policies_decided_here()
        return self

    def _log_group_arn_as_cloudformation_gives_it(self) -> None:
        """CloudFormation's ``Fn::GetAtt LogGroup.Arn`` ends in ``:*`` (it covers the group's streams, which is what
        a policy granting logs:PutLogEvents on it needs); moto's has no ``:*``.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-logs-loggroup.html"""
        from moto.logs.models import LogGroup

        attribute = self._saved["log_group_attribute"] = LogGroup.get_cfn_attribute

        def get_cfn_attribute(group: Any, attribute_name: str) -> str:
            value = attribute(group, attribute_name)
            return f"{value}:*" if attribute_name == "Arn" and not value.endswith(":*") else value

        LogGroup.get_cfn_attribute = get_cfn_attribute  # type: ignore[method-assign]

    def _keep_function_log_groups(self) -> None:
        """moto's Lambda drops a function's LoggingConfig: the function keeps its log group, where the Lambda double
        writes its logs as the execution role."""
        from moto.awslambda.models import LambdaFunction

        create = LambdaFunction.create_from_cloudformation_json
        self._saved["function_create"] = create

        def create_function(cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
            function = create.__func__(cls, resource_name, cloudformation_json, *args, **kwargs)
            logging_config = cloudformation_json.get("Properties", {}).get("LoggingConfig") or {}
            function.emulator_log_group = logging_config.get("LogGroup")
            return function

        LambdaFunction.create_from_cloudformation_json = classmethod(create_function)  # type: ignore[method-assign,assignment]

    def _bucket_policies_decided_here(self) -> None:
        """moto reads a bucket policy itself, conditions ignored: the TLS-only statement (Deny when
        aws:SecureTransport is false) would deny every request. The authorization has decided by then, with the
        policy's conditions evaluated, so moto's own reading is turned off."""
        from moto.iam.access_control import PermissionResult
        from moto.s3.models import FakeBucket

        self._saved["get_permission"] = FakeBucket.get_permission

        def get_permission(bucket: Any, action: str, resource: str) -> Any:
            return PermissionResult.NEUTRAL

        FakeBucket.get_permission = get_permission  # type: ignore[method-assign]

    def _keep_managed_policy_arns(self) -> None:
        """moto's CloudFormation ignores a role's ManagedPolicyArns (AWS's own policies, such as the CDK deploy role's
        AWSCloudFormationReadOnlyAccess, are not even loaded): the role keeps them, for ``policies.identity_policies``."""
        from moto.iam.models import Role

        create, update = Role.create_from_cloudformation_json, Role.update_from_cloudformation_json
        self._saved.update({"role_create": create, "role_update": update})

        def keep(role: Any, cloudformation_json: Any) -> Any:
            role.emulator_managed_policy_arns = list(cloudformation_json.get("Properties", {}).get("ManagedPolicyArns", []))
            return role

        def create_role(cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
            return keep(create.__func__(cls, resource_name, cloudformation_json, *args, **kwargs), cloudformation_json)

        def update_role(cls: Any, original: Any, new_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
            return keep(update.__func__(cls, original, new_name, cloudformation_json, *args, **kwargs), cloudformation_json)

        Role.create_from_cloudformation_json = classmethod(create_role)  # type: ignore[method-assign,assignment]
        Role.update_from_cloudformation_json = classmethod(update_role)  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        from moto.cloudformation import parsing
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        if self._saved:
            from moto.iam.models import Role

            ExecutionWorker.start = self._saved["start"]  # type: ignore[method-assign]
            parsing.get_model_map = self._saved["model_map"]
            Role.create_from_cloudformation_json = self._saved["role_create"]  # type: ignore[method-assign]
            Role.update_from_cloudformation_json = self._saved["role_update"]  # type: ignore[method-assign]
            from moto.awslambda.models import LambdaFunction

            LambdaFunction.create_from_cloudformation_json = self._saved["function_create"]  # type: ignore[method-assign]
            from moto.logs.models import LogGroup

            LogGroup.get_cfn_attribute = self._saved["log_group_attribute"]  # type: ignore[method-assign]
            from moto.s3.models import FakeBucket

            FakeBucket.get_permission = self._saved["get_permission"]  # type: ignore[method-assign]
            self._saved = {}
        self._signing.uninstall()
        self.authorizer.stop()

    def __enter__(self) -> AuthorizationDouble:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()
