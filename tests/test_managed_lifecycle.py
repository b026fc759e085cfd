"""The example app's second stack, ``ChurnManagedShadowTest``, deployed and run on the emulator with authorization on.

A managed shadow test (a SageMaker inference experiment, ShadowMode) runs on an endpoint that exists already: the demo
app's ROLLED_BACK phase deploys endpoint ``churn-shadow-test`` with production (v1) alone; the managed stack,
synthesized against it (its production model has a name CloudFormation generated, so it is read after that deploy),
adds the experiment (a candidate shadowing v1, captured to the test's own store) and ``PromotionWorkflow(managed_test=)``.
Traffic goes through InvokeEndpoint: production answers every request, the experiment's shadow gets its share, and both
are captured to the experiment's destination. ``shadow-test run`` starts the workflow, which judges and ends the
experiment with StopInferenceExperiment. Every request of every principal is authorized as AWS would, and SageMaker acts
as the experiment's role when it deploys the shadow and writes the capture: nothing may be refused.

The candidate is the regressed one (``models/churn-v2-regressed``, the demo's REJECT scenario): the managed stack judges
with the default criteria (``ManagedTestConfig`` has no criteria setting), under which the healthy candidate stays
INCONCLUSIVE on a few minutes of the emulator's traffic and the workflow would wait an hour for more; the regressed one
is REJECTed at once and the workflow ends the experiment (retain production, remove the shadow).
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from conftest import ROOT, SAGEMAKER_ROLE, create_churn_endpoint
from demo_assembly import VERDICT_MINUTES, VERDICT_REQUESTS, synthesize
from moto import mock_aws

from app import build_app
from scripts.demo import ACCOUNT, REGION, STACK, Console, Demo
from shadow_emulator import SageMakerDouble
from shadow_emulator.authorization.least_privilege import JUSTIFIED_UNUSED_MANAGED, unused_in_every_run
from shadow_emulator.ports import free_port

pytestmark = pytest.mark.outer  # the outer loop (make test-fast skips it): the CDK CLI and the emulator server, a whole lifecycle

MANAGED = "ChurnManagedShadowTest"
ENDPOINT = "churn-shadow-test"
REQUESTS, MINUTES, SAMPLING = VERDICT_REQUESTS, VERDICT_MINUTES, 0.5  # demo_assembly: enough to judge the p99s
AFTER = 20  # requests after the workflow: production still answers


def synthesize_managed(outdir: Path, managed: dict[str, Any]) -> Path:
    """The example app with its managed stack (context ``managed-test``), as ``cdk synth`` writes it: cdk.json's
    context, the ROLLED_BACK phase for the first stack, and what the CLI adds (as ``demo_assembly.synthesize``)."""
    context = {**json.loads((ROOT / "cdk.json").read_text())["context"],
               "shadow-test-config": "scenarios/healthy.json", "shadow-test": {"phase": "rolled_back"},
               "managed-test": managed, "aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True,
               "aws:cdk:version-reporting": False, "aws:cdk:bundling-stacks": ["**"]}
    build_app(cdk.App(outdir=str(outdir), context=context)).synth()
    return outdir


def send_traffic(demo: Demo, rows: list[str], sender: Any, count: int, first_minute: datetime | None = None) -> int:
    """``count`` requests through InvokeEndpoint, each minute's share stamped by the emulated clock as if sent in the
    MINUTES minutes from ``first_minute`` (None: now); how many production answered with a probability."""
    per_minute = math.ceil(count / MINUTES) if first_minute else count

    def invoke(index: int) -> bool:
        answer = sender.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Accept="text/csv",
                                        Body=rows[index % len(rows)].encode(), InferenceId=f"managed-{index:06d}")
        return 0.0 <= float(answer["Body"].read().decode()) <= 1.0

    answered = 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        for start in range(0, count, per_minute):
            if first_minute is not None:
                moment = first_minute + timedelta(minutes=start // per_minute, seconds=1)
                demo.emulator.control("POST", "clock", {"offset_seconds": (moment - datetime.now(UTC)).total_seconds()})
            answered += sum(pool.map(invoke, range(start, min(count, start + per_minute))))
    demo.emulator.control("POST", "clock", {"offset_seconds": 0})
    return answered


def captured_records(demo: Demo, destination: str) -> dict[str, int]:
    """Capture records under ``destination``, by variant (``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/``)."""
    bucket, _, prefix = destination[5:].partition("/")
    s3, records = demo.client("s3"), {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/{ENDPOINT}/"):
        for item in page.get("Contents", []):
            variant = item["Key"][len(prefix) + len(ENDPOINT) + 2:].split("/", 1)[0]
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            records[variant] = records.get(variant, 0) + body.count(b"\n")
    return records


def deploy_the_endpoint_then_the_managed_test(demo: Demo, workdir: Path) -> dict[str, Any]:
    """The ROLLED_BACK phase of the demo app (production alone on ENDPOINT), then the managed stack synthesized against
    it; the production variant it found."""
    rolled_back = synthesize("healthy", workdir / "cdk.out.rolled_back", phase="rolled_back")
    demo.cdk("bootstrap", f"aws://{ACCOUNT}/{REGION}", what="bootstrap the emulated account", app=False)
    demo.cdk("deploy", STACK, "--require-approval", "never", "--method=direct", assembly=rolled_back,
             what=f"deploy the ROLLED_BACK phase of {STACK}")
    sagemaker = demo.client("sagemaker")
    config = sagemaker.describe_endpoint_config(
        EndpointConfigName=sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"])
    assert len(config["ProductionVariants"]) == 1 and not config.get("ShadowProductionVariants"), config
    production = config["ProductionVariants"][0]
    # ManagedTestConfig's production fields must be the endpoint's: its model's name is the one CloudFormation made.
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=MINUTES + 1)
    managed = synthesize_managed(workdir / "cdk.out.managed", {
        "endpoint_name": ENDPOINT, "production_variant_name": production["VariantName"],
        "production_model_name": production["ModelName"], "production_instance_type": production["InstanceType"],
        "production_instance_count": production["InitialInstanceCount"],
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "duration_hours": 1,
        "shadow_model_artifact": "models/churn-v2-regressed/model.tar.gz"})
    demo.cdk("deploy", MANAGED, "--require-approval", "never", "--method=direct", assembly=managed,
             what=f"deploy {MANAGED}")
    return production


def test_the_managed_test_runs_on_the_existing_endpoint_and_ends_with_nothing_refused(tmp_path):
    # operator=False: docs/operator-policy.json is the CLI's least-privilege policy for the FIRST stack (Demo.deploy fills
    # it with ChurnShadowTest's state machine, endpoint and buckets), not for this one: here the CLI runs as the
    # administrator, and the roles under test are the managed stack's (the experiment's, the workflow's, the models').
    demo = Demo("healthy", requests=REQUESTS, minutes=MINUTES, port=free_port(), workdir=tmp_path,
                console=Console(quiet=True), operator=False)
    try:
        demo.emulator.check_port()
        demo.start_emulator()
        rows, sender = demo.prepare_traffic()
        production = deploy_the_endpoint_then_the_managed_test(demo, tmp_path)
        sagemaker, cloudformation = demo.client("sagemaker"), demo.client("cloudformation")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in cloudformation.describe_stacks(
            StackName=MANAGED)["Stacks"][0].get("Outputs", [])}
        roles = {r["LogicalResourceId"]: f"arn:aws:iam::{ACCOUNT}:role/{r['PhysicalResourceId']}"
                 for r in cloudformation.list_stack_resources(StackName=MANAGED)["StackResourceSummaries"]
                 if r["ResourceType"] == "AWS::IAM::Role"}

        # CloudFormation made the experiment: running on the existing endpoint, its shadow deployed as its role.
        experiment = sagemaker.describe_inference_experiment(Name=outputs["ExperimentName"])
        assert experiment["Status"] == "Running", experiment.get("StatusReason")
        assert experiment["Arn"] == experiment["Arn"].lower()  # SageMaker's ARNs: what Fn::GetAtt Arn grants on
        assert experiment["EndpointMetadata"]["EndpointName"] == ENDPOINT
        shadow = next(v for v in experiment["ModelVariants"] if v["VariantName"] != production["VariantName"])
        assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["ShadowProductionVariants"][0]["VariantName"] == \
            shadow["VariantName"]

        # Traffic: production answers all, the shadow gets its share, both captured to the experiment's destination.
        answered = send_traffic(demo, rows, sender, REQUESTS, datetime.now(UTC) - timedelta(minutes=MINUTES + 1))
        demo.emulator.control("POST", "flush")
        served = {variant: numbers.get("invocations", 0) for variant, numbers in
                  demo.emulator.control("GET", "counts")["counts"].get(ENDPOINT, {}).items()}
        assert answered == REQUESTS and served[production["VariantName"]] == REQUESTS
        assert abs(served[shadow["VariantName"]] - REQUESTS * SAMPLING) < 4.5 * math.sqrt(REQUESTS * SAMPLING / 2)
        destination = experiment["DataStorageConfig"]["Destination"]
        assert captured_records(demo, destination) == {production["VariantName"]: REQUESTS,
                                                       shadow["VariantName"]: served[shadow["VariantName"]]}

        # The workflow judges (REJECT: the regressed candidate) and ends the experiment: production stays, serving.
        code, output = demo.shadow_test("run", "--stack", MANAGED, "--poll", "0.2", "--verbose")
        sfn = demo.client("stepfunctions")
        execution = sfn.describe_execution(executionArn=sfn.list_executions(
            stateMachineArn=outputs["PromotionStateMachine"])["executions"][0]["executionArn"])
        assert execution["status"] == "SUCCEEDED", output
        result = json.loads(execution["output"])
        assert (code, result["decision"], result["action"]) == (3, "REJECT", "shadow_removed"), output
        assert "-> RemoveShadowStopExperiment" in output
        ended = sagemaker.describe_inference_experiment(Name=outputs["ExperimentName"])
        assert ended["Status"] == "Completed" and ended["StatusReason"].startswith("REJECT")
        endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        assert endpoint["EndpointStatus"] == "InService" and "ShadowProductionVariants" not in endpoint
        after = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        assert after["ProductionVariants"] == [production]  # same model, instances and weight
        assert send_traffic(demo, rows, sender, AFTER) == AFTER
        assert demo.emulator.control("GET", "counts")["counts"][ENDPOINT][shadow["VariantName"]]["invocations"] == \
            served[shadow["VariantName"]]  # the shadow is gone

        # Nothing was refused; SageMaker deployed the shadow and wrote the capture as the experiment's role.
        recorded = demo.emulator.control("GET", "authorization")
        assert recorded["denials"] == []
        as_experiment = {u["action"] for u in recorded["usage"] if u["principal"] == experiment["RoleArn"]}
        assert {"ecr:GetAuthorizationToken", "ecr:BatchGetImage", "s3:GetObject", "kms:CreateGrant", "kms:DescribeKey",
                "s3:PutObject", "kms:GenerateDataKey"} <= as_experiment, as_experiment
        state_machine_role = next(arn for logical, arn in roles.items() if logical.startswith("PromotionStateMachineRole"))
        assert any(u["principal"] == state_machine_role and u["action"] == "sagemaker:StopInferenceExperiment"
                   and u["resource"] == experiment["Arn"] for u in recorded["usage"])
        report = demo.emulator.control("POST", "permissions", {"roles": sorted(roles.values())})["roles"]
        (tmp_path / "permissions.json").write_text(json.dumps({"roles": report, "denials": recorded["denials"]}, indent=1))
        unused = unused_in_every_run([{logical: report[arn] for logical, arn in roles.items()}])
        assert sorted(unused - set(JUSTIFIED_UNUSED_MANAGED)) == [], "never used: remove or justify"
        assert sorted(set(JUSTIFIED_UNUSED_MANAGED) - unused) == [], "used now: remove its justification"

        the_enforcement_refuses_an_experiment_role_without_its_rights(demo, production, shadow)
    finally:
        demo.emulator.stop()


def the_enforcement_refuses_an_experiment_role_without_its_rights(demo: Demo, production: dict, shadow: dict) -> None:
    """The same deploy path, refused: a role SageMaker may assume but that may read nothing cancels the experiment
    (through the API); one SageMaker may not assume fails the stack's experiment (CREATE_FAILED, rolled back)."""
    iam, sagemaker = demo.client("iam"), demo.client("sagemaker")

    def role(name: str, service: str) -> str:
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    infra = {"InfrastructureType": "RealTimeInference",
             "RealTimeInferenceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}
    request = {"Type": "ShadowMode", "EndpointName": ENDPOINT,
               "ModelVariants": [{"ModelName": production["ModelName"], "VariantName": production["VariantName"],
                                  "InfrastructureConfig": infra},
                                 {"ModelName": shadow["ModelName"], "VariantName": "probe", "InfrastructureConfig": infra}],
               "ShadowModeConfig": {"SourceModelVariantName": production["VariantName"],
                                    "ShadowModelVariants": [{"ShadowModelVariantName": "probe", "SamplingPercentage": 10}]}}
    sagemaker.create_inference_experiment(Name="no-rights", RoleArn=role("no-rights", "sagemaker.amazonaws.com"),
                                          **request)
    cancelled = sagemaker.describe_inference_experiment(Name="no-rights")
    assert cancelled["Status"] == "Cancelled"
    assert "is not authorized to perform: ecr:GetAuthorizationToken" in cancelled["StatusReason"]
    assert "ShadowProductionVariants" not in sagemaker.describe_endpoint(EndpointName=ENDPOINT)

    template = {"Resources": {"Experiment": {"Type": "AWS::SageMaker::InferenceExperiment", "Properties": {
        "Name": "not-trusted", "RoleArn": role("not-trusted", "lambda.amazonaws.com"), **request}}}}
    cloudformation = demo.client("cloudformation")
    cloudformation.create_stack(StackName="NotTrusted", TemplateBody=json.dumps(template))
    stack = cloudformation.describe_stacks(StackName="NotTrusted")["Stacks"][0]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    failed = [e for e in cloudformation.describe_stack_events(StackName="NotTrusted")["StackEvents"]
              if e["ResourceStatus"] == "CREATE_FAILED"]
    assert [e["LogicalResourceId"] for e in failed] == ["Experiment"]
    assert "sagemaker.amazonaws.com is not authorized to perform: sts:AssumeRole" in failed[0]["ResourceStatusReason"]
    assert [e["Name"] for e in sagemaker.list_inference_experiments()["InferenceExperiments"]
            if e["Name"] == "not-trusted"] == []
    denied = {(d["action"], d["principal"].rsplit("/", 1)[-1]) for d in
              demo.emulator.control("GET", "authorization")["denials"]}
    assert denied == {("ecr:GetAuthorizationToken", "no-rights"), ("sts:AssumeRole", "sagemaker.amazonaws.com")}, denied


def experiment_template(desired_state: str = "Running", variants: tuple[str, ...] = ("AllTraffic", "shadow")) -> dict:
    """A stack with a managed shadow test on the endpoint ``churn`` (``create_churn_endpoint(shadow=False)``)."""
    infra = {"InfrastructureType": "RealTimeInference",
             "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}}
    models = {"AllTraffic": "churn-v1", "shadow": "churn-v2"}
    return {"Resources": {"Experiment": {"Type": "AWS::SageMaker::InferenceExperiment", "Properties": {
        "Name": "Managed-Test", "Type": "ShadowMode", "RoleArn": SAGEMAKER_ROLE, "EndpointName": "churn",
        "DesiredState": desired_state,
        "ModelVariants": [{"ModelName": models[v], "VariantName": v, "InfrastructureConfig": infra} for v in variants],
        "ShadowModeConfig": {"SourceModelVariantName": "AllTraffic", "ShadowModelVariants": [
            {"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}]},
        "Schedule": {"StartTime": "2026-12-01T09:00:00Z", "EndTime": "2026-12-01T10:00:00Z"}}}},
        "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Experiment", "Arn"]}}, "Name": {"Value": {"Ref": "Experiment"}},
                    "Status": {"Value": {"Fn::GetAtt": ["Experiment", "Status"]}}}}


def test_cloudformation_creates_stops_and_deletes_an_inference_experiment(monkeypatch):
    """moto's CloudFormation skipped AWS::SageMaker::InferenceExperiment; the SageMaker double makes it as
    CreateInferenceExperiment does, gives Ref and Fn::GetAtt, stops it when DesiredState becomes Completed (the shadow
    promoted when the template no longer lists production) and when the stack is deleted (production kept)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(), SageMakerDouble():
        sagemaker, cloudformation = boto3.client("sagemaker"), boto3.client("cloudformation")
        create_churn_endpoint(sagemaker, shadow=False)

        def outputs(stack: str) -> dict[str, str]:
            return {o["OutputKey"]: o["OutputValue"]
                    for o in cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}

        def production_model() -> str:
            config = sagemaker.describe_endpoint(EndpointName="churn")["EndpointConfigName"]
            return sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]

        cloudformation.create_stack(StackName="kept", TemplateBody=json.dumps(experiment_template()))
        assert outputs("kept") == {"Arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-experiment/managed-test",
                                   "Name": "Managed-Test", "Status": "Running"}
        described = sagemaker.describe_inference_experiment(Name="Managed-Test")
        assert described["Schedule"]["StartTime"] == datetime(2026, 12, 1, 9, tzinfo=UTC)
        assert sagemaker.describe_endpoint(EndpointName="churn")["ShadowProductionVariants"][0]["VariantName"] == "shadow"
        cloudformation.delete_stack(StackName="kept")  # stops it first: production retained, the shadow removed
        assert sagemaker.list_inference_experiments()["InferenceExperiments"] == []
        assert "ShadowProductionVariants" not in sagemaker.describe_endpoint(EndpointName="churn")
        assert production_model() == "churn-v1"

        cloudformation.create_stack(StackName="promoted", TemplateBody=json.dumps(experiment_template()))
        cloudformation.update_stack(StackName="promoted", TemplateBody=json.dumps(
            experiment_template("Completed", variants=("shadow",))))
        assert sagemaker.describe_inference_experiment(Name="Managed-Test")["Status"] == "Completed"
        assert production_model() == "churn-v2"
