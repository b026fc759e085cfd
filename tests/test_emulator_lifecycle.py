"""The emulator's lifecycle doubles, through `python -m shadow_emulator`: Wait states that follow the
emulator's clock, and CloudFormation custom resources sent Create, Update and Delete as on AWS.

Custom resources are served by a probe handler (tests/emulator_probe.py, which the emulator runs
in-process: SHADOW_EMULATOR_LAMBDA_HANDLERS) that records every event it gets, and by the library's
own ``shadow_runtime.lifecycle.test_end_resource``.

The emulator authorizes every request as AWS would: each state machine and function runs as a real role of the
emulated IAM (``roles``, created once for the module) whose trust policy lets its service assume it and whose inline
policy grants exactly what it calls (a Wait -> Succeed state machine calls nothing; Lambda writes each function's logs
as its role; the test-end function starts, reads and stops executions of the workflows). A test fails if the emulator
refuses any request it did not expect (``aws``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto.cloudformation.custom_model import CustomModel
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from shadow_emulator import CloudFormationDouble, EmulatorClock, WaitStateDouble
from shadow_emulator.ports import free_port, port_in_use

pytestmark = pytest.mark.outer  # the outer loop (make test-fast skips it): the emulator server and the CDK CLI

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
DEADLINE = 30.0  # generous: polls end as soon as the state is reached
REGION = "us-east-1"
WORKFLOWS = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:workflow-*"  # ``workflow``'s state machines


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def trust(service: str, condition: dict | None = None) -> dict:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return {"Version": "2012-10-17", "Statement": [{**statement, "Condition": condition} if condition else statement]}


def allow(*statements: tuple[list[str], str]) -> dict:
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource} for actions, resource in statements]}


def function_logs(stack_prefix: str) -> tuple[list[str], str]:
    """What Lambda does as a function's role for each invocation: write its logs to /aws/lambda/NAME, here the
    functions of the stacks named ``stack_prefix``* (CloudFormation names them STACK-Fn-ID)."""
    return (["logs:CreateLogStream", "logs:PutLogEvents"],
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{stack_prefix}*:log-stream:*")


#: What the test-end function calls (shadow_runtime.lifecycle): StartExecution on Create and Update; DescribeExecution
#: (the old timer's start, on Update), GetExecutionHistory and StopExecution (cancelling a waiting timer, on Delete).
READ_AND_STOP = (["states:DescribeExecution", "states:GetExecutionHistory", "states:StopExecution"],
                 f"arn:aws:states:{REGION}:{ACCOUNT}:execution:workflow-*:test-end-*")
STATES_ROLE, PROBE_ROLE = role_arn("lifecycle-states"), role_arn("lifecycle-probe")
TEST_END_ROLE, TEST_END_ROLE_WITHOUT_START = role_arn("lifecycle-test-end"), role_arn("lifecycle-test-end-without-start")
#: Role ARN -> (trust policy, inline policy or None). The states role's trust policy guards against the confused deputy
#: as AWS recommends (aws:SourceAccount, aws:SourceArn: this account's state machines); its Wait -> Succeed and Succeed
#: machines call nothing. The probe only writes its logs (it PUTs its answer to CloudFormation's presigned URL,
#: unsigned).
ROLES: dict[str, tuple[dict, dict | None]] = {
    STATES_ROLE: (trust("states.amazonaws.com", {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:*"}}), None),
    PROBE_ROLE: (trust("lambda.amazonaws.com"), allow(function_logs("probe-"))),
    TEST_END_ROLE: (trust("lambda.amazonaws.com"),
                    allow((["states:StartExecution"], WORKFLOWS), READ_AND_STOP, function_logs("test-end-"))),
    TEST_END_ROLE_WITHOUT_START: (trust("lambda.amazonaws.com"), allow(READ_AND_STOP, function_logs("test-end-"))),
}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """The emulator, authorizing every request (the tests' own key, ``testing``, is its administrator); its log (each
    refusal: principal, action, resource) is ``emulator.log`` in the module's temporary folder."""
    port = free_port()
    env = {**os.environ, "SHADOW_EMULATOR_LAMBDA_HANDLERS": "emulator_probe.",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))}
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "shadow_emulator", "--port", str(port)], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not port_in_use("localhost", port):
        assert process.poll() is None and time.monotonic() < deadline, f"the emulator did not start; see {log_path}"
        time.sleep(0.1)
    yield f"http://localhost:{port}"
    process.terminate()
    process.wait(timeout=15)


