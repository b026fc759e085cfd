"""Small CloudFormation templates for the ``shadow-test`` CLI's tests, shaped like shadow-constructs' own.

A promotion workflow is a state machine of Choice/Wait/Pass/Fail states whose output follows the
workflow's contract (``decision``, ``score``, ``report``, ``outcome``, ``action``) and that waits in
``WaitForTestEnd`` when started with ``{"test_end": ...}``; the endpoint, its config and two models
are what ``ShadowEndpoint`` renders. Every resource carries the ``"shadow-constructs"`` mark.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

ROLE_ARN = "arn:aws:iam::123456789012:role/shadow-test"
#: The trust policy of ROLE_ARN: the emulator authorizes as AWS does, so Step Functions and SageMaker must be allowed
#: to assume the role their resources name.
ROLE_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": ["states.amazonaws.com", "sagemaker.amazonaws.com"]},
     "Action": "sts:AssumeRole"}]}
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
REPORTS_BUCKET = "shadow-test-reports"


def verdict(decision: str, action: str | None, report: str, score: float = 91.5) -> dict[str, Any]:
    output = {"decision": decision, "score": score, "report": report, "outcome": f"{decision.lower()} ({action})"}
    if action is not None:
        output["action"] = action
    return output


def workflow(output: dict[str, Any] | None = None, *, fail: tuple[str, str] | None = None,
             timeout_seconds: int | None = None, marked: bool = True, endpoint_path: str = "Stack/Churn",
             undecided: str = "remove_shadow") -> dict:
    """An AWS::StepFunctions::StateMachine: [WaitForTestEnd] -> Setup -> Judge (Pass with ``output``, or Fail)."""
    judge: dict[str, Any] = ({"Type": "Fail", "Error": fail[0], "Cause": fail[1]} if fail
                             else {"Type": "Pass", "Result": output, "End": True})
    states: dict[str, Any] = {
        "WaitForTestEnd?": {"Type": "Choice", "Default": "Setup",
                            "Choices": [{"Variable": "$.test_end", "IsPresent": True, "Next": "WaitForTestEnd"}]},
        "WaitForTestEnd": {"Type": "Wait", "TimestampPath": "$.test_end", "Next": "Setup"},
        "Setup": {"Type": "Pass", "Next": "Slow" if timeout_seconds else "Judge"},
        "Judge": judge,
    }
    if timeout_seconds:
        states["Slow"] = {"Type": "Wait", "Seconds": 30, "Next": "Judge"}
    definition: dict[str, Any] = {"StartAt": "WaitForTestEnd?", "States": states}
    if timeout_seconds:
        definition["TimeoutSeconds"] = timeout_seconds
    resource: dict[str, Any] = {"Type": "AWS::StepFunctions::StateMachine",
                                "Properties": {"DefinitionString": json.dumps(definition), "RoleArn": ROLE_ARN}}
    if marked:
        resource["Metadata"] = {"shadow-constructs": {"role": "promotion-workflow", "endpoint": endpoint_path,
                                                      "undecided": undecided},
                                "aws:cdk:path": "Stack/Promotion/StateMachine/Resource"}
    return resource


def model(archive: str, tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"ExecutionRoleArn": ROLE_ARN,
                                  "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": archive, "Mode": "SingleModel"}}
    if tags:
        properties["Tags"] = tags
    return {"Type": "AWS::SageMaker::Model", "Properties": properties}


def variant(name: str, model_logical: str | None, count: int, weight: float, model_name: str | None = None) -> dict:
    return {"VariantName": name, "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": count,
            "InitialVariantWeight": weight,
            "ModelName": model_name if model_name is not None else {"Fn::GetAtt": [model_logical, "ModelName"]}}


def endpoint_resources(*, phase: str = "SHADOW", endpoint_name: str | None = None,
                       production_model: str = "V1", production_model_name: str | None = None,
                       v2_archive: str = "s3://models/churn/v2/model.tar.gz", v2_tags: list | None = None,
                       with_v1: bool = True) -> dict[str, Any]:
    """Models V1 and V2, the endpoint config and the endpoint of a ShadowEndpoint in ``phase``.

    SHADOW: production = ``production_model`` (V1), shadow = V2; PROMOTED: V2 alone in production.
    """
    resources: dict[str, Any] = {"V2": model(v2_archive, v2_tags)}
    if with_v1:
        resources["V1"] = model("s3://models/churn/v1/model.tar.gz")
    shadow = phase == "SHADOW"
    production = variant("production", production_model if shadow else "V2", 2, 1.0, production_model_name)
    config: dict[str, Any] = {"ProductionVariants": [production]}
    if shadow:
        config["ShadowProductionVariants"] = [variant("shadow", "V2", 1, 0.5)]
    resources["EndpointConfig"] = {"Type": "AWS::SageMaker::EndpointConfig", "Properties": config}
    properties: dict[str, Any] = {"EndpointConfigName": {"Fn::GetAtt": ["EndpointConfig", "EndpointConfigName"]}}
    if endpoint_name:
        properties["EndpointName"] = endpoint_name
    resources["Endpoint"] = {
        "Type": "AWS::SageMaker::Endpoint", "Properties": properties,
        "Metadata": {"shadow-constructs": {"role": "endpoint", "phase": phase, "production_variant": "production",
                                           "shadow_variant": "shadow" if shadow else None},
                     "aws:cdk:path": "Stack/Churn/Endpoint"}}
    return resources


def template(resources: dict[str, Any]) -> dict[str, Any]:
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": copy.deepcopy(resources)}


def write_assembly(folder: Path, stacks: dict[str, dict[str, Any]], *, stage: str | None = None) -> Path:
    """A minimal cloud assembly: manifest.json and one template per stack (in a nested stage assembly if asked)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"assembly-{stage}" if stage else folder
    target.mkdir(parents=True, exist_ok=True)
    artifacts: dict[str, Any] = {}
    for name, body in stacks.items():
        artifact_id = f"{stage}{name}" if stage else name
        (target / f"{artifact_id}.template.json").write_text(json.dumps(body, indent=1))
        artifacts[artifact_id] = {
            "type": "aws:cloudformation:stack", "environment": "aws://unknown-account/unknown-region",
            "properties": {"templateFile": f"{artifact_id}.template.json", "stackName": name},
            "displayName": f"{stage}/{name}" if stage else name}
    (target / "manifest.json").write_text(json.dumps({"version": "48.0.0", "artifacts": artifacts}))
    if stage:
        (folder / "manifest.json").write_text(json.dumps({"version": "48.0.0", "artifacts": {
            f"assembly-{stage}": {"type": "cdk:cloud-assembly",
                                  "properties": {"directoryName": f"assembly-{stage}", "displayName": stage}}}}))
    return folder
