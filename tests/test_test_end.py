"""Tests that end themselves: the Custom::ShadowTestEnd resource in the template, and its handler's
start / move / cancel of the self-ending execution (against moto's Step Functions)."""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime, timedelta

import aws_cdk as cdk
import boto3
import pytest
from conftest import XGBOOST_URI, new_stack, only, policy_statements, template_of
from moto import mock_aws
from shadow_runtime import lifecycle

from app import build_app
from shadow_constructs import ConfigError, PromotionWorkflow, ServingModel, ShadowEndpoint, Variant

DAY = 86400


def workflow_stack(**kwargs) -> cdk.Stack:
    stack = new_stack(region="us-east-1")
    v1, v2 = (ServingModel(stack, name, image=XGBOOST_URI) for name in ("V1", "V2"))
    endpoint = ShadowEndpoint(stack, "Endpoint", endpoint_name="churn", production=Variant(model=v1),
                              shadow=Variant(model=v2))
    PromotionWorkflow(stack, "Promotion", endpoint=endpoint, **kwargs)
    return stack


@pytest.fixture(scope="module")
def default_template() -> dict:
    return template_of(workflow_stack()).to_json()


def test_by_default_the_test_ends_itself_after_seven_days(default_template):
    timers = [r for r in default_template["Resources"].values() if r["Type"] == "Custom::ShadowTestEnd"]
    assert len(timers) == 1
    timer = timers[0]
    assert timer["Properties"]["DurationSeconds"] == 7 * DAY
    assert timer["Metadata"]["shadow-constructs"] == {"role": "test-end"}
    machine_id, machine = next((k, r) for k, r in default_template["Resources"].items()
                               if r["Type"] == "AWS::StepFunctions::StateMachine")
    assert machine_id in timer["DependsOn"]  # the machine exists before the timer starts it
    name = machine["Properties"]["StateMachineName"]
    assert timer["Properties"]["StateMachineArn"]["Fn::Join"][1][-1].endswith(f":stateMachine:{name}")


def test_synthesizing_twice_gives_identical_templates():
    """No wall-clock time in a synth: the end is computed by the timer when the stack is created."""
    def synth() -> str:
        app = cdk.App(outdir=tempfile.mkdtemp(), context={"nag": "false"})
        build_app(app)
        return json.dumps(app.synth().get_stack_by_name("ChurnShadowTest").template, sort_keys=True)

    first, second = synth(), synth()
    assert first == second
    assert str(datetime.now(UTC).year) not in first.replace("2010-09-09", "").replace("2012-10-17", "")


def timer_of(template: dict) -> dict:
    return next(r for r in template["Resources"].values() if r["Type"] == "Custom::ShadowTestEnd")["Properties"]


def test_a_changed_workflow_changes_the_timer_so_the_pending_run_restarts(default_template):
    """A running execution keeps the definition it started with: new criteria must reach the pending end."""
    again = template_of(workflow_stack()).to_json()
    stricter = template_of(workflow_stack(criteria={"latency_tolerance": 0.02})).to_json()
    assert timer_of(again)["DefinitionHash"] == timer_of(default_template)["DefinitionHash"]
    assert timer_of(stricter)["DefinitionHash"] != timer_of(default_template)["DefinitionHash"]
    assert timer_of(stricter)["DurationSeconds"] == timer_of(default_template)["DurationSeconds"]


def test_the_timer_may_only_start_and_stop_its_own_workflow(default_template):
    template = cdk.assertions.Template.from_json(default_template)
    statements = policy_statements(template, "PromotionTestEndRole")
    by_action = {tuple(sorted(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])): s["Resource"]
                 for s in statements}
    assert set(by_action) >= {("states:StartExecution",),
                              ("states:DescribeExecution", "states:GetExecutionHistory", "states:StopExecution")}
    start = json.dumps(by_action[("states:StartExecution",)])
    executions = json.dumps(by_action[("states:DescribeExecution", "states:GetExecutionHistory", "states:StopExecution")])
    assert ":stateMachine:" in start and "*" not in start
    assert ":execution:" in executions and executions.count("*") == 1


