"""ShadowVerdictStep in a real CDK pipeline: Shadow stage → verdict (CodePipeline's Step Functions invoke
action on the stage's PromotionWorkflow) → Promoted stage; least-privilege role, cdk-nag, bad inputs."""

from __future__ import annotations

import json
import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import pipelines
from conftest import ROOT, XGBOOST_URI, actions_of, nag_violations
from demo_assembly import VERDICT_MINUTES, VERDICT_REQUESTS, synthesize

from scripts.demo import ACCOUNT, REGION, Console, Demo
from shadow_constructs import (
    ConfigError,
    DeploymentGuardrails,
    PromotionWorkflow,
    ServingModel,
    ShadowEndpoint,
    Variant,
)
from shadow_constructs.pipelines import ShadowVerdictStep
from shadow_emulator.ports import free_port
from stacks import ShadowTestConfig, ShadowTestStack

CONNECTION = "arn:aws:codeconnections:us-east-1:123456789012:connection/abc"


class ShadowTestStage(cdk.Stage):
    """The example stack as a pipeline stage, in one phase."""

    def __init__(self, scope, construct_id: str, *, config: ShadowTestConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # One stack in two phases: both stages deploy stack ChurnShadowTest (one endpoint name, one endpoint).
        self.stack = ShadowTestStack(self, "ChurnShadowTest", config=config, stack_name="ChurnShadowTest")


@pytest.fixture(scope="module")
def synthesized():
    context = dict(json.loads((ROOT / "cdk.json").read_text())["context"], **{"aws:cdk:enable-path-metadata": True})
    app = cdk.App(outdir=tempfile.mkdtemp(prefix="cdkout-pipeline-"), context=context)
    pipeline_stack = cdk.Stack(app, "PipelineStack")  # environment-agnostic, like the Shadow stage's stack
    pipeline = pipelines.CodePipeline(pipeline_stack, "Pipeline", synth=pipelines.ShellStep(
        "Synth", input=pipelines.CodePipelineSource.connection("owner/repo", "main", connection_arn=CONNECTION),
        commands=["npm ci", "npx cdk synth"]))
    # A test a pipeline waits for ends within CodePipeline's 7 days for the action: here after one day.
    shadow = ShadowTestStage(app, "Shadow", config=ShadowTestConfig.from_dict({"test_duration_hours": 24}))
    step = ShadowVerdictStep("Verdict", stage=shadow)
    pipeline.add_stage(shadow, post=[step])
    pipeline.add_stage(ShadowTestStage(app, "Promoted", config=ShadowTestConfig.from_dict({"phase": "promoted"})))
    from cdk_nag import AwsSolutionsChecks

    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    violations = nag_violations(app)
    template = json.loads((Path(app.outdir) / "PipelineStack.template.json").read_text())
    shadow_template = json.loads(next((Path(app.outdir) / "assembly-Shadow").glob("*.template.json")).read_text())
    return {"app": app, "step": step, "shadow": shadow, "violations": violations, "template": template,
            "shadow_template": shadow_template}


def pipeline_stages(template: dict) -> list[dict]:
    pipeline, = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    return pipeline["Properties"]["Stages"]


def verdict_action(template: dict) -> dict:
    shadow, = [s for s in pipeline_stages(template) if s["Name"] == "Shadow"]
    action, = [a for a in shadow["Actions"] if a["Name"] == "Verdict"]
    return action


def arn(resource: str) -> dict:
    """An ARN in the pipeline stack's own partition, region and account (the Shadow stage has no environment)."""
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":states:", {"Ref": "AWS::Region"}, ":",
                              {"Ref": "AWS::AccountId"}, f":{resource}"]]}


def test_the_workflow_found_is_the_shadow_stages_own(synthesized):
    step, shadow = synthesized["step"], synthesized["shadow"]
    assert step.workflow is shadow.stack.workflow and step.stage is shadow
    machine, = [r for r in synthesized["shadow_template"]["Resources"].values()
                if r["Type"] == "AWS::StepFunctions::StateMachine"]
    assert machine["Properties"]["StateMachineName"] == step.state_machine_name  # what the ARN names is deployed


