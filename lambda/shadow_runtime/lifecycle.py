"""A shadow test that ends itself: the deploy-time timer and the follower of its execution.

``test_end_resource`` backs the ``Custom::ShadowTestEnd`` resource of a PromotionWorkflow. When
the stack is created (or the test's duration changes) it starts ONE execution of the workflow
that waits in ``WaitForTestEnd`` until the test's end and then judges and acts like any run.
The end is computed here, at deploy time, so synthesized templates hold no wall-clock time.
Deleting the resource (leaving the SHADOW phase, destroying the stack) stops that execution if
it is still waiting; an execution that is already judging or acting is left to finish.

``follow_test_end`` serves a run started with ``{"follow": true}`` (a pipeline's verdict step):
it finds the test's self-ending execution so the run can wait for it instead of judging twice.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from .clients import client
from .looks import STOPPABLE_STATES, iso, parse_time

EXECUTION_PREFIX = "test-end-"
MIN_SECONDS, MAX_SECONDS = 3600, 30 * 86400


_client = client  # a client per service and AWS environment, reused across invocations


def duration_seconds(properties: dict[str, Any]) -> int:
    """The test's duration from the resource properties (CloudFormation passes numbers as strings)."""
    value = properties.get("DurationSeconds")
    try:
        seconds = int(str(value))
    except ValueError:
        raise ValueError(f"DurationSeconds must be a whole number of seconds, got {value!r}") from None
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError(f"DurationSeconds must be {MIN_SECONDS}-{MAX_SECONDS} (1 hour to 30 days), got {seconds}")
    return seconds


def execution_name(request_id: str) -> str:
    """Deterministic per CloudFormation request, so a retried request reuses the execution it started."""
    return EXECUTION_PREFIX + hashlib.sha256(request_id.encode()).hexdigest()[:24]


def timer_input(start: datetime, seconds: int) -> dict[str, Any]:
    return {"test_end": iso(start + timedelta(seconds=seconds)), "trigger": "test-end", "duration_seconds": seconds,
            "test_start": iso(start)}


def start_timer(sfn, state_machine_arn: str, request_id: str, start: datetime, seconds: int) -> dict[str, str]:
    """Start the self-ending execution (or find the one this request started already)."""
    payload = timer_input(start, seconds)
    name = execution_name(request_id)
    try:
        arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))["executionArn"]
    except sfn.exceptions.ExecutionAlreadyExists:
        arn = state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + name
    return {"ExecutionArn": arn, "TestEnd": payload["test_end"], "TestStart": payload["test_start"]}


def test_start(sfn, execution_arn: str) -> datetime | None:
    """When the test of a self-ending execution started: its input's ``test_start`` (else its start date)."""
    try:
        described = sfn.describe_execution(executionArn=execution_arn)
    except Exception:  # noqa: BLE001 - no old execution to measure from
        return None
    recorded = json.loads(described.get("input") or "{}").get("test_start")
    return parse_time(recorded) if recorded else described["startDate"]


test_start.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


def still_waiting(sfn, execution_arn: str) -> bool:
    """Whether the execution runs and has not decided yet: it waits for a look or the test's end, or judges a look."""
    if sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING":
        return False
    events = sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=100)["events"]
    # The newest state entered, by event id (not by position: some emulators ignore reverseOrder).
    entered = [(e["id"], e["stateEnteredEventDetails"]["name"]) for e in events if "stateEnteredEventDetails" in e]
    return bool(entered) and max(entered)[1] in STOPPABLE_STATES


def cancel_timer(sfn, execution_arn: str, why: str) -> str:
    """Stop the self-ending execution if it still waits; say what happened."""
    if not execution_arn.startswith("arn:") or ":execution:" not in execution_arn:
        return f"no execution to cancel ({execution_arn!r})"
    try:
        if not still_waiting(sfn, execution_arn):
            return "the execution had already decided; left to finish"
        sfn.stop_execution(executionArn=execution_arn, error="ShadowTestEndCancelled", cause=why)
        return "pending end cancelled"
    except sfn.exceptions.ExecutionDoesNotExist:
        return "the execution no longer exists"


