"""The policies a decision needs, read from the emulated account: a principal's identity policies and a resource's
policy (bucket policy, key policy, topic policy, a role's trust policy), as moto holds them."""

from __future__ import annotations

import json
from typing import Any

from .principals import ADMINISTRATOR_POLICY, PARTITION, Principal


#: The key policy AWS gives its managed key for S3 (alias/aws/s3): every principal of the account, through S3 only.
#: https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key
def aws_managed_key_policy(account: str, service: str, region: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "Allow access through the service for all principals in the account that are authorized to use it",
        "Effect": "Allow", "Principal": {"AWS": "*"},
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:CallerAccount": account, "kms:ViaService": f"{service}.{region}.amazonaws.com"}}}]}


#: SageMaker's images live in AWS's accounts; their repositories let any AWS principal pull them.
PUBLIC_IMAGE_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Sid": "SageMakerImagesArePullable", "Effect": "Allow", "Principal": {"AWS": "*"},
    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"], "Resource": "*"}]}


def _document(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        from urllib.parse import unquote

        text = value.strip()
        if not text.startswith("{"):
            text = unquote(text)
        value = json.loads(text)
    # moto's CloudFormation leaves an Fn::If branch of AWS::NoValue in a list as null; CloudFormation drops it.
    if isinstance(value, dict) and isinstance(value.get("Statement"), list):
        value = {**value, "Statement": [s for s in value["Statement"] if s is not None]}
    return value


def _iam(account: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account][PARTITION]


def _managed(backend: Any, policies: Any) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for arn, policy in dict(policies).items():
        versions = getattr(policy, "versions", [])
        document = next((v.document for v in versions if v.is_default_version), getattr(policy, "document", None))
        parsed = _document(document)
        if parsed is not None:
            found.append((arn.split("/")[-1], parsed))
    return found


def _managed_document(backend: Any, arn: str) -> dict[str, Any] | None:
    """A managed policy's document: the account's own, or one of AWS's (moto's copy of them, loaded or not)."""
    policy = backend.managed_policies.get(arn)
    if policy is not None:
        return _managed(backend, {arn: policy})[0][1]
    if ":iam::aws:policy/" in arn:
        return _aws_managed().get(arn.split("/")[-1])
    return None


_AWS_MANAGED: dict[str, Any] = {}


def _aws_managed() -> dict[str, Any]:
    if not _AWS_MANAGED:
        from moto.iam.aws_managed_policies import aws_managed_policies_data

        _AWS_MANAGED.update({name: data["Document"] for name, data in json.loads(aws_managed_policies_data).items()})
    return _AWS_MANAGED


def identity_policies(principal: Principal) -> list[dict[str, Any]]:
    """iam-simulate's ``identityPolicies`` for the principal (name + policy), inline and managed."""
    if principal.kind == "administrator":
        return [{"name": "AdministratorAccess", "policy": ADMINISTRATOR_POLICY}]
    backend = _iam(principal.account)
    found: list[tuple[str, dict[str, Any]]] = []
    if principal.kind == "role":
        role = backend.roles_by_name(principal.name) if hasattr(backend, "roles_by_name") else None
        role = role or next((r for r in backend.roles.values() if r.name == principal.name), None)
        if role is None:
            return []
        found += [(name, _document(document)) for name, document in role.policies.items()]  # type: ignore[misc]
        found += _managed(backend, role.managed_policies)
        for arn in getattr(role, "emulator_managed_policy_arns", []):
            if arn not in role.managed_policies:
                found.append((arn.split("/")[-1], _managed_document(backend, arn)))
    elif principal.kind == "user":
        user = backend.users.get(principal.name)
        if user is None:
            return []
        found += [(name, _document(document)) for name, document in user.policies.items()]  # type: ignore[misc]
        found += _managed(backend, user.managed_policies)
        for group in backend.groups.values():
            if user in group.users:
                found += [(name, _document(document)) for name, document in group.policies.items()]  # type: ignore[misc]
                found += _managed(backend, group.managed_policies)
    return [{"name": name, "policy": policy} for name, policy in found if policy is not None]


def permission_boundary(principal: Principal) -> list[dict[str, Any]] | None:
    if principal.kind != "role":
        return None
    backend = _iam(principal.account)
    role = next((r for r in backend.roles.values() if r.name == principal.name), None)
    arn = getattr(role, "permissions_boundary_arn", None)
    if not arn:
        return None
    policy = backend.managed_policies.get(arn)
    if policy is None:
        return None
    return [{"name": "PermissionsBoundary", "policy": _managed(backend, {arn: policy})[0][1]}]


def kms_key(reference: str | None, account: str, region: str) -> str | None:
    """The ARN of the KMS key a reference names (key id, key ARN, alias name or alias ARN); ``alias/aws/s3`` is
    kept as that alias's ARN (AWS's managed key). None when nothing is named."""
    if not reference:
        return None
    if reference.startswith("arn:") and ":alias/" not in reference:
        return reference
    from moto.kms.models import kms_backends

    if reference.startswith("arn:"):
        parts = reference.split(":")
        account, region, reference = parts[4], parts[3], parts[5]
    backend = kms_backends[account][region]
    if reference.startswith("alias/aws/"):  # AWS's managed key of a service: moto makes it on first use
        return backend.keys[backend.get_key_id_from_alias(reference)].arn
    try:
        return backend.keys[backend.any_id_to_key_id(reference)].arn
    except (KeyError, TypeError):
        return f"arn:{PARTITION}:kms:{region}:{account}:key/{reference}"


def resource_policy(arn: str, action: str) -> dict[str, Any] | None:
    """The resource's own policy, if its kind has one."""
    parts = arn.split(":")
    if len(parts) < 6:
        return None
    service, region, account, rest = parts[2], parts[3], parts[4], ":".join(parts[5:])
    if service == "s3":
        from moto.s3.models import s3_backends

        bucket = s3_backends[account or "123456789012"][PARTITION].buckets.get(rest.split("/")[0])
        return _document(getattr(bucket, "policy", None)) if bucket is not None else None
    if service == "kms":
        from moto.kms.models import kms_backends

        key = kms_backends[account][region].keys.get(rest.split("/")[-1])
        managed = [alias for alias in getattr(key, "aliases", {}) if alias.startswith("alias/aws/")]
        if managed:
            return aws_managed_key_policy(account, managed[0].split("/")[2], region)
        return _document(key.policy) if key is not None else None
    if service == "sns":
        from moto.sns.models import sns_backends

        topic = sns_backends[account][region].topics.get(arn)
        return _document(topic.policy) if topic is not None else None
    if service == "iam" and rest.startswith("role/") and action.startswith("sts:AssumeRole"):
        role = next((r for r in _iam(account).roles.values() if r.arn == arn), None)
        return _document(role.assume_role_policy_document) if role is not None else None
    if service == "ecr" and account != "123456789012":
        return PUBLIC_IMAGE_POLICY
    return None