def test_stages_run_shadow_then_verdict_then_promoted(synthesized):
    stages = pipeline_stages(synthesized["template"])
    names = [s["Name"] for s in stages]
    assert names[:3] == ["Source", "Build", "UpdatePipeline"] and names[-2:] == ["Shadow", "Promoted"]
    shadow, promoted = stages[-2:]
    deploys = [a for a in shadow["Actions"] if a["ActionTypeId"]["Provider"] == "CloudFormation"]
    assert [a["Name"] for a in deploys] == ["ChurnShadowTest.Prepare", "ChurnShadowTest.Deploy"]
    assert verdict_action(synthesized["template"])["RunOrder"] > max(a["RunOrder"] for a in deploys)
    assert [a["ActionTypeId"]["Provider"] for a in promoted["Actions"]] == ["CloudFormation", "CloudFormation"]


def test_verdict_is_the_native_step_functions_invoke_action(synthesized):
    action = verdict_action(synthesized["template"])
    name = synthesized["step"].state_machine_name
    assert action["ActionTypeId"] == {"Category": "Invoke", "Owner": "AWS", "Provider": "StepFunctions", "Version": "1"}
    config = action["Configuration"]
    assert config["StateMachineArn"] == arn(f"stateMachine:{name}")
    assert config["InputType"] == "Literal"
    assert json.loads(config["Input"]) == PromotionWorkflow.PIPELINE_INPUT == {"follow": True, "fail_unless_promoted": True}
    assert "InputArtifacts" not in action and "OutputArtifacts" not in action


def test_verdict_role_may_only_run_that_state_machine(synthesized):
    template = synthesized["template"]
    role_id = verdict_action(template)["RoleArn"]["Fn::GetAtt"][0]
    name = synthesized["step"].state_machine_name
    statements = [s for p in template["Resources"].values() if p["Type"] == "AWS::IAM::Policy"
                  and {"Ref": role_id} in p["Properties"]["Roles"] for s in p["Properties"]["PolicyDocument"]["Statement"]]
    granted = {(action, json.dumps(s["Resource"], sort_keys=True)) for s in statements for action in actions_of(s)}
    assert granted == {
        ("states:StartExecution", json.dumps(arn(f"stateMachine:{name}"), sort_keys=True)),
        ("states:DescribeStateMachine", json.dumps(arn(f"stateMachine:{name}"), sort_keys=True)),
        ("states:DescribeExecution", json.dumps(arn(f"execution:{name}:*"), sort_keys=True)),
    }
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in statements)
    # Nothing else in the pipeline stack may touch Step Functions.
    others = [a for p in template["Resources"].values() if p["Type"] == "AWS::IAM::Policy"
              and {"Ref": role_id} not in p["Properties"]["Roles"]
              for s in p["Properties"]["PolicyDocument"]["Statement"] for a in actions_of(s)]
    assert others and not [a for a in others if a.startswith("states:") or a == "*"]


def test_cdk_nag_finds_nothing_of_the_step(synthesized):
    pipeline_findings = [v for v in synthesized["violations"] if " at PipelineStack/" in v]
    # CodePipeline's own findings are still reported (nag ran on the pipeline stack; nothing blanket-acknowledged)...
    assert any(v.startswith("AwsSolutions-IAM5") and " at PipelineStack/Pipeline/Pipeline/Role/" in v
               for v in pipeline_findings)
    # ...and none is the verdict step's: its action's role, the state machine, its executions.
    assert [v for v in pipeline_findings if re.search(r"/Shadow/Verdict|:states:|stateMachine|execution:", v)] == []


# Bad inputs (nothing synthesized)


def workflow_stack(scope, construct_id: str, duration: cdk.Duration = cdk.Duration.days(1), **kwargs) -> cdk.Stack:
    stack = cdk.Stack(scope, construct_id, **kwargs)
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    endpoint = ShadowEndpoint(stack, "Endpoint", endpoint_name=f"churn-{construct_id.lower()}",
                              production=Variant(model=v1), shadow=Variant(model=v2), sampling_percent=50,
                              deployment=DeploymentGuardrails())
    stack.workflow = PromotionWorkflow(stack, "Promotion", endpoint=endpoint, duration=duration)
    return stack


