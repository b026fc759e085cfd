"""Least privilege, measured: what each role was granted, what its sessions used, and what they never used.

A grant is one (policy, action, resource) of an Allow statement of the role's identity policies (inline and
managed), as the emulated IAM holds them now. A request the enforcer allowed (``Authorizer.usage``) uses every
grant whose action and resource patterns match it (IAM's ``*`` and ``?`` wildcards; actions case-insensitive). A
request no grant matches was allowed by the resource's own policy alone (a key policy, a bucket policy).

``report`` answers for the roles asked about; the emulator serves it at ``POST /_shadow_emulator/permissions``
(body ``{"roles": [role ARNs]}``). Grants are read while the roles exist and remembered (``ledger``): ask once
while they exist (before the deploy that deletes them) and again at the end, for every request made meanwhile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import policies
from .principals import Principal


@dataclass(frozen=True)
class Grant:
    policy: str
    action: str
    resource: str

    def allows(self, action: str, resource: str) -> bool:
        return _pattern(self.action.lower()).fullmatch(action.lower()) is not None and \
            (self.resource == "*" or _pattern(self.resource).fullmatch(resource) is not None)


@lru_cache(maxsize=1024)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text), re.DOTALL)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


def grants(role_arn: str) -> list[Grant]:
    """The role's Allow grants, one per policy, action and resource (NotAction / NotResource statements are kept
    as the text AWS would match them against: ``NotAction:...`` never counts as used, so it is always reported)."""
    account, name = role_arn.split(":")[4], role_arn.split("/")[-1]
    found = []
    for entry in policies.identity_policies(Principal(role_arn, "role", name, account)):
        statements = entry["policy"].get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if statement.get("Effect") != "Allow":
                continue
            actions = _listed(statement.get("Action")) or [f"NotAction:{a}" for a in _listed(statement.get("NotAction"))]
            resources = _listed(statement.get("Resource")) or [f"NotResource:{r}" for r in _listed(statement.get("NotResource"))]
            found += [Grant(entry["name"], action, resource) for action in actions for resource in resources]
    return list(dict.fromkeys(found))


def report(role_arns: list[str], usage: dict[tuple[str, str, str], int],
           ledger: dict[str, list[Grant]] | None = None) -> dict[str, dict[str, Any]]:
    """Per role ARN: ``granted`` (every grant), ``used`` (each allowed request: action, resource, count and the
    grants it used), ``unused`` (grants no request used) and ``by_resource_policy`` (requests no grant covers).
    ``ledger`` (role ARN -> grants) adds the grants seen before and keeps those seen now."""
    answer = {}
    ledger = {} if ledger is None else ledger
    for role_arn in role_arns:
        granted = ledger[role_arn] = list(dict.fromkeys([*ledger.get(role_arn, []), *grants(role_arn)]))
        requests = sorted((action, resource, count) for (who, action, resource), count in usage.items() if who == role_arn)
        used, by_resource_policy, matched = [], [], set()
        for action, resource, count in requests:
            covering = [grant for grant in granted if grant.allows(action, resource)]
            matched.update(covering)
            entry = {"action": action, "resource": resource, "count": count}
            if covering:
                used.append({**entry, "grants": [_dict(grant) for grant in covering]})
            else:
                by_resource_policy.append(entry)
        answer[role_arn] = {"granted": [_dict(g) for g in granted], "used": used,
                            "unused": [_dict(g) for g in granted if g not in matched],
                            "by_resource_policy": by_resource_policy}
    return answer


def _dict(grant: Grant) -> dict[str, str]:
    return {"policy": grant.policy, "action": grant.action, "resource": grant.resource}




#: Grants the demo's lifecycles (healthy and regressed, both run by tests/test_demo_lifecycle.py) never use, by the
#: role's construct id and the action, each with why it stays. A grant unused in both runs and not listed here fails
#: that test, and so does a listed one that is used: remove the grant, or say here in one line why it stays.
JUSTIFIED_UNUSED: dict[tuple[str, str], str] = {
    ("ProductionModelExecutionRole", "logs:DescribeLogStreams"): "SageMaker's execution-role policy for hosting lists it "
    "with the container-log actions (sagemaker-roles.html, CreateModel API); the emulator does not model when it reads.",
    ("ProductionModelExecutionRole", "ecr:BatchCheckLayerAvailability"): "Listed by the same page for pulling the "
    "serving image; the emulator pulls with BatchGetImage and GetDownloadUrlForLayer only.",
    ("ProductionModelExecutionRole", "s3:AbortMultipartUpload"): "A capture file uploaded in parts is aborted when its "
    "upload fails, so no parts are left billing; no upload fails in the demo.",
    ("ProductionModelExecutionRole", "kms:Encrypt"): "SageMaker asks the execution role for kms:Encrypt on a KmsKeyId it "
    "writes S3 output with (API reference, e.g. ProductionVariantCoreDumpConfig); S3's SSE-KMS itself used GenerateDataKey.",
    ("ShadowModelExecutionRole", "logs:DescribeLogStreams"): "As for production's model role.",
    ("ShadowModelExecutionRole", "ecr:BatchCheckLayerAvailability"): "As for production's model role.",
    ("ShadowModelExecutionRole", "s3:AbortMultipartUpload"): "As for production's model role.",
    ("ShadowModelExecutionRole", "kms:Encrypt"): "As for production's model role.",
    ("PromotionFollowTestEndRole", "logs:CreateLogStream"): "The function runs only for a followed run (a pipeline's "
    "ShadowVerdictStep starts {\"follow\": true}: tests/test_pipelines.py runs one under the step's role); the demo's "
    "runs are the self-ending execution itself.",
    ("PromotionFollowTestEndRole", "logs:PutLogEvents"): "As above: a followed run only.",
    ("PromotionFollowTestEndRole", "states:ListExecutions"): "As above: it finds the self-ending execution to wait for.",
    ("PromotionFollowTestEndRole", "states:DescribeExecution"): "As above: it reads that execution's state.",
    ("PromotionStateMachineRole", "lambda:InvokeFunction"): "CDK's LambdaInvoke grants each function's versions too "
    "(ARN:*), and FollowTestEnd runs only for a followed run; the workflow invokes the unqualified functions.",
    ("PromotionStateMachineRole", "logs:CreateLogDelivery"): "Step Functions delivers the execution log to CloudWatch "
    "Logs with these (no resource type: step-functions/latest/dg/cw-logs.html); the emulator keeps no execution log.",
    ("PromotionStateMachineRole", "logs:DeleteLogDelivery"): "As logs:CreateLogDelivery.",
    ("PromotionStateMachineRole", "logs:DescribeLogGroups"): "As logs:CreateLogDelivery.",
    ("PromotionStateMachineRole", "logs:DescribeResourcePolicies"): "As logs:CreateLogDelivery.",
    ("PromotionStateMachineRole", "logs:GetLogDelivery"): "As logs:CreateLogDelivery.",
    ("PromotionStateMachineRole", "logs:ListLogDeliveries"): "As logs:CreateLogDelivery.",
    ("PromotionStateMachineRole", "logs:PutResourcePolicy"): "As logs:CreateLogDelivery.",
    ("PromotionStateMachineRole", "logs:UpdateLogDelivery"): "As logs:CreateLogDelivery.",
    ("PromotionStateMachineRole", "xray:GetSamplingRules"): "Tracing is on: Step Functions sends the execution's trace "
    "to X-Ray as the role (no resource type: concepts-xray-tracing.html); the emulator does not trace.",
    ("PromotionStateMachineRole", "xray:GetSamplingTargets"): "As xray:GetSamplingRules.",
    ("PromotionStateMachineRole", "xray:PutTelemetryRecords"): "As xray:GetSamplingRules.",
    ("PromotionStateMachineRole", "xray:PutTraceSegments"): "As xray:GetSamplingRules.",
    ("PromotionMeasureAgreementRole", "athena:StopQueryExecution"): "Stops a query that runs past the step's timeout; "
    "the demo's queries finish.",
    ("PromotionMeasureAgreementRole", "s3:ListBucket"): "On the results bucket: Athena's documented rights for a results "
    "location (athena/latest/ug/security-iam-athena.html); the emulator's Athena lists the capture bucket only.",
    ("PromotionMeasureAgreementRole", "s3:AbortMultipartUpload"): "Athena aborts a results upload that fails; none does.",
    ("PromotionPrepareUpdateRole", "application-autoscaling:DeleteScalingPolicy"): "Used when production autoscales "
    "and the update retypes or removes its variant (tests/test_combinations.py); the demo's production does not. No "
    "resource: the scalable target's ARN (scalable-target/ID) is made by AWS when it is registered.",
    ("PromotionPrepareUpdateRole", "application-autoscaling:DeregisterScalableTarget"): "As DeleteScalingPolicy.",
    ("PromotionPrepareUpdateRole", "application-autoscaling:DescribeScalingPolicies"): "As DeleteScalingPolicy.",
    ("PromotionRestoreAutoscalingRole", "application-autoscaling:PutScalingPolicy"): "The step registers production's "
    "autoscaling again after such an update (tests/test_combinations.py); it makes no call when there was none.",
    ("PromotionRestoreAutoscalingRole", "application-autoscaling:RegisterScalableTarget"): "As PutScalingPolicy.",
    ("PromotionRestoreAutoscalingRole", "sagemaker:DescribeEndpoint"): "As above: registering a target reads the endpoint.",
    ("PromotionRestoreAutoscalingRole", "sagemaker:UpdateEndpointWeightsAndCapacities"): "As above: Application Auto "
    "Scaling changes the variant's instance count as the registering principal.",
    ("PromotionRestoreAutoscalingRole", "iam:CreateServiceLinkedRole"): "As above: the first registration in an account "
    "creates Application Auto Scaling's service-linked role for SageMaker (scoped to that role).",
    ("PromotionTestEndRole", "states:GetExecutionHistory"): "Cancels the self-ending execution if it still waits when the "
    "stack is deleted or leaves SHADOW (tests/test_test_end.py); the demo's had already decided.",
    ("PromotionTestEndRole", "states:StopExecution"): "As states:GetExecutionHistory.",
}


_AS_IN_THE_EXAMPLE = "As for the example stack's role of that name (above)."
_NOT_STARTED = ("A managed test's workflow judges when started (by hand, or by a pipeline's verdict step, which follows "
                "with this function); tests/test_managed_lifecycle.py starts it plainly.")

#: The same for the managed test's stack (ChurnManagedShadowTest), run by tests/test_managed_lifecycle.py.
JUSTIFIED_UNUSED_MANAGED: dict[tuple[str, str], str] = {
    **{("PromotionFollowTestEndRole", action): _NOT_STARTED for action in (
        "logs:CreateLogStream", "logs:PutLogEvents", "states:DescribeExecution", "states:ListExecutions")},
    **{("PromotionPlanLookRole", action): "Interim looks run for a test given a start and an end; the managed "
       "lifecycle judges once." for action in ("logs:CreateLogStream", "logs:PutLogEvents")},
    **{("PromotionStateMachineRole", action): _AS_IN_THE_EXAMPLE for action in (
        "lambda:InvokeFunction", "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
        "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
        "logs:UpdateLogDelivery", "xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords",
        "xray:PutTraceSegments")},
    ("ShadowModelExecutionRole", "ecr:BatchCheckLayerAvailability"): _AS_IN_THE_EXAMPLE,
    ("ShadowModelExecutionRole", "logs:DescribeLogStreams"): _AS_IN_THE_EXAMPLE,
    ("TestRole", "ecr:BatchCheckLayerAvailability"): "As for the model roles: the experiment's role pulls the image.",
    ("TestRole", "kms:Encrypt"): "As for the model roles: the experiment's role writes its capture with the capture key.",
    ("TestRole", "s3:AbortMultipartUpload"): "As for the model roles: a failed multipart capture upload is aborted.",
    **{("TestRole", action): "CreateInferenceExperiment's RoleArn lets SageMaker \"manage SageMaker Inference "
       "endpoints for model deployment\" with it; which calls it makes is not documented, so the emulator makes "
       "none: the grant keeps to that scope (this endpoint, endpoint configs, the test's two models)." for action in (
        "sagemaker:CreateEndpointConfig", "sagemaker:DeleteEndpointConfig", "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel", "sagemaker:UpdateEndpoint")},
}


def construct_id(logical_id: str) -> str:
    """A role's logical id without CDK's hash suffix: ``PromotionJudgeRoleD41B5476`` -> ``PromotionJudgeRole``."""
    return re.sub(r"[0-9A-F]{8}$", "", logical_id)


def unused_in_every_run(runs: list[dict[str, dict[str, Any]]]) -> set[tuple[str, str]]:
    """(construct id, action) of each grant no run used. ``runs`` are reports by logical id (``Demo`` keeps one) of
    the same app: a grant is known across runs by its role and its place in the role's grants (physical names differ
    from run to run)."""
    def unused(run: dict[str, dict[str, Any]]) -> set[tuple[str, int, str]]:
        found = set()
        for logical, answer in run.items():
            left = [(g["policy"], g["action"], g["resource"]) for g in answer["unused"]]
            for index, grant in enumerate(answer["granted"]):
                if (grant["policy"], grant["action"], grant["resource"]) in left:
                    found.add((construct_id(logical), index, grant["action"]))
        return found

    common = set.intersection(*(unused(run) for run in runs)) if runs else set()
    return {(role, action) for role, _, action in common}


def render_justifications() -> str:
    """The tables docs/permissions.md shows."""
    lines = []
    for stack, table in (("the example stack (the demo's lifecycles)", JUSTIFIED_UNUSED),
                         ("the managed test's stack (its lifecycle test)", JUSTIFIED_UNUSED_MANAGED)):
        lines += ["", f"| role of {stack} | action never used | why it stays |", "|---|---|---|"]
        lines += [f"| {role} | `{action}` | {why} |" for (role, action), why in table.items()]
    return "\n".join(lines[1:]) + "\n"


__all__ = ["JUSTIFIED_UNUSED", "JUSTIFIED_UNUSED_MANAGED", "Grant", "construct_id", "grants", "render_justifications", "report",
           "unused_in_every_run"]