def handle(event: dict[str, Any], sfn=None, now: datetime | None = None) -> dict[str, Any]:
    """The custom resource's work for one request: PhysicalResourceId and Data (no response sent)."""
    sfn = sfn or _client("stepfunctions")
    now = now or datetime.now(UTC)
    kind = event["RequestType"]
    properties = event.get("ResourceProperties") or {}
    if kind == "Delete":
        reason = cancel_timer(sfn, event.get("PhysicalResourceId", ""),
                              "The shadow test left the SHADOW phase or its stack was deleted.")
        return {"PhysicalResourceId": event.get("PhysicalResourceId", ""), "Data": {}, "Reason": reason}
    seconds = duration_seconds(properties)
    machine = properties["StateMachineArn"]
    if kind == "Update":
        old = event.get("OldResourceProperties") or {}
        current = event.get("PhysicalResourceId", "")
        # A new candidate (the shadow's model) is a new test: it starts now, whatever the old one did. A timer of
        # before the Candidate property (None) keeps its test.
        new_candidate = None not in (old.get("Candidate"), properties.get("Candidate")) \
            and old.get("Candidate") != properties.get("Candidate")
        if not new_candidate and str(old.get("DurationSeconds")) == str(seconds) \
                and old.get("StateMachineArn") == machine and old.get("DefinitionHash") == properties.get("DefinitionHash"):
            return {"PhysicalResourceId": current, "Data": {}}
        # A new duration counts from the test's original start, and a new definition (a running execution keeps
        # the one it started with) restarts the wait with the same end; CloudFormation then deletes the old timer.
        start = now if new_candidate else test_start(sfn, current) or now
        data = start_timer(sfn, machine, event["RequestId"], start, seconds)
        return {"PhysicalResourceId": data["ExecutionArn"], "Data": data}
    data = start_timer(sfn, machine, event["RequestId"], now, seconds)
    return {"PhysicalResourceId": data["ExecutionArn"], "Data": data}


def respond(event: dict[str, Any], status: str, result: dict[str, Any], reason: str) -> dict[str, Any]:
    """PUT the response CloudFormation waits for (the cfn-response protocol)."""
    body = {"Status": status, "Reason": reason[:3000],
            "PhysicalResourceId": result.get("PhysicalResourceId") or event.get("PhysicalResourceId") or event["RequestId"],
            "StackId": event["StackId"], "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"], "Data": result.get("Data") or {}}
    data = json.dumps(body).encode()
    request = urllib.request.Request(event["ResponseURL"], data=data, method="PUT",
                                     headers={"Content-Type": "", "Content-Length": str(len(data))})
    with urllib.request.urlopen(request, timeout=30):
        pass
    return body


def test_end_resource(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Handler of ``Custom::ShadowTestEnd``: start, move or cancel the test's self-ending execution.

    ResourceProperties: ``StateMachineArn``, ``DurationSeconds`` (3600-2592000), ``DefinitionHash`` (a
    changed workflow definition restarts the pending execution, keeping the test's start), ``Candidate`` (the
    shadow's model: a new one is a new test, timed from this deploy). Create starts the
    execution with ``{"test_end", "trigger": "test-end", "duration_seconds", "test_start"}``; its ARN
    is the physical id and ``TestEnd`` / ``TestStart`` are attributes. A failed Delete never blocks the
    stack's deletion: the reason is reported, the status is SUCCESS.
    """
    try:
        result = handle(event)
        return respond(event, "SUCCESS", result, result.get("Reason", "ok"))
    except Exception as error:  # noqa: BLE001 - CloudFormation must always get an answer
        status = "SUCCESS" if event.get("RequestType") == "Delete" else "FAILED"
        return respond(event, status, {"PhysicalResourceId": event.get("PhysicalResourceId")},
                       f"{type(error).__name__}: {error}")


test_end_resource.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


def follow_test_end(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The test's self-ending execution, for a run that follows it instead of judging itself.

    Event: ``state_machine_arn``, ``execution_arn`` (the caller's own). Returns ``found`` (bool),
    ``status`` (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED), ``execution`` and, when finished,
    ``output`` (its parsed output) or ``error``/``cause``. The newest self-ending execution counts.
    """
    sfn = _client("stepfunctions")
    newest = None
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=event["state_machine_arn"]):
        for execution in page["executions"]:
            ours = execution["name"].startswith(EXECUTION_PREFIX) and execution["executionArn"] != event.get("execution_arn")
            if ours and (newest is None or execution["startDate"] > newest["startDate"]):
                newest = execution
    if newest is None:
        return {"found": False, "status": "NONE", "execution": None}
    described = sfn.describe_execution(executionArn=newest["executionArn"])
    result: dict[str, Any] = {"found": True, "status": described["status"], "execution": newest["executionArn"]}
    if described["status"] == "SUCCEEDED":
        result["output"] = json.loads(described.get("output") or "{}")
    elif described["status"] != "RUNNING":
        result["error"] = described.get("error") or described["status"]
        result["cause"] = (described.get("cause") or "")[:2000]
    return result