@pytest.fixture(scope="module")
def stages():
    app = cdk.App(outdir=tempfile.mkdtemp(prefix="cdkout-stages-"))
    empty = cdk.Stage(app, "Empty")
    cdk.Stack(empty, "Plain")
    twice = cdk.Stage(app, "Twice")
    first, second = workflow_stack(twice, "A"), workflow_stack(twice, "B")
    outer = cdk.Stage(app, "Outer")
    inner = cdk.Stage(outer, "Inner")
    nested = workflow_stack(inner, "Nested")
    elsewhere = cdk.Stage(app, "Elsewhere", env=cdk.Environment(account="210987654321", region="eu-west-1"))
    placed = workflow_stack(elsewhere, "Placed")
    week = cdk.Stage(app, "Week")
    workflow_stack(week, "Long", duration=cdk.Duration.days(7))
    return {"app": app, "empty": empty, "twice": twice, "first": first.workflow, "second": second.workflow,
            "outer": outer, "nested": nested.workflow, "week": week, "elsewhere": elsewhere, "placed": placed.workflow}


@pytest.mark.parametrize(("arguments", "message"), [
    (lambda s: {"stage": s["empty"]},
     r"ShadowVerdictStep 'Verdict': stage 'Empty' holds no PromotionWorkflow to run; found stacks \['Empty/Plain'\]"),
    (lambda s: {"stage": s["twice"]},
     r"ShadowVerdictStep 'Verdict': stage 'Twice' holds 2 PromotionWorkflows \['Twice/A/Promotion', "
     r"'Twice/B/Promotion'\]: give workflow= to choose one"),
    (lambda s: {"stage": s["empty"], "workflow": s["first"]},
     r"ShadowVerdictStep 'Verdict': workflow 'Twice/A/Promotion' is not inside stage 'Empty'; it is in stage 'Twice'"),
    (lambda s: {"stage": s["outer"]},
     r"ShadowVerdictStep 'Verdict': stage 'Outer' holds no PromotionWorkflow to run; found stacks none"),
    (lambda s: {"stage": s["outer"], "workflow": s["nested"]},
     r"workflow 'Outer/Inner/Nested/Promotion' is not inside stage 'Outer'; it is in stage 'Outer/Inner'"),
    (lambda s: {"stage": "Shadow"}, r"ShadowVerdictStep 'Verdict': stage must be an aws_cdk.Stage, got 'Shadow'"),
    (lambda s: {"stage": s["first"].node.scope}, r"stage must be an aws_cdk.Stage, got Stack"),
    (lambda s: {"stage": s["twice"], "workflow": "Promotion"}, r"workflow must be a PromotionWorkflow, got 'Promotion'"),
    (lambda s: {"stage": s["twice"], "workflow": s["first"].state_machine},
     r"workflow must be a PromotionWorkflow, got StateMachine"),
    (lambda s: {"stage": s["week"]},
     r"workflow 'Week/Long/Promotion' ends its test 7 days after the deploy, but CodePipeline waits at most 7 days "
     r"for a Step Functions action .*: give it duration=cdk.Duration.days\(6\) or less \(ShadowTest and PromotionWorkflow take it\)"),
], ids=["no-workflow", "several", "other-stage", "nested-stage-only", "nested-stage-given", "stage-str",
        "stage-stack", "workflow-str", "workflow-state-machine", "too-long"])
def test_bad_inputs_are_rejected(stages, arguments, message):
    with pytest.raises(ConfigError, match=message):
        ShadowVerdictStep("Verdict", **arguments(stages))


def test_workflow_chooses_among_several(stages):
    step = ShadowVerdictStep("Verdict", stage=stages["twice"], workflow=stages["second"])
    assert step.workflow is stages["second"]
    assert step.state_machine_name == stages["second"].state_machine_name != stages["first"].state_machine_name