def test_turning_it_off_is_explicit():
    template = template_of(workflow_stack(ends_itself=False))
    assert not template.find_resources("Custom::ShadowTestEnd")
    assert not template.find_resources("AWS::Scheduler::Schedule")


def test_a_fixed_end_uses_the_scheduler_instead():
    template = template_of(workflow_stack(test_end=datetime(2026, 12, 24, 9, tzinfo=UTC)))
    assert not template.find_resources("Custom::ShadowTestEnd")
    assert only(template, "AWS::Scheduler::Schedule")["Properties"]["ScheduleExpression"] == "at(2026-12-24T09:00:00)"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"duration": cdk.Duration.minutes(30)}, r"duration must be between 1 hour and 30 days, got 30 minutes"),
    ({"duration": cdk.Duration.days(31)}, r"duration must be between 1 hour and 30 days, got 31 days"),
    ({"duration": cdk.Duration.days(2), "test_end": datetime(2026, 12, 24, tzinfo=UTC)},
     r"give duration or test_end, not both"),
    ({"ends_itself": "yes"}, r"ends_itself must be a bool, got 'yes'"),
])
def test_bad_durations_are_refused_at_synth(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        workflow_stack(**kwargs)


# The handler, against moto

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:churn-promotion"
DEFINITION = json.dumps({"StartAt": "WaitForTestEnd?", "States": {
    "WaitForTestEnd?": {"Type": "Choice", "Choices": [{"Variable": "$.test_end", "IsPresent": True,
                                                       "Next": "WaitForTestEnd"}], "Default": "Judge"},
    "WaitForTestEnd": {"Type": "Wait", "TimestampPath": "$.test_end", "Next": "Judge"},
    "Judge": {"Type": "Pass", "Result": {"decision": "PROMOTE", "action": "promoted"}, "End": True}}})


@pytest.fixture
def sfn():
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        client = boto3.client("stepfunctions", region_name="us-east-1")
        client.create_state_machine(name="churn-promotion", definition=DEFINITION,
                                    roleArn="arn:aws:iam::123456789012:role/sfn")
        yield client


def event(kind: str, seconds: int = 7 * DAY, **extra) -> dict:
    return {"RequestType": kind, "RequestId": f"request-{kind}", "StackId": "stack", "LogicalResourceId": "TestEnd",
            "ResourceProperties": {"ServiceToken": "fn", "StateMachineArn": MACHINE, "DurationSeconds": str(seconds)},
            **extra}


def wait_entered(sfn, arn: str) -> None:
    for _ in range(100):
        if lifecycle.still_waiting(sfn, arn):
            return
        time.sleep(0.05)
    raise AssertionError(f"{arn} never entered WaitForTestEnd")


def stop(sfn, arn: str) -> None:
    """Clean-up: stop an execution once it waits (moto fails to stop one whose worker has not started yet)."""
    wait_entered(sfn, arn)
    sfn.stop_execution(executionArn=arn)


def test_create_starts_one_execution_waiting_for_the_end(sfn):
    now = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    result = lifecycle.handle(event("Create"), sfn, now)
    arn = result["PhysicalResourceId"]
    assert result["Data"] == {"ExecutionArn": arn, "TestEnd": "2026-12-08T10:30:00Z", "TestStart": "2026-12-01T10:30:00Z"}
    described = sfn.describe_execution(executionArn=arn)
    assert described["name"].startswith("test-end-") and described["status"] == "RUNNING"
    assert json.loads(described["input"]) == {"test_end": "2026-12-08T10:30:00Z", "trigger": "test-end",
                                              "duration_seconds": 7 * DAY, "test_start": "2026-12-01T10:30:00Z"}
    # A retried request (same RequestId) finds its execution instead of starting a second one.
    assert lifecycle.handle(event("Create"), sfn, now)["PhysicalResourceId"] == arn
    assert len(sfn.list_executions(stateMachineArn=MACHINE)["executions"]) == 1
    stop(sfn, arn)


def test_an_unchanged_update_keeps_the_timer_and_a_new_duration_counts_from_the_start(sfn):
    created = lifecycle.handle(event("Create"), sfn)["PhysicalResourceId"]
    same = lifecycle.handle(event("Update", PhysicalResourceId=created,
                                  OldResourceProperties=event("Create")["ResourceProperties"]), sfn)
    assert same == {"PhysicalResourceId": created, "Data": {}}
    longer = lifecycle.handle(event("Update", 10 * DAY, PhysicalResourceId=created,
                                    OldResourceProperties=event("Create")["ResourceProperties"]), sfn)
    assert longer["PhysicalResourceId"] != created  # CloudFormation then deletes (cancels) the old timer
    started = json.loads(sfn.describe_execution(executionArn=created)["input"])["test_start"]
    assert longer["Data"]["TestStart"] == started
    assert longer["Data"]["TestEnd"] == lifecycle.iso(datetime.fromisoformat(started.replace("Z", "+00:00"))
                                                      + timedelta(days=10))
    for arn in (created, longer["PhysicalResourceId"]):
        stop(sfn, arn)


def test_a_new_definition_restarts_the_wait_with_the_same_end(sfn):
    old = {**event("Create")["ResourceProperties"], "DefinitionHash": "aaaa"}
    created = lifecycle.handle({**event("Create"), "ResourceProperties": old}, sfn)
    new = {**old, "DefinitionHash": "bbbb"}
    restarted = lifecycle.handle(event("Update", PhysicalResourceId=created["PhysicalResourceId"],
                                       OldResourceProperties=old, ResourceProperties=new), sfn)
    assert restarted["PhysicalResourceId"] != created["PhysicalResourceId"]
    assert restarted["Data"]["TestEnd"] == created["Data"]["TestEnd"]  # the test's end does not move
    for arn in (created["PhysicalResourceId"], restarted["PhysicalResourceId"]):
        stop(sfn, arn)


def test_a_new_candidate_is_a_new_test_timed_from_its_deploy(sfn):
    old = {**event("Create")["ResourceProperties"], "DefinitionHash": "aaaa", "Candidate": "churn-v2"}
    created = lifecycle.handle({**event("Create"), "ResourceProperties": old}, sfn,
                               datetime(2026, 12, 1, 10, 30, tzinfo=UTC))
    later = datetime(2026, 12, 20, 9, 0, tzinfo=UTC)  # the first test ended long ago; v3 is deployed as the shadow
    renewed = lifecycle.handle(event("Update", PhysicalResourceId=created["PhysicalResourceId"], OldResourceProperties=old,
                                     ResourceProperties={**old, "Candidate": "churn-v3"}), sfn, later)
    assert renewed["PhysicalResourceId"] != created["PhysicalResourceId"]
    assert (renewed["Data"]["TestStart"], renewed["Data"]["TestEnd"]) == ("2026-12-20T09:00:00Z", "2026-12-27T09:00:00Z")
    # A timer of before the property keeps its test (an upgrade is no new candidate).
    kept = lifecycle.handle(event("Update", PhysicalResourceId=renewed["PhysicalResourceId"],
                                  OldResourceProperties={k: v for k, v in old.items() if k != "Candidate"},
                                  ResourceProperties={**old, "Candidate": "churn-v3"}), sfn, later)
    assert kept == {"PhysicalResourceId": renewed["PhysicalResourceId"], "Data": {}}
    for arn in (created["PhysicalResourceId"], renewed["PhysicalResourceId"]):
        stop(sfn, arn)


def test_the_timer_names_the_candidate_so_a_new_model_restarts_the_test(default_template):
    candidate = timer_of(default_template)["Candidate"]
    v2 = next(k for k, r in default_template["Resources"].items()
              if k.startswith("V2") and r["Type"] == "AWS::SageMaker::Model")
    assert candidate == {"Fn::GetAtt": [v2, "ModelName"]}


def test_delete_cancels_a_waiting_execution_only(sfn):
    arn = lifecycle.handle(event("Create"), sfn)["PhysicalResourceId"]
    wait_entered(sfn, arn)
    deleted = lifecycle.handle(event("Delete", PhysicalResourceId=arn), sfn)
    assert deleted["Reason"] == "pending end cancelled"
    for _ in range(100):  # moto ends a stopped execution's thread shortly after
        if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            break
        time.sleep(0.05)
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    # Already finished (it judged and acted): nothing to cancel, and Delete still succeeds.
    assert lifecycle.handle(event("Delete", PhysicalResourceId=arn), sfn)["Reason"] == \
        "the execution had already decided; left to finish"
    assert lifecycle.handle(event("Delete", PhysicalResourceId="request-Create"), sfn)["Reason"].startswith(
        "no execution to cancel")


class _History:
    """A Step Functions client that only describes one running execution whose newest entered state is given."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def describe_execution(self, executionArn):  # noqa: N803 - boto3's parameter name
        return {"status": "RUNNING"}

    def get_execution_history(self, **_):
        # Oldest first on purpose (an emulator that ignores reverseOrder): the newest is the highest id.
        return {"events": [{"id": i + 1, "stateEnteredEventDetails": {"name": name}} for i, name in enumerate(self.names)]}


@pytest.mark.parametrize(("states", "stoppable"), [
    (("Follow?", "WaitForTestEnd?", "StartLooks", "PlanLook", "WaitForNextLook"), True),
    (("PlanLook", "WaitForNextLook", "LookWindow", "GatherMetrics", "Judge", "InterimLook?", "PlanLook"), True),
    (("WaitForTestEnd?", "WaitForTestEnd"), True),
    (("LookWindow", "GatherMetrics", "MeasureAgreement", "Judge"), True),  # judging a look: nothing changed yet
    (("Judge", "InterimLook?", "PublishVerdict"), False),  # decided: it reports and acts; left to finish
    (("Judge", "InterimLook?", "PublishVerdict", "EmitVerdictEvent", "Decision", "PromotePrepare"), False),
])
def test_an_execution_is_stopped_only_before_it_decides(states, stoppable):
    assert lifecycle.still_waiting(_History(*states), "arn:aws:states:eu-west-1:1:execution:m:e") is stoppable


@pytest.mark.parametrize(("seconds", "message"), [
    ("600", r"DurationSeconds must be 3600-2592000 \(1 hour to 30 days\), got 600"),
    ("a week", r"DurationSeconds must be a whole number of seconds, got 'a week'"),
])
def test_a_bad_duration_fails_the_create(sfn, seconds, message):
    bad = event("Create")
    bad["ResourceProperties"]["DurationSeconds"] = seconds
    with pytest.raises(ValueError, match=message):
        lifecycle.handle(bad, sfn)


def test_follow_finds_the_newest_self_ending_execution(sfn, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    own = sfn.start_execution(stateMachineArn=MACHINE, name="pipeline-run", input="{}")["executionArn"]
    assert lifecycle.follow_test_end({"state_machine_arn": MACHINE, "execution_arn": own}) == \
        {"found": False, "status": "NONE", "execution": None}
    timer = sfn.start_execution(stateMachineArn=MACHINE, name="test-end-abc", input="{}")["executionArn"]
    for _ in range(100):
        followed = lifecycle.follow_test_end({"state_machine_arn": MACHINE, "execution_arn": own})
        if followed["status"] != "RUNNING":
            break
        time.sleep(0.05)  # moto runs the execution in a thread: give it up to 5 s on a busy machine
    assert followed == {"found": True, "status": "SUCCEEDED", "execution": timer,
                        "output": {"decision": "PROMOTE", "action": "promoted"}}


def test_the_plan_says_when_the_test_ends_in_words():
    from shadow_cli.plan import _duration_text

    assert [_duration_text(s) for s in (3600, 5400, 86400, 2 * 86400, 7 * 86400, 30 * 86400)] == \
        ["1 hour", "1.5 hours", "24 hours", "2 days", "7 days", "30 days"]
