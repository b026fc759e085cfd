"""The least-privilege policy of whoever runs ``cdk deploy``, ``shadow-test`` and ``shadow-report`` for one stack,
generated from the requests the emulator recorded for them.

``make demo`` runs those commands as an emulated IAM user (``scripts.demo.OPERATOR``) whose only policy is
docs/operator-policy.json with the stack's names filled in (``fill``): the demo passing proves the policy suffices.
``generalize`` turns the user's recorded requests back into that template (physical names become ``${...}``
placeholders, object keys and execution names ``*``); tests/test_demo_lifecycle.py fails when the two differ, so
the policy is the recording: nothing in it unused, nothing missing.

    python -m shadow_emulator.authorization.operator_policy .demo/permissions.json > docs/operator-policy.json
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "docs" / "operator-policy.json"

#: What each statement is for (its Sid), by the actions it holds.
PURPOSES: dict[str, tuple[str, ...]] = {
    "CdkDeployThroughTheBootstrapRoles": ("sts:AssumeRole",),
    "ReadTheStack": ("cloudformation:DescribeStacks", "cloudformation:GetTemplate", "cloudformation:ListStackResources"),
    "FollowTheWorkflow": ("states:ListExecutions", "states:StartExecution", "states:DescribeExecution",
                          "states:GetExecutionHistory"),
    "ReadTheEndpoint": ("sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"),
    "ReadTheVerdictReport": ("s3:GetObject", "kms:Decrypt"),
    "ReadTheCapture": ("s3:ListBucket", "s3:GetObject", "kms:Decrypt"),
}

#: Requests the demo does not make but the policy's users do, each with why (added to the generated template).
NOT_IN_THE_DEMO: dict[tuple[str, str], str] = {
    ("states:StartExecution", "arn:aws:states:${Region}:${Account}:stateMachine:${StateMachineName}"):
        "shadow-test run starts an execution when none is running (the demo's follows the self-ending one)",
}


def generalize(requests: list[tuple[str, str]], values: dict[str, str]) -> dict[str, Any]:
    """The policy template for the operator's recorded (action, resource) requests, given the stack's ``values``
    (the placeholders' physical values: see ``fill``)."""
    resources: dict[str, set[str]] = {}
    for action, resource in requests:
        if action == "sts:GetCallerIdentity":
            continue  # needs no permission
        resources.setdefault(action, set()).add(_placeholders(action, resource, values))
    for action, resource in NOT_IN_THE_DEMO:
        resources.setdefault(action, set()).add(resource)
    statements = []
    for sid, actions in PURPOSES.items():
        grouped: dict[tuple[str, ...], list[str]] = {}
        for action in actions:
            mine = sorted(r for r in resources.get(action, ()) if _purpose(action, r) == sid)
            if mine:
                grouped.setdefault(tuple(mine), []).append(action)
        for number, (group_resources, group_actions) in enumerate(grouped.items(), start=1):
            statements.append({"Sid": sid if len(grouped) == 1 else f"{sid}{number}", "Effect": "Allow",
                               "Action": sorted(group_actions), "Resource": list(group_resources)})
    placed = {(a, r) for s in statements for a in s["Action"] for r in s["Resource"]}
    left = sorted((a, r) for a, rs in resources.items() for r in rs if (a, r) not in placed)
    if left:
        raise ValueError(f"requests no statement purpose covers (add them to PURPOSES): {left}")
    return {"Version": "2012-10-17", "Statement": statements}


def _purpose(action: str, resource: str) -> str:
    if action in ("s3:GetObject", "kms:Decrypt"):
        return "ReadTheVerdictReport" if "${Reports" in resource else "ReadTheCapture"
    return next(sid for sid, actions in PURPOSES.items() if action in actions)


def _placeholders(action: str, resource: str, values: dict[str, str]) -> str:
    """A recorded resource as the template writes it."""
    for name in ("CaptureKeyArn", "ReportsKeyArn"):
        if resource == values[name]:
            return "${" + name + "}"
    account, region = values["Account"], values["Region"]
    resource = resource.replace(f":{region}:{account}:", ":${Region}:${Account}:").replace(
        f"-{account}-{region}", "-${Account}-${Region}").replace(f"::{account}:", "::${Account}:")
    bucket, prefix = values["CaptureBucket"], values["CapturePrefix"].strip("/")
    if resource.startswith(f"arn:aws:s3:::{bucket}/"):
        return f"arn:aws:s3:::${{CaptureBucket}}/{'${CapturePrefix}/' if prefix else ''}*"
    if resource == f"arn:aws:s3:::{bucket}":
        return "arn:aws:s3:::${CaptureBucket}"
    if resource.startswith(f"arn:aws:s3:::{values['ReportsBucket']}/"):
        return "arn:aws:s3:::${ReportsBucket}/shadow-tests/*"
    machine = values["StateMachineName"]
    resource = resource.replace(f":stateMachine:{machine}", ":stateMachine:${StateMachineName}")
    resource = re.sub(rf":execution:{re.escape(machine)}:.*$", ":execution:${StateMachineName}:*", resource)
    resource = re.sub(r":stack/" + re.escape(values["StackName"]) + "/.*$", ":stack/${StackName}/*", resource)
    resource = resource.replace(f":endpoint/{values['EndpointName']}", ":endpoint/${EndpointName}")
    return re.sub(r":endpoint-config/.*$", ":endpoint-config/*", resource)


def fill(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The template with the stack's names: ``Account``, ``Region``, ``StackName``, ``StateMachineName``,
    ``EndpointName``, ``CaptureBucket``, ``CapturePrefix``, ``CaptureKeyArn``, ``ReportsBucket``, ``ReportsKeyArn``.
    A statement only for placeholders given as "" (no capture: no capture statements) is left out."""
    template = {**template, "Statement": [s for s in template["Statement"] if not any(
        values.get(name) == "" for name in re.findall(r"\$\{(\w+)\}", json.dumps(s)) if name != "CapturePrefix")]}
    text = json.dumps(template)
    if not values.get("CapturePrefix"):
        text = text.replace("${CapturePrefix}/", "")
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    missing = sorted(set(re.findall(r"\$\{(\w+)\}", text)))
    if missing:
        raise ValueError(f"no value for {', '.join(missing)}")
    return json.loads(text)


def load() -> dict[str, Any]:
    return json.loads(TEMPLATE_PATH.read_text())


def main(argv: list[str] | None = None) -> int:
    """Print the template generated from a demo's permissions.json (its ``operator`` requests and values)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m shadow_emulator.authorization.operator_policy PERMISSIONS_JSON", file=sys.stderr)
        return 2
    recorded = json.loads(Path(args[0]).read_text())["operator"]
    policy = generalize([tuple(r) for r in recorded["requests"]], recorded["values"])
    print(json.dumps(policy, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