def test_arn_uses_the_stage_stacks_environment_when_it_has_one(stages):
    step = ShadowVerdictStep("Verdict", stage=stages["elsewhere"])
    pipeline_stack = cdk.Stack(stages["app"], "Pipeline", env=cdk.Environment(account="123456789012",
                                                                                region="us-east-1"))
    assert pipeline_stack.resolve(step.state_machine_arn(pipeline_stack)) == {"Fn::Join": ["", [
        "arn:", {"Ref": "AWS::Partition"},
        f":states:eu-west-1:210987654321:stateMachine:{stages['placed'].state_machine_name}"]]}


def _resolved(value, values: dict[str, str]):
    """A template value with ``Ref`` AWS::Partition/Region/AccountId and ``Fn::Join`` resolved."""
    if isinstance(value, dict) and "Ref" in value:
        return values[value["Ref"]]
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolved(part, values) for part in parts)
    if isinstance(value, dict):
        return {key: _resolved(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item, values) for item in value]
    return value


@pytest.mark.outer  # the CDK CLI and the emulator server
def test_the_verdict_step_follows_the_test_under_its_own_role_on_the_emulator(synthesized, tmp_path):
    """The step's role, as the pipeline stack grants it, runs the step's calls against the demo's deployed workflow in
    the emulator with authorization on: DescribeStateMachine, StartExecution with the pipeline input (the execution
    follows the test's self-ending one through the workflow's FollowTestEnd function), DescribeExecution until it ends.
    It ends SUCCEEDED (promoted) and nothing anyone asked was refused."""
    template, pipeline_machine = synthesized["template"], synthesized["step"].state_machine_name
    role_id = verdict_action(template)["RoleArn"]["Fn::GetAtt"][0]
    statements = [s for p in template["Resources"].values() if p["Type"] == "AWS::IAM::Policy"
                  and {"Ref": role_id} in p["Properties"]["Roles"] for s in p["Properties"]["PolicyDocument"]["Statement"]]
    demo = Demo("healthy", requests=VERDICT_REQUESTS, minutes=VERDICT_MINUTES, port=free_port(), workdir=tmp_path,
                console=Console(quiet=True),
                assembly=synthesize("healthy", tmp_path / "cdk.out"))
    try:
        demo.start_emulator()
        demo.deploy()
        demo.send_traffic()
        # The stage deploys the stack the demo deploys (stack_name ChurnShadowTest): the policy names its workflow as is.
        machine = demo.state_machine.rsplit(":", 1)[-1]
        policy = _resolved(statements, {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT})
        assert pipeline_machine == machine and machine in json.dumps(policy)
        iam = demo.client("iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]}
        role = iam.create_role(RoleName="pipeline-verdict-action", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        iam.put_role_policy(RoleName=role["RoleName"], PolicyName="verdict",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": policy}))
        credentials = demo.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="codepipeline")["Credentials"]
        sfn = boto3.client("stepfunctions", endpoint_url=demo.emulator.url, region_name=REGION,
                           aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
                           aws_session_token=credentials["SessionToken"])
        test_end = demo.test_window(demo.self_ending_execution())[1]
        assert sfn.describe_state_machine(stateMachineArn=demo.state_machine)["name"] == machine
        execution = sfn.start_execution(stateMachineArn=demo.state_machine, name="codepipeline-verdict",
                                        input=json.dumps(PromotionWorkflow.PIPELINE_INPUT))["executionArn"]
        # The test's end, at once: the self-ending execution judges and acts, the followed one reports it.
        demo.emulator.control("POST", "clock", {"offset_seconds": (test_end - datetime.now(UTC)).total_seconds() + 5,
                                                "rate": 20})
        deadline = time.monotonic() + 120
        while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "the pipeline's execution did not end"
            time.sleep(0.5)
        assert described["status"] == "SUCCEEDED", described
        assert json.loads(described["output"])["decision"] == "PROMOTE"
        assert demo.emulator.control("GET", "authorization")["denials"] == []
        usage = demo.emulator.control("GET", "authorization")["usage"]
        follower = {u["action"] for u in usage if "PromotionFollowTestEndRole" in u["principal"]}
        assert {"states:ListExecutions", "states:DescribeExecution"} <= follower  # it found and followed the test
    finally:
        demo.emulator.stop()