@pytest.fixture(scope="module")
def roles(emulator) -> dict[str, tuple[dict, dict | None]]:
    """The module's roles (``ROLES``), created through the emulated IAM."""
    iam = boto3.client("iam", endpoint_url=emulator, region_name=REGION, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    for arn, (trust_policy, policy) in ROLES.items():
        name = arn.split("/")[-1]
        assert iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy))["Role"]["Arn"] == arn
        if policy is not None:
            iam.put_role_policy(RoleName=name, PolicyName="least-privilege", PolicyDocument=json.dumps(policy))
    return ROLES


def set_clock(url: str, offset_seconds: float) -> None:
    request = urllib.request.Request(f"{url}/_shadow_emulator/clock", method="POST",
                                     data=json.dumps({"offset_seconds": offset_seconds}).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def control(url: str, route: str, body: dict | None = None) -> dict:
    """GET (or POST ``body`` to) one of the emulator's control routes."""
    request = urllib.request.Request(f"{url}/_shadow_emulator/{route}", method="GET" if body is None else "POST",
                                     data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def aws(emulator, roles):
    """boto3 clients of the emulator, as its administrator; the module's roles exist; its clock is at offset 0 before
    and after each test.

    ``aws.refusals()`` are the requests the emulator refused since the test began ({principal, action, resource,
    message}); the test fails if one of them is not in ``aws.expected_refusals`` ((role ARN, action) pairs), so the
    roles are shown to grant everything their principals call.
    """
    set_clock(emulator, 0)
    before = len(control(emulator, "authorization")["denials"])

    def client(service: str):
        return boto3.client(service, endpoint_url=emulator, region_name=REGION, aws_access_key_id="testing",
                            aws_secret_access_key="testing")

    client.url = emulator
    client.refusals = lambda: control(emulator, "authorization")["denials"][before:]
    client.expected_refusals = []
    yield client
    set_clock(emulator, 0)
    unexpected = [r["message"] for r in client.refusals() if (r["principal"], r["action"]) not in client.expected_refusals]
    assert not unexpected, "the emulator refused requests of the test's principals:\n" + "\n".join(unexpected)


def poll(check, what: str, deadline: float = DEADLINE):
    """Call ``check`` until it returns something truthy (returned), failing after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Wait states on the emulator's clock

def start_waiting(aws, wait: dict, payload: dict | None = None) -> str:
    """Start an execution of Wait -> Succeed; return its ARN once it waits in the Wait state."""
    sfn = aws("stepfunctions")
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Next": "Done", **wait},
                                                "Done": {"Type": "Succeed"}}}
    machine = sfn.create_state_machine(name=f"wait-{time.monotonic_ns()}", definition=json.dumps(definition),
                                       roleArn=STATES_ROLE)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload or {}))["executionArn"]
    poll(lambda: "WaitStateEntered" in history(sfn, execution), "the execution to enter its Wait state")
    return execution


def history(sfn, execution: str) -> list[str]:
    return [event["type"] for event in sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]]


def status(sfn, execution: str) -> str:
    return sfn.describe_execution(executionArn=execution)["status"]


def ended(sfn, execution: str) -> str | None:
    current = status(sfn, execution)
    return None if current == "RUNNING" else current


@pytest.mark.parametrize("wait, payload", [
    ({"TimestampPath": "$.until"}, {"until": iso(datetime.now(UTC) + timedelta(hours=1))}),
    ({"Timestamp": iso(datetime.now(UTC) + timedelta(hours=1))}, None),
    ({"Seconds": 3600}, None),
    ({"SecondsPath": "$.seconds"}, {"seconds": 3600}),
], ids=["TimestampPath", "Timestamp", "Seconds", "SecondsPath"])
def test_an_hour_long_wait_ends_when_the_clock_moves_an_hour_forward(aws, wait, payload):
    sfn = aws("stepfunctions")
    execution = start_waiting(aws, wait, payload)
    time.sleep(0.5)  # a wait due in an hour is still waiting half a second (two and a half of its polls) later
    assert status(sfn, execution) == "RUNNING"
    set_clock(aws.url, 3600 + 5)  # moved while the Wait state is already waiting
    assert poll(lambda: ended(sfn, execution), "the wait to end") == "SUCCEEDED"
    assert {"WaitStateExited", "ExecutionSucceeded"} <= set(history(sfn, execution))


def test_a_negative_offset_set_before_a_relative_wait_does_not_lengthen_it(aws):
    sfn = aws("stepfunctions")
    set_clock(aws.url, -3600)
    execution = start_waiting(aws, {"Seconds": 1})
    assert poll(lambda: ended(sfn, execution), "a 1-second wait to end") == "SUCCEEDED"


def test_a_timestamp_wait_follows_the_emulated_now_both_ways(aws):
    sfn = aws("stepfunctions")
    set_clock(aws.url, -3600)  # the emulated now is an hour behind: a timestamp 1 s ahead (real) is an hour away
    until = datetime.now(UTC) + timedelta(seconds=1)
    execution = start_waiting(aws, {"TimestampPath": "$.until"}, {"until": iso(until)})
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.5)  # the timestamp has passed (real time)
    assert status(sfn, execution) == "RUNNING"
    set_clock(aws.url, 0)
    assert poll(lambda: ended(sfn, execution), "the wait to end") == "SUCCEEDED"


def test_stop_execution_interrupts_a_wait(aws):
    sfn = aws("stepfunctions")
    execution = start_waiting(aws, {"Seconds": 3600})
    sfn.stop_execution(executionArn=execution, error="Cancelled", cause="the test stops it")
    assert poll(lambda: ended(sfn, execution), "the execution to stop") == "ABORTED"
    set_clock(aws.url, 7200)  # the stopped wait must not go on to the next state when its time comes
    time.sleep(0.5)
    events = history(sfn, execution)
    assert "ExecutionAborted" in events
    assert "WaitStateExited" not in events and "SucceedStateEntered" not in events


class FakeEnvironment:
    """What the Wait double reads of moto's interpreter environment."""

    def __init__(self) -> None:
        self.running = True
        self.program_state_event = threading.Event()

    def is_running(self) -> bool:
        return self.running


def test_the_wait_returns_at_once_when_the_execution_stops():
    double, env = WaitStateDouble(EmulatorClock()), FakeEnvironment()
    waiter = threading.Thread(target=double.wait_until, args=(env, datetime.now(UTC) + timedelta(hours=1)), daemon=True)
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()
    env.running = False
    env.program_state_event.set()  # moto pulses the event when an execution stops
    env.program_state_event.clear()
    waiter.join(timeout=5)
    assert not waiter.is_alive()


def test_the_wait_ends_when_the_shared_clock_is_moved():
    clock = EmulatorClock()
    double, env = WaitStateDouble(clock), FakeEnvironment()
    waiter = threading.Thread(target=double.wait_until, args=(env, clock.now() + timedelta(minutes=30)), daemon=True)
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()
    clock.offset = timedelta(minutes=30)
    waiter.join(timeout=5)
    assert not waiter.is_alive()


def test_a_clock_with_a_rate_runs_that_many_times_as_fast_from_where_it_was():
    clock = EmulatorClock(timedelta(hours=-1))
    started = time.monotonic()
    clock.rate = 100  # starts from the emulated now: no jump
    before = clock.offset
    assert abs(before - timedelta(hours=-1)) < timedelta(seconds=5)
    time.sleep(0.3)
    gained, elapsed = (clock.offset - before).total_seconds(), time.monotonic() - started
    assert 99 * 0.3 - 0.5 <= gained <= 99 * elapsed + 0.5  # 99 s more for every real second
    clock.set(timedelta(0))  # rate back to 1
    assert clock.rate == 1.0 and abs(clock.offset) < timedelta(seconds=1)
    for bad in (0, 0.5, 20_000, "fast", True):
        with pytest.raises(ValueError, match="rate is a number from 1 to 10000"):
            clock.rate = bad


def test_a_relative_wait_follows_the_clocks_rate():
    """A 60-second Seconds wait on a clock running 200 times as fast ends in about 0.3 s."""
    clock = EmulatorClock(rate=200)
    double, env = WaitStateDouble(clock), FakeEnvironment()
    started = time.monotonic()
    double.wait_until(env, clock.now() + timedelta(seconds=60))
    assert time.monotonic() - started < 10  # generous on a loaded machine; 60 s without the rate
    assert clock.offset >= timedelta(seconds=59 * 199 / 200)


def test_the_doubles_restore_moto_when_uninstalled():
    original_wait = WaitFunction.__dict__["_eval_body"]
    with WaitStateDouble():
        assert WaitFunction.__dict__["_eval_body"] is not original_wait
    assert WaitFunction.__dict__["_eval_body"] is original_wait
    original_create = CustomModel.__dict__["create_from_cloudformation_json"]
    with CloudFormationDouble():
        assert "update_from_cloudformation_json" in CustomModel.__dict__
    assert CustomModel.__dict__["create_from_cloudformation_json"] is original_create
    assert "update_from_cloudformation_json" not in CustomModel.__dict__


def test_a_stack_update_changes_the_definition_of_its_executable_state_machine(aws):
    cfn, sfn = aws("cloudformation"), aws("stepfunctions")

    def template(state: str) -> str:
        definition = {"StartAt": state, "States": {state: {"Type": "Succeed"}}}
        return json.dumps({"Resources": {"Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "DefinitionString": json.dumps(definition), "RoleArn": STATES_ROLE}}}})

    cfn.create_stack(StackName="machine-update", TemplateBody=template("First"))
    assert settled(cfn, "machine-update")["StackStatus"] == "CREATE_COMPLETE"
    cfn.update_stack(StackName="machine-update", TemplateBody=template("Second"))
    assert settled(cfn, "machine-update")["StackStatus"] == "UPDATE_COMPLETE"
    machine = physical_ids(cfn, "machine-update")["Machine"]
    assert json.loads(sfn.describe_state_machine(stateMachineArn=machine)["definition"])["StartAt"] == "Second"
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    assert poll(lambda: ended(sfn, execution), "the execution to end") == "SUCCEEDED"
    assert "Second" in json.dumps(sfn.get_execution_history(executionArn=execution)["events"], default=str)


def test_an_update_may_use_the_previous_value_of_a_defaulted_parameter_as_the_cdk_cli_does(aws):
    cfn = aws("cloudformation")

    def template(description: str) -> str:
        return json.dumps({"Description": description, "Parameters": {"Version": {"Type": "String", "Default": "21"}},
                           "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})

    cfn.create_stack(StackName="previous-value", TemplateBody=template("v1"))  # Version: its default
    assert settled(cfn, "previous-value")["StackStatus"] == "CREATE_COMPLETE"
    cfn.update_stack(StackName="previous-value", TemplateBody=template("v2"),
                     Parameters=[{"ParameterKey": "Version", "UsePreviousValue": True}])
    stack = settled(cfn, "previous-value")
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {"Version": "21"}


# CloudFormation custom resources, with the probe handler

def probe_template(record: Path, *probes: dict, description: str = "v1", consumer: bool = True) -> str:
    """A stack of the probe function and one custom resource per ``probes`` (``Probe``, ``Probe2``, ...,
    properties as given), an SSM parameter and outputs that read the first one's attributes."""
    resources: dict = {
        "Fn": {"Type": "AWS::Lambda::Function",
               "Properties": {"Handler": "emulator_probe.handler", "Runtime": "python3.12", "Code": {"ZipFile": "probe"},
                              "Role": PROBE_ROLE}}}
    for number, properties in enumerate(probes, start=1):
        resources[f"Probe{number if number > 1 else ''}"] = {
            "Type": "Custom::Probe",
            "Properties": {"ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]}, "RecordTo": str(record), **properties}}
    template: dict = {"Description": description, "Resources": resources}
    if probes and consumer:
        resources["Echo"] = {"Type": "AWS::SSM::Parameter",
                             "Properties": {"Type": "String", "Name": {"Fn::Sub": "/probe/${AWS::StackName}"},
                                            "Value": {"Fn::GetAtt": ["Probe", "Echo"]}}}
        template["Outputs"] = {"Echo": {"Value": {"Fn::GetAtt": ["Probe", "Echo"]}}, "Id": {"Value": {"Ref": "Probe"}}}
    return json.dumps(template)


def recorded(record: Path) -> list[dict]:
    """Every event the probe got, oldest first."""
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def requests(record: Path) -> list[tuple]:
    return [(e["RequestType"], e["LogicalResourceId"], e.get("PhysicalResourceId")) for e in recorded(record)]


def settled(cfn, stack: str) -> dict:
    """The stack once no operation is in progress on it."""
    def done():
        found = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        return None if found["StackStatus"].endswith("_IN_PROGRESS") else found
    return poll(done, f"stack {stack} to settle")


def physical_ids(cfn, stack: str) -> dict[str, str]:
    return {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]}


def outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def failure_events(cfn, stack: str) -> list[tuple[str, str, str]]:
    return [(e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason", ""))
            for e in cfn.describe_stack_events(StackName=stack)["StackEvents"] if e["ResourceStatus"].endswith("_FAILED")]


def test_create_gives_the_handlers_physical_id_and_attributes(aws, tmp_path):
    cfn, record = aws("cloudformation"), tmp_path / "events.jsonl"
    stack_id = cfn.create_stack(StackName="probe-create", TemplateBody=probe_template(
        record, {"PhysicalId": "probe-1", "Value": "a", "Count": 3, "Enabled": True}))["StackId"]
    stack = settled(cfn, "probe-create")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert physical_ids(cfn, "probe-create")["Probe"] == "probe-1"
    # The attributes exist before the resources that read them are created, and for the outputs.
    assert aws("ssm").get_parameter(Name="/probe/probe-create")["Parameter"]["Value"] == "a"
    assert outputs(stack) == {"Echo": "a", "Id": "probe-1"}
    [event] = recorded(record)
    function_arn = aws("lambda").get_function(FunctionName=physical_ids(cfn, "probe-create")["Fn"])["Configuration"]["FunctionArn"]
    assert event["RequestType"] == "Create" and "PhysicalResourceId" not in event and "OldResourceProperties" not in event
    assert event["ResourceProperties"] == {"ServiceToken": function_arn, "RecordTo": str(record), "PhysicalId": "probe-1",
                                           "Value": "a", "Count": "3", "Enabled": "true"}  # CloudFormation's strings
    assert (event["StackId"], event["LogicalResourceId"], event["ResourceType"]) == (stack_id, "Probe", "Custom::Probe")
    assert event["ResponseURL"].startswith(f"{aws.url}/cloudformation_us-east-1/cfnresponse?stack=")


def test_updates_send_update_only_for_changed_properties_and_delete_for_replaced_or_removed_resources(aws, tmp_path):
    cfn, record = aws("cloudformation"), tmp_path / "events.jsonl"
    first = {"PhysicalId": "probe-1", "Value": "a"}
    cfn.create_stack(StackName="probe-update", TemplateBody=probe_template(record, first))
    assert settled(cfn, "probe-update")["StackStatus"] == "CREATE_COMPLETE"

    # A redeploy that changes the stack but not the resource's properties sends nothing.
    cfn.update_stack(StackName="probe-update", TemplateBody=probe_template(record, first, description="v2"))
    assert settled(cfn, "probe-update")["StackStatus"] == "UPDATE_COMPLETE"
    assert requests(record) == [("Create", "Probe", None)]

    # Changed properties: Update with the old properties and the current physical id.
    second = {"PhysicalId": "probe-1", "Value": "b"}
    cfn.update_stack(StackName="probe-update", TemplateBody=probe_template(record, second, description="v2"))
    stack = settled(cfn, "probe-update")
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert requests(record)[1:] == [("Update", "Probe", "probe-1")]
    update = recorded(record)[-1]
    assert (update["OldResourceProperties"]["Value"], update["ResourceProperties"]["Value"]) == ("a", "b")
    assert outputs(stack) == {"Echo": "b", "Id": "probe-1"}

    # A new physical id replaces the resource: Delete of the old id, with the old properties, after the update.
    third = {"PhysicalId": "probe-2", "Value": "c"}
    cfn.update_stack(StackName="probe-update", TemplateBody=probe_template(record, third, description="v2"))
    assert settled(cfn, "probe-update")["StackStatus"] == "UPDATE_COMPLETE"
    assert requests(record)[2:] == [("Update", "Probe", "probe-1"), ("Delete", "Probe", "probe-1")]
    assert recorded(record)[-1]["ResourceProperties"]["Value"] == "b"
    assert physical_ids(cfn, "probe-update")["Probe"] == "probe-2"

    # Removing the resource from the template deletes it.
    cfn.update_stack(StackName="probe-update", TemplateBody=probe_template(record, description="v3"))
    assert settled(cfn, "probe-update")["StackStatus"] == "UPDATE_COMPLETE"
    assert requests(record)[4:] == [("Delete", "Probe", "probe-2")]
    assert "Probe" not in physical_ids(cfn, "probe-update")


def summary_status(cfn, stack_id: str) -> str:
    """The stack's status from ListStacks (which, unlike DescribeStacks, reads no outputs)."""
    return next(s["StackStatus"] for s in cfn.list_stacks()["StackSummaries"] if s["StackId"] == stack_id)


def test_deleting_the_stack_deletes_custom_resources_before_their_function(aws, tmp_path):
    cfn, record = aws("cloudformation"), tmp_path / "events.jsonl"
    stack_id = cfn.create_stack(StackName="probe-delete", TemplateBody=probe_template(
        record, {"PhysicalId": "probe-1"}, {"PhysicalId": "probe-2", "After": {"Ref": "Probe"}}))["StackId"]
    assert poll(lambda: summary_status(cfn, stack_id) == "CREATE_COMPLETE", "the stack to be created")
    cfn.delete_stack(StackName="probe-delete")
    assert poll(lambda: summary_status(cfn, stack_id) == "DELETE_COMPLETE", "the stack to be deleted")
    # Probe2 depends on Probe: deleted first; both while their function still existed.
    assert requests(record) == [("Create", "Probe", None), ("Create", "Probe2", None),
                                ("Delete", "Probe2", "probe-2"), ("Delete", "Probe", "probe-1")]
    # Reading the deleted stack (its outputs, its resources) creates nothing again.
    assert settled(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert physical_ids(cfn, stack_id) == {}
    assert not [f for f in aws("lambda").list_functions()["Functions"] if f["FunctionName"].startswith("probe-delete-")]
    assert len(recorded(record)) == 4


def test_a_failed_create_fails_the_stack_with_the_handlers_reason_and_rolls_back(aws, tmp_path):
    cfn, record = aws("cloudformation"), tmp_path / "events.jsonl"
    cfn.create_stack(StackName="probe-failed", TemplateBody=probe_template(record, {"PhysicalId": "probe-1", "FailOn": "Create"}))
    stack = settled(cfn, "probe-failed")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "probe refuses Create" in stack["StackStatusReason"]
    [(logical, resource_status, reason)] = failure_events(cfn, "probe-failed")
    assert (logical, resource_status) == ("Probe", "CREATE_FAILED") and "probe refuses Create" in reason
    # The rollback sends the failed resource a Delete (its handler answered) and removes the rest.
    assert requests(record) == [("Create", "Probe", None), ("Delete", "Probe", "probe-1")]
    assert physical_ids(cfn, "probe-failed") == {}
    assert outputs(stack) == {}


def test_a_handler_that_fails_without_answering_fails_the_create_at_once(aws, tmp_path):
    cfn, record = aws("cloudformation"), tmp_path / "events.jsonl"
    cfn.create_stack(StackName="probe-raises", TemplateBody=probe_template(record, {"RaiseOn": "Create"}))
    stack = settled(cfn, "probe-raises")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "did not send a response" in stack["StackStatusReason"]
    assert "RuntimeError: probe raises on Create" in stack["StackStatusReason"]
    assert requests(record) == [("Create", "Probe", None)]  # no answer, no resource: no Delete


def test_a_failed_update_rolls_back_the_custom_resources_it_changed(aws, tmp_path):
    cfn, record = aws("cloudformation"), tmp_path / "events.jsonl"
    old = ({"PhysicalId": "probe-1", "Value": "a"}, {"PhysicalId": "probe-2", "Value": "a"})
    cfn.create_stack(StackName="probe-rollback", TemplateBody=probe_template(record, *old))
    assert settled(cfn, "probe-rollback")["StackStatus"] == "CREATE_COMPLETE"

    new = ({"PhysicalId": "probe-1", "Value": "b"}, {"PhysicalId": "probe-2", "Value": "b", "FailOn": "Update"})
    cfn.update_stack(StackName="probe-rollback", TemplateBody=probe_template(record, *new))
    stack = settled(cfn, "probe-rollback")
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert "probe refuses Update" in stack["StackStatusReason"]
    assert [(logical, resource_status) for logical, resource_status, _ in failure_events(cfn, "probe-rollback")] == [
        ("Probe2", "UPDATE_FAILED")]
    # Probe was updated, then Probe2 failed: Probe gets an Update back to its old properties.
    assert requests(record)[2:] == [("Update", "Probe", "probe-1"), ("Update", "Probe2", "probe-2"),
                                    ("Update", "Probe", "probe-1")]
    back = recorded(record)[-1]
    assert (back["ResourceProperties"]["Value"], back["OldResourceProperties"]["Value"]) == ("a", "b")
    assert outputs(stack) == {"Echo": "a", "Id": "probe-1"}

    # The stack is back on its old template: deploying that again changes nothing.
    cfn.update_stack(StackName="probe-rollback", TemplateBody=probe_template(record, *old, description="v2"))
    assert settled(cfn, "probe-rollback")["StackStatus"] == "UPDATE_COMPLETE"
    assert len(recorded(record)) == 5


def test_a_failed_delete_leaves_the_stack_delete_failed_until_a_retry_succeeds(aws, tmp_path):
    cfn, record, marker = aws("cloudformation"), tmp_path / "events.jsonl", tmp_path / "refuse-delete"
    marker.touch()
    stack_id = cfn.create_stack(StackName="probe-undeletable", TemplateBody=probe_template(
        record, {"PhysicalId": "probe-1", "FailDeleteWhile": str(marker)}))["StackId"]
    assert settled(cfn, "probe-undeletable")["StackStatus"] == "CREATE_COMPLETE"
    cfn.delete_stack(StackName="probe-undeletable")
    stack = settled(cfn, "probe-undeletable")  # still found by name
    assert stack["StackStatus"] == "DELETE_FAILED" and "probe refuses Delete" in stack["StackStatusReason"]
    marker.unlink()
    cfn.delete_stack(StackName="probe-undeletable")
    assert settled(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert requests(record) == [("Create", "Probe", None), ("Delete", "Probe", "probe-1"), ("Delete", "Probe", "probe-1")]


# The library's Custom::ShadowTestEnd, with its real handler

def timer_template(state_machine_arn: str, duration_seconds: int, description: str = "v1",
                   role: str = TEST_END_ROLE) -> str:
    """The resource and its function (running as ``role``); the workflow's state machine lives outside the stack, so
    its executions can be looked at after the stack is gone."""
    return json.dumps({"Description": description, "Resources": {
        "Fn": {"Type": "AWS::Lambda::Function",
               "Properties": {"Handler": "shadow_runtime.lifecycle.test_end_resource", "Runtime": "python3.12",
                              "Code": {"ZipFile": "x"}, "Role": role}},
        "TestEnd": {"Type": "Custom::ShadowTestEnd",
                    "Properties": {"ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]}, "StateMachineArn": state_machine_arn,
                                   "DurationSeconds": duration_seconds}}}})


def workflow(sfn) -> str:
    """A state machine that waits for ``$.test_end`` like the promotion workflow, then succeeds."""
    definition = {"StartAt": "WaitForTestEnd", "States": {
        "WaitForTestEnd": {"Type": "Wait", "TimestampPath": "$.test_end", "Next": "Judge"}, "Judge": {"Type": "Succeed"}}}
    return sfn.create_state_machine(name=f"workflow-{time.monotonic_ns()}", definition=json.dumps(definition),
                                    roleArn=STATES_ROLE)["stateMachineArn"]


def executions(sfn, machine: str) -> dict[str, str]:
    return {e["executionArn"]: e["status"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]}


def test_the_test_end_resource_starts_one_timer_moves_it_and_cancels_it(aws):
    cfn, sfn = aws("cloudformation"), aws("stepfunctions")
    machine = workflow(sfn)
    stack_id = cfn.create_stack(StackName="test-end-timer", TemplateBody=timer_template(machine, 3600))["StackId"]
    assert settled(cfn, "test-end-timer")["StackStatus"] == "CREATE_COMPLETE"
    first = physical_ids(cfn, "test-end-timer")["TestEnd"]
    assert executions(sfn, machine) == {first: "RUNNING"}

    # A redeploy that keeps the resource's properties does not start a second timer.
    cfn.update_stack(StackName="test-end-timer", TemplateBody=timer_template(machine, 3600, description="v2"))
    assert settled(cfn, "test-end-timer")["StackStatus"] == "UPDATE_COMPLETE"
    assert executions(sfn, machine) == {first: "RUNNING"}

    # A new duration: a new timer (a new physical id), and the old one's Delete stops the old execution.
    cfn.update_stack(StackName="test-end-timer", TemplateBody=timer_template(machine, 7200, description="v2"))
    assert settled(cfn, "test-end-timer")["StackStatus"] == "UPDATE_COMPLETE"
    second = physical_ids(cfn, "test-end-timer")["TestEnd"]
    assert second != first
    assert executions(sfn, machine) == {first: "ABORTED", second: "RUNNING"}

    # cdk destroy: the waiting timer is stopped.
    cfn.delete_stack(StackName="test-end-timer")
    assert settled(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert executions(sfn, machine) == {first: "ABORTED", second: "ABORTED"}

    # Least privilege: the function's role was allowed every call it made, and each of its grants was used.
    report = control(aws.url, "permissions", {"roles": [TEST_END_ROLE]})["roles"][TEST_END_ROLE]
    assert {u["action"] for u in report["used"]} == {
        "states:StartExecution", "states:DescribeExecution", "states:GetExecutionHistory", "states:StopExecution",
        "logs:CreateLogStream", "logs:PutLogEvents"}
    assert (report["unused"], report["by_resource_policy"]) == ([], [])


def test_a_function_whose_role_may_not_start_the_execution_fails_the_create_with_the_refusal(aws):
    """The emulator authorizes the function's calls as its execution role: without states:StartExecution the handler's
    StartExecution is refused as AWS refuses it, the handler answers FAILED with that reason, and the stack rolls back."""
    cfn, sfn = aws("cloudformation"), aws("stepfunctions")
    machine = workflow(sfn)
    aws.expected_refusals.append((TEST_END_ROLE_WITHOUT_START, "states:StartExecution"))
    cfn.create_stack(StackName="test-end-refused",
                     TemplateBody=timer_template(machine, 3600, role=TEST_END_ROLE_WITHOUT_START))
    stack = settled(cfn, "test-end-refused")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    refusal = (f"AccessDeniedException) when calling the StartExecution operation: User: arn:aws:sts::{ACCOUNT}:"
               f"assumed-role/lifecycle-test-end-without-start/lambda is not authorized to perform: states:StartExecution "
               f"on resource: {machine} because no identity-based policy allows the states:StartExecution action")
    [(logical, resource_status, reason)] = failure_events(cfn, "test-end-refused")
    assert (logical, resource_status) == ("TestEnd", "CREATE_FAILED")
    assert reason.startswith("Received response status [FAILED] from custom resource. Message returned: ClientError: ")
    assert refusal in reason and refusal in stack["StackStatusReason"]
    assert executions(sfn, machine) == {}
    assert [(r["principal"], r["action"], r["resource"]) for r in aws.refusals()] == [
        (TEST_END_ROLE_WITHOUT_START, "states:StartExecution", machine)]


def test_the_test_end_timer_ends_when_the_emulators_clock_reaches_the_end(aws):
    cfn, sfn = aws("cloudformation"), aws("stepfunctions")
    machine = workflow(sfn)
    stack_id = cfn.create_stack(StackName="test-end-clock", TemplateBody=timer_template(machine, 3600))["StackId"]
    assert settled(cfn, "test-end-clock")["StackStatus"] == "CREATE_COMPLETE"
    timer = physical_ids(cfn, "test-end-clock")["TestEnd"]
    assert status(sfn, timer) == "RUNNING"
    set_clock(aws.url, 3600 + 5)
    assert poll(lambda: ended(sfn, timer), "the timer to end") == "SUCCEEDED"
    cfn.delete_stack(StackName="test-end-clock")  # the timer has ended: its Delete leaves it as it is
    assert settled(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert executions(sfn, machine) == {timer: "SUCCEEDED"}


def test_leaving_the_shadow_phase_cancels_the_pending_end(aws):
    """Deploying PROMOTED or ROLLED_BACK removes the timer from the template: its Delete stops the waiting run."""
    cfn, sfn = aws("cloudformation"), aws("stepfunctions")
    machine = workflow(sfn)
    cfn.create_stack(StackName="test-end-phase", TemplateBody=timer_template(machine, 3600))
    assert settled(cfn, "test-end-phase")["StackStatus"] == "CREATE_COMPLETE"
    timer = physical_ids(cfn, "test-end-phase")["TestEnd"]
    without_timer = json.loads(timer_template(machine, 3600, description="promoted"))
    del without_timer["Resources"]["TestEnd"]
    cfn.update_stack(StackName="test-end-phase", TemplateBody=json.dumps(without_timer))
    assert settled(cfn, "test-end-phase")["StackStatus"] == "UPDATE_COMPLETE"
    assert executions(sfn, machine) == {timer: "ABORTED"}
    cfn.delete_stack(StackName="test-end-phase")


def test_fast_forward_runs_waits_and_retry_back_offs_at_once_on_the_clock():
    """In-process tests of a state machine's logic: an hour's wait and a minute's back-off take no time."""
    from moto import mock_aws

    definition = {"StartAt": "Wait", "States": {
        "Wait": {"Type": "Wait", "Seconds": 3600, "Next": "Flaky"},
        "Flaky": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sfn:describeExecution",
                  "Parameters": {"ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:none:none"},
                  "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 60, "MaxAttempts": 1}], "End": True}}}
    clock = EmulatorClock()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), \
            WaitStateDouble(clock, fast_forward=True):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(name="forward", definition=json.dumps(definition),
                                           roleArn=f"arn:aws:iam::{ACCOUNT}:role/states")["stateMachineArn"]
        started = time.monotonic()
        execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        status = poll(lambda: ended(sfn, execution), "the execution to end")
        assert status == "FAILED" and time.monotonic() - started < 20
        assert clock.offset >= timedelta(seconds=3659)  # the wait and the one 60 s back-off, on the clock (to the second)
