"""``shadow-test``: run a shadow test's promotion workflow, show where it stands, guard the next deploy.

    shadow-test run    (--stack NAME | --state-machine ARN) [--region REGION] [--poll SECONDS] [--new]
                       [--quiet | --verbose]
    shadow-test status --stack NAME [--region REGION]
    shadow-test drift  --stack NAME [--app cdk.out] [--region REGION]

``run`` finds the stack's promotion workflow (the state machine shadow-constructs marked in the
deployed template). If an execution of it is RUNNING, it follows the newest one (e.g. the self-ending
``test-end-…`` execution waiting in ``WaitForTestEnd``). If the newest one already ended by promoting the shadow or
removing it (after the stack's last deploy), the test is over: it reports that run and exits with its code instead
of judging an endpoint without its shadow (a retried pipeline job; ``--new`` starts a run anyway). Otherwise it
starts one with input ``{}``.
It prints one line per judgement (a look's decision, score, minutes judged and first reason), then the verdict
report (the Markdown file the execution's output names) and the verdict, and exits with the verdict's code.
``--verbose`` also prints each state as it is entered (with the look ``WaitForNextLook`` waits for and the time
``WaitForTestEnd`` waits for): about 1,000 lines over a week of hourly looks. The default is ``--verbose`` on a
terminal and ``--quiet`` elsewhere (stdout not a terminal: a CI log, a pipe). A failed step is named in both.

``status`` shows the endpoint's live state (status, config, each variant's model, instance type and
count) beside what the deployed template declares (phase, variants, models), the pending end of the
test and the last verdict.

``drift`` is the pre-deploy guard: it reads the synthesized cloud assembly and tells whether
deploying it would put another model into the production variant than the one serving now, as
happens when the workflow promoted the shadow and the app still declares the SHADOW phase.

Every call goes to AWS through boto3 (credentials, region and ``AWS_ENDPOINT_URL`` from the usual
environment and profile). Failures are one line on stderr, never a traceback.

Exit codes:
  0    run: the shadow was promoted; status: shown; drift: deploying keeps the model serving in production
  1    run: the execution FAILED, TIMED_OUT or was ABORTED (its error and cause, and the failed step with its
       own, on stderr), or ended without a usable verdict; drift: deploying would put another model into
       production (or cannot tell)
  2    bad usage: wrong arguments, no region, stack not found, no (or several) promotion workflows,
       state machine not found, no cloud assembly or the stack not in it
  3    run: REJECT (the shadow was removed), or PROMOTE that a person declined
  4    run: INCONCLUSIVE
  5    AWS could not be used: unreachable endpoint, missing or invalid credentials, access denied,
       or another AWS error
  130  interrupted (Ctrl-C); an execution being followed keeps running in AWS
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shadow_runtime import looks as _looks

from .assembly import find_stack
from .aws import (
    EXIT_FAILED,
    EXIT_INCONCLUSIVE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    Aws,
    CliError,
    aws_failure,
    error_code,
    error_message,
    name_from_arn,
    one_line,
    parse_s3_uri,
    same_name,
)
from .stack import (
    DASHBOARD_ROLE,
    MODEL_TYPE,
    TEST_END_ROLE,
    DeployedStack,
    StackNotFound,
    declared_variants,
    endpoints_in,
    mark_of,
    marked,
    model_properties,
    production_variant,
    reference,
    resources_of,
    show,
)

PROG = "shadow-test"
WAIT_STATE = _looks.WAIT_STATE  # an execution given only a test_end waits there
LOOK_WAIT_STATE = _looks.LOOK_WAIT_STATE  # the self-ending execution waits there for its next look
INTERIM_CHOICE = _looks.INTERIM_CHOICE  # every judgement goes on there: its input is the Judge's output
FAILURE_STATE = "ReportFailure"  # a failed step is caught into it with $.failure (endpoint_update.WorkflowSteps)
if __doc__ is None:  # python -OO strips docstrings; the help text and exit codes are this module's docstring
    raise ImportError(f"{__name__} needs its docstring: run Python without -OO")
_DOC: str = __doc__
EXIT_CODES = "Exit codes:\n" + _DOC.split("Exit codes:\n", 1)[1]
#: What a test still INCONCLUSIVE in the end does (the workflow's ``undecided`` mark), as ``status`` says it.
UNDECIDED_TEXT = {"remove_shadow": "still INCONCLUSIVE in the end (after any extensions), the shadow is removed; "
                                   "production untouched: the test stops costing",
                  "keep": "still INCONCLUSIVE in the end, the shadow KEEPS RUNNING (and billing) until you end it "
                          "(on_inconclusive/after_extensions=KEEP)"}
#: What the workflow did, when its output predates the "action" field.
ACTION_OF_DECISION = {"PROMOTE": "promoted", "REJECT": "shadow_removed", "INCONCLUSIVE": "none"}
NOT_FOUND_CODES = frozenset({"StateMachineDoesNotExist", "InvalidArn", "ExecutionDoesNotExist"})


def say(text: str = "") -> None:
    print(text, flush=True)


# Small formatting helpers

def when(moment: Any) -> str:
    if isinstance(moment, datetime):
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(moment) if moment else "?"


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def until(text: Any) -> str:
    """``2026-12-08T10:00:00Z, in 6 d 23 h`` (or ``…, passed``) for an ISO time."""
    moment = parse_time(text)
    if moment is None:
        return str(text)
    seconds = int((moment - datetime.now(UTC)).total_seconds())
    if seconds <= 0:
        return f"{text}, passed"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days} d", f"{hours} h"] if days else [f"{hours} h", f"{minutes} min"] if hours else \
        [f"{minutes} min", f"{seconds} s"] if minutes else [f"{seconds} s"]
    return f"{text}, in {' '.join(parts)}"


def json_object(text: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def variant_text(kind: str, variant: dict[str, Any], model: str, now: dict[str | None, Any] | None = None) -> str:
    count, instance_type = variant.get("InitialInstanceCount"), variant.get("InstanceType")
    size = f"{show(count)} x {show(instance_type)}" if count is not None or instance_type else "serverless"
    current = (now or {}).get(variant.get("VariantName"))
    if current is not None and current != count:
        size += f" (now {current})"
    return f"{kind:<10} {variant.get('VariantName', '?')}: model {model}, {size}"


# Step Functions

def check_state_machine(sfn, arn: str) -> str:
    from botocore.exceptions import ClientError

    try:
        return sfn.describe_state_machine(stateMachineArn=arn)["name"]
    except ClientError as error:
        if error_code(error) in NOT_FOUND_CODES or "does not exist" in error_message(error).lower():
            raise CliError(f"state machine {arn} not found: {error_code(error)}: {error_message(error)}") from None
        raise


def executions(sfn, machine_arn: str, status: str | None = None):
    """The machine's executions, newest first (ListExecutions' order)."""
    filters = {"statusFilter": status} if status else {}
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine_arn, **filters):
        yield from page.get("executions", [])


def newest_running(sfn, machine_arn: str) -> tuple[dict[str, Any] | None, int]:
    running = list(executions(sfn, machine_arn, "RUNNING"))
    if not running:
        return None, 0
    return max(running, key=lambda e: e["startDate"]), len(running)


def acted_since(sfn, machine_arn: str, deployed: datetime | None) -> dict[str, Any] | None:
    """The newest execution, if it ended by acting on the endpoint (promoted it or removed the shadow) after the
    stack's last deploy: the test is over, and judging again would judge an endpoint without its shadow (a retried
    pipeline job, a second ``run``). Its DescribeExecution, with ``action``; else None."""
    newest = max(executions(sfn, machine_arn), key=lambda e: e["startDate"], default=None)
    if newest is None or newest["status"] != "SUCCEEDED":
        return None
    if deployed is not None and newest.get("stopDate") and newest["stopDate"] < deployed:
        return None  # deployed since: a new test (a self-ending one would be RUNNING)
    described = sfn.describe_execution(executionArn=newest["executionArn"])
    output = json_object(described.get("output")) or {}
    action = output.get("action") or ACTION_OF_DECISION.get(output.get("decision", ""), "")
    return {**described, "action": action} if action in ("promoted", "shadow_removed") else None


def new_events(sfn, execution_arn: str, after_id: int) -> list[dict[str, Any]]:
    """History events with an id above ``after_id``, oldest first.

    Asks newest first and stops paging (nextToken) at the first page that reaches events already
    seen, so following a long execution reads only what is new. Sorting by id keeps this right with a
    service that ignores ``reverseOrder``.
    """
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        request: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 500, "reverseOrder": True}
        if token:
            request["nextToken"] = token
        page = sfn.get_execution_history(**request)
        fresh = [event for event in page.get("events", []) if event.get("id", 0) > after_id]
        events.extend(fresh)
        token = page.get("nextToken")
        if not token or len(fresh) < len(page.get("events", [])):
            break
    return sorted({event["id"]: event for event in events}.values(), key=lambda event: event["id"])


def current_state(sfn, execution_arn: str) -> dict[str, Any] | None:
    """The stateEnteredEventDetails of the state a running execution entered last."""
    page = sfn.get_execution_history(executionArn=execution_arn, maxResults=25, reverseOrder=True)
    for event in sorted(page.get("events", []), key=lambda e: e.get("id", 0), reverse=True):
        if event.get("stateEnteredEventDetails"):
            return event["stateEnteredEventDetails"]
    return None


def look_of(entered: dict[str, Any] | None) -> dict[str, Any] | None:
    """The look a WaitForNextLook state waits for (its input's ``look``: number, looks, at, test_end)."""
    look = (json_object((entered or {}).get("input")) or {}).get("look")
    return look if isinstance(look, dict) and look.get("at") else None


def look_text(look: dict[str, Any]) -> str:
    """``look 2 of 168 at 2026-12-08T10:00:00Z, in 59 min 30 s (the last)``."""
    return f"look {look.get('number', '?')} of {look.get('looks', '?')} at {until(look['at'])}" + \
        (" (the last)" if look.get("final") else "")


def judged_text(entered: dict[str, Any] | None) -> str | None:
    """``look 2 of 168 (2026-12-08T10:00:00Z): INCONCLUSIVE, score 41.0 over 120 min: <first reason>`` for the state
    a judgement goes on to (``INTERIM_CHOICE``, its input the Judge's output: ``verdict``, ``look``, ``run``); None
    without a verdict in it."""
    state = json_object((entered or {}).get("input")) or {}
    verdict = state.get("verdict")
    if not isinstance(verdict, dict) or not verdict.get("decision"):
        return None
    run, look = state.get("run"), state.get("look")
    if isinstance(run, dict) and run.get("extensions"):
        what = f"judgement after extension {run['extensions']}"  # the end's judgement, on a longer window
    elif isinstance(look, dict) and look.get("number"):
        moment = ", ".join(str(p) for p in (look.get("at"), "the last" if look.get("final") else None) if p)
        what = f"look {look['number']} of {look.get('looks', '?')}" + (f" ({moment})" if moment else "")
    else:
        what = "judgement"
    text = f"{what}: {verdict['decision']}"
    if verdict.get("score") is not None:
        text += f", score {verdict['score']}"
    if verdict.get("minutes") is not None:
        text += f" over {verdict['minutes']} min"
    return text + (f": {one_line(verdict['summary'], 300)}" if verdict.get("summary") else "")


def test_end_of(execution: dict[str, Any], entered: dict[str, Any] | None = None) -> Any:
    """The time WaitForTestEnd waits for: the execution input's test_end (else the state's input's)."""
    for source in (execution.get("input"), (entered or {}).get("input")):
        value = (json_object(source) or {}).get("test_end")
        if value:
            return value
    return None


# run

def cmd_run(args: argparse.Namespace) -> int:
    aws = args.aws = Aws(args.region)
    sfn = aws.client("stepfunctions")
    deployed: datetime | None = None
    if args.state_machine:
        machine_arn = args.state_machine
        label = f"state machine {check_state_machine(sfn, machine_arn)}"
    else:
        stack = DeployedStack(aws, args.stack)
        logical, machine_arn = stack.workflow()
        label = f"promotion workflow {logical} of stack {stack.name} ({machine_arn.rsplit(':', 1)[-1]})"
        deployed = stack.description.get("LastUpdatedTime") or stack.description.get("CreationTime")
    running, count = newest_running(sfn, machine_arn)
    ended = None if running or args.new else acted_since(sfn, machine_arn, deployed)
    if ended:
        say(f"{label}: the test has ended: execution {ended['name']} {ended['status']} at {when(ended['stopDate'])} "
            f"({ended['action']}); not judging again (--new starts a new run)")
        args.execution_arn = ended["executionArn"]
        return conclude(aws, ended)
    if running:
        others = f"; {count - 1} more running, following the newest" if count > 1 else ""
        say(f"{label}: following execution {running['name']}, RUNNING since {when(running['startDate'])}{others}")
        execution_arn = running["executionArn"]
    else:
        name = f"shadow-test-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
        execution_arn = sfn.start_execution(stateMachineArn=machine_arn, name=name, input="{}")["executionArn"]
        say(f"{label}: started execution {name}")
    args.execution_arn = execution_arn
    verbose = args.verbose if args.verbose is not None else stdout_is_terminal()
    final = follow(sfn, execution_arn, args.poll, verbose=verbose)
    return conclude(aws, final)


def entered_text(execution: dict[str, Any], entered: dict[str, Any]) -> str:
    """The state entered, as ``--verbose`` shows it: its name, with the time ``WaitForTestEnd`` waits for and the look
    ``WaitForNextLook`` waits for."""
    name = entered.get("name")
    if name == WAIT_STATE and (end := test_end_of(execution, entered)):
        return f"{WAIT_STATE} (until {until(end)})"
    if name == LOOK_WAIT_STATE and (look := look_of(entered)):
        return f"{LOOK_WAIT_STATE} ({look_text(look)})"
    return str(name)


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (a person watching), not a file, a pipe or a CI log: ``run``'s default output."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def follow(sfn, execution_arn: str, poll: float, *, verbose: bool = True) -> dict[str, Any]:
    """Follow the execution until it ends, printing each judgement (``judged_text``) and a step's failure, and with
    ``verbose`` each state as it is entered; its final DescribeExecution, with ``failed_step`` (the step, its error
    and cause) when a step failed into the workflow's failure report."""
    last_id, current, failed_in, failed_step = 0, "", "", ""
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        for event in new_events(sfn, execution_arn, last_id):
            last_id = max(last_id, event["id"])
            if event["type"].endswith("Failed") and event["type"] != "ExecutionFailed":
                failed_in = current  # the state whose task failed (a retry may follow; the last failure counts)
            entered = event.get("stateEnteredEventDetails")
            if not entered:
                continue
            if entered.get("name") == FAILURE_STATE:
                failure = (json_object(entered.get("input")) or {}).get("failure") or {}
                failed_step = f"{failed_in or 'a step'} failed: " + (": ".join(
                    one_line(failure.get(k), 800) for k in ("Error", "Cause") if failure.get(k)) or "no error given")
                say(f"-> {FAILURE_STATE} ({failed_step})")
            elif verbose:
                say(f"-> {entered_text(described, entered)}")
            if entered.get("name") == INTERIM_CHOICE and (judged := judged_text(entered)):
                say(judged)
            current = entered.get("name") or current
        if described["status"] != "RUNNING":
            return {**described, "failed_step": failed_step} if failed_step else described
        time.sleep(poll)


def conclude(aws: Aws, described: dict[str, Any]) -> int:
    name, status = described.get("name", "?"), described["status"]
    if status != "SUCCEEDED":
        error, cause = described.get("error"), described.get("cause")
        detail = ": ".join(one_line(part) for part in (error, cause) if part) or "no error or cause given"
        step = f" ({described['failed_step']})" if described.get("failed_step") else ""
        raise CliError(f"execution {name} {status}: {detail}{step}", EXIT_FAILED)
    output = json_object(described.get("output"))
    decision = (output or {}).get("decision")
    if output is None or decision not in ACTION_OF_DECISION:
        raise CliError(f"execution {name} SUCCEEDED without a verdict in its output: "
                       f"{one_line(described.get('output'), 300)}", EXIT_FAILED)
    action = output.get("action") or ACTION_OF_DECISION[decision]
    report = output.get("report")
    say()
    print_report(aws, report)
    score = output.get("score")
    summary = f"execution {name} SUCCEEDED: decision {decision}" + (f" (score {score})" if score is not None else "")
    summary += f", action {action}" + (f": {one_line(output['outcome'])}" if output.get("outcome") else "")
    say(summary)
    if decision == "INCONCLUSIVE":
        return EXIT_INCONCLUSIVE
    if decision == "REJECT" or action == "declined":
        return EXIT_REJECTED
    if action == "promoted":
        return EXIT_OK
    raise CliError(f"execution {name}: decision PROMOTE but action {action!r}: the shadow was not promoted", EXIT_FAILED)


def print_report(aws: Aws, report: Any) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    if not report:
        say("report: none in the execution's output")
        return
    location = parse_s3_uri(str(report))
    if location is None:
        say(f"report: {report} (not an s3:// URI, not read)")
        return
    try:
        body = aws.client("s3").get_object(Bucket=location[0], Key=location[1])["Body"].read()
    except ClientError as error:
        say(f"report: {report} could not be read: {error_code(error) or 'error'}: {one_line(error_message(error))}")
        return
    except BotoCoreError as error:
        say(f"report: {report} could not be read: {one_line(error)}")
        return
    say(body.decode("utf-8", errors="replace").rstrip())
    say()
    say(f"report: {report}")


# status

def cmd_status(args: argparse.Namespace) -> int:
    aws = args.aws = Aws(args.region)
    stack = DeployedStack(aws, args.stack)
    template = stack.template
    endpoints, workflows = endpoints_in(template), stack.workflows()
    if not endpoints and not workflows:
        raise CliError(f"stack {stack.name} has no shadow-constructs endpoint or promotion workflow "
                       f"(no resource marked in its deployed template)")
    say(f"Stack {stack.name} in {aws.region}: {stack.status}")
    for logical, resource in endpoints:
        show_endpoint(aws, stack, logical, resource)
    for line in timer_lines(template):
        say(line)
    for logical, resource in marked(template, DASHBOARD_ROLE):
        name = stack.physical_id(logical)
        if name:
            shown = "production and shadow side by side" if (mark_of(resource) or {}).get("comparing", True) \
                else "production alone"
            say(f"Dashboard {name} ({shown}): https://{aws.region}.console.aws.amazon.com/cloudwatch/home?"
                f"region={aws.region}#dashboards/dashboard/{name}")
    if not workflows:
        say("Promotion workflow: none in this stack")
    for logical, machine_arn in workflows:
        show_workflow(aws, logical, machine_arn)
        undecided = (mark_of(resources_of(template).get(logical, {})) or {}).get("undecided")
        if undecided in UNDECIDED_TEXT:
            say(f"  if undecided  {UNDECIDED_TEXT[undecided]}")
    return EXIT_OK


def timer_lines(template: dict[str, Any]) -> list[str]:
    """The self-ending timers the template declares (the test-end execution they start is the pending end)."""
    return [f"Self-ending timer {logical} ({resource.get('Type')}): starts the workflow's test-end execution"
            for logical, resource in marked(template, TEST_END_ROLE)]


def show_endpoint(aws: Aws, stack: DeployedStack, logical: str, resource: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    sagemaker = aws.client("sagemaker")
    name = stack.endpoint_name(logical, resource)
    say(f"Endpoint {name or '(not deployed)'} ({logical})")
    live_models: dict[str | None, str] = {}  # by VariantName, which a variant may lack
    if name:
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=name)
        except ClientError as error:
            if "Could not find" not in error_message(error):
                raise
            endpoint = None
            say(f"  live      not found: {one_line(error_message(error))}")
        if endpoint is not None:
            config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
            counts = {v.get("VariantName"): v.get("CurrentInstanceCount")
                      for v in [*endpoint.get("ProductionVariants", []), *endpoint.get("ShadowProductionVariants", [])]}
            say(f"  live      {endpoint.get('EndpointStatus')} on config {endpoint['EndpointConfigName']}"
                + (f" ({one_line(endpoint['FailureReason'])})" if endpoint.get("FailureReason") else ""))
            for kind, variants in (("production", config.get("ProductionVariants") or []),
                                   ("shadow", config.get("ShadowProductionVariants") or [])):
                for variant in variants:
                    live_models[variant.get("VariantName")] = variant.get("ModelName", "?")
                    say("    " + variant_text(kind, variant, variant.get("ModelName", "?"), counts))
                if kind == "shadow" and not variants:
                    say("    shadow     none")
    mark = mark_of(resource) or {}
    say(f"  template  phase {mark.get('phase') or 'not marked'}")
    production, shadows = declared_variants(stack.template, resource)
    declared_production: dict[str | None, str] = {}
    for kind, variants in (("production", production), ("shadow", shadows)):
        for variant in variants:
            model_value = variant.get("ModelName")
            physical = stack.model_name(model_value)
            match = next((m for m in live_models.values() if same_name(m, physical)), None)
            model = match or physical or show(model_value)
            target = reference(model_value, "ModelName")
            if target and physical:
                model += f" ({target})"
            if kind == "production":
                declared_production[variant.get("VariantName")] = physical or show(model_value)
            say("    " + variant_text(kind, variant, model))
        if kind == "shadow" and not variants:
            say("    shadow     none")
    for variant_name, declared in declared_production.items():
        serving = live_models.get(variant_name)
        if serving and not same_name(serving, declared):
            say(f"  note      production variant {variant_name} serves {serving}, the deployed template declares "
                f"{declared} (changed since the last deploy, e.g. by the promotion workflow): deploy the phase it left; "
                f"`{PROG} drift` checks before a deploy")


def show_workflow(aws: Aws, logical: str, machine_arn: str) -> None:
    sfn = aws.client("stepfunctions")
    say(f"Promotion workflow {logical} ({machine_arn})")
    waiting = False
    for execution in executions(sfn, machine_arn, "RUNNING"):
        entered = current_state(sfn, execution["executionArn"])
        state = (entered or {}).get("name", "?")
        if state == WAIT_STATE:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            end = test_end_of(described, entered)
            say(f"  pending end   {until(end) if end else '?'} (execution {execution['name']} waits in {WAIT_STATE})")
            waiting = True
        elif state == LOOK_WAIT_STATE:
            look = look_of(entered)
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            end = test_end_of(described, entered)
            say(f"  next look     {look_text(look) if look else '?'} (execution {execution['name']} waits in "
                f"{LOOK_WAIT_STATE})")
            say(f"  pending end   {until(end) if end else '?'} at the latest (a PROMOTE or REJECT at a look ends it)")
            waiting = True
        else:
            say(f"  running       execution {execution['name']} in state {state}, since {when(execution['startDate'])}")
    if not waiting:
        say(f"  pending end   none (no execution waits in {WAIT_STATE} or {LOOK_WAIT_STATE})")
    finished = next((e for e in executions(sfn, machine_arn) if e.get("status") != "RUNNING"), None)
    if finished is None:
        say("  last verdict  none (no finished execution)")
        return
    described = sfn.describe_execution(executionArn=finished["executionArn"])
    status, stopped = described["status"], when(described.get("stopDate"))
    head = f"  last verdict  {status} {stopped} (execution {described.get('name', finished['name'])})"
    if status != "SUCCEEDED":
        detail = ": ".join(one_line(p, 200) for p in (described.get("error"), described.get("cause")) if p)
        say(f"{head}: {detail or 'no error given'}")
        return
    output = json_object(described.get("output")) or {}
    decision = output.get("decision", "none")
    action = output.get("action") or ACTION_OF_DECISION.get(decision, "?")
    score = f" (score {output['score']})" if output.get("score") is not None else ""
    say(f"{head}: decision {decision}{score}, action {action}, report {output.get('report') or 'none'}")


# drift

def cmd_drift(args: argparse.Namespace) -> int:
    synthesized = find_stack(Path(args.app), args.stack)
    template = synthesized.template()
    endpoints = endpoints_in(template)
    if not endpoints:
        raise CliError(f"stack {synthesized.display_name} in {args.app} declares no shadow-constructs endpoint")
    aws = args.aws = Aws(args.region or synthesized.region)
    what = f"{args.app}'s {synthesized.stack_name}"
    try:
        deployed = DeployedStack(aws, synthesized.stack_name)
    except StackNotFound:
        say(f"no drift: stack {synthesized.stack_name} does not exist in {aws.region} yet (first deploy, nothing serves)")
        return EXIT_OK
    results = [endpoint_drift(aws, deployed, template, logical, resource, what) for logical, resource in endpoints]
    for _, line in results:
        say(line)
    return EXIT_FAILED if any(changes for changes, _ in results) else EXIT_OK


def planned_model(deployed: DeployedStack, template: dict[str, Any], value: Any) -> tuple[str | None, str, str]:
    """What the synthesized ModelName ``value`` becomes once deployed: (name or None if new/unknown, label, why)."""
    if isinstance(value, str):
        return value, value, ""
    logical = reference(value, "ModelName")
    synthesized = resources_of(template).get(logical or "")
    if not logical or not synthesized or synthesized.get("Type") != MODEL_TYPE:
        return None, show(value), f"cannot tell which model ModelName {show(value)} names"
    before = resources_of(deployed.template).get(logical)
    physical = deployed.physical_id(logical)
    if before is None or physical is None or before.get("Type") != MODEL_TYPE:
        return None, logical, f"a NEW model {logical} (not in the deployed stack)"
    if model_properties(before) != model_properties(synthesized):
        return None, logical, f"a NEW model {logical} (its properties changed since the last deploy, so it is replaced)"
    name = name_from_arn(physical, "model")
    return name, f"{name} ({logical})", ""


def endpoint_drift(aws: Aws, deployed: DeployedStack, template: dict[str, Any], logical: str,
                   resource: dict[str, Any], what: str) -> tuple[bool, str]:
    from botocore.exceptions import ClientError

    variant = production_variant(template, resource)
    if variant is None:
        return True, (f"drift: cannot tell the production model deploying {what} gives endpoint {logical}: "
                      f"its endpoint config is not in the template or has no production variant")
    variant_name = variant.get("VariantName")
    literal = (resource.get("Properties") or {}).get("EndpointName")
    if isinstance(literal, str):
        name = literal
    elif deployed.physical_id(logical):
        name = deployed.endpoint_name(logical, resource)
    else:
        return False, f"no drift: deploying {what} creates endpoint {logical} (nothing serves there yet)"
    sagemaker = aws.client("sagemaker")
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as error:
        if "Could not find" not in error_message(error):
            raise
        return False, f"no drift: endpoint {name} does not exist in {aws.region} yet (first deploy, nothing serves)"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    live = config.get("ProductionVariants") or []
    serving = next((v for v in live if v.get("VariantName") == variant_name), None)
    where = f"production variant {variant_name} of endpoint {name}"
    if serving is None:
        names = ", ".join(f"{v.get('VariantName')} ({v.get('ModelName')})" for v in live) or "none"
        return True, f"drift: deploying {what} would serve {where}, which does not exist now (production variants: {names})"
    now = serving.get("ModelName", "?")
    planned, label, why = planned_model(deployed, template, variant.get("ModelName"))
    hint = phase_hint(deployed, template, resource, now)
    if planned is None:
        return True, f"drift: deploying {what} would put {why} into {where}, replacing {now}, which serves now{hint}"
    if same_name(planned, now):
        return False, f"no drift: deploying {what} keeps model {now} in {where}"
    return True, f"drift: deploying {what} would put model {label} into {where}, which serves {now} now{hint}"


def phase_hint(deployed: DeployedStack, template: dict[str, Any], resource: dict[str, Any], now: str) -> str:
    phase = (mark_of(resource) or {}).get("phase")
    _, shadows = declared_variants(template, resource)
    for shadow in shadows:
        name, _, _ = planned_model(deployed, template, shadow.get("ModelName"))
        if same_name(name, now):
            return (f" (the template declares phase {phase or '?'} with that model as its shadow: the workflow promoted "
                    f"it; deploy the PROMOTED phase)")
    return f" (the template declares phase {phase})" if phase else ""


# The command line

class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (exit 2)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    description = _DOC.split("Exit codes:", 1)[0].replace("``", "").strip()
    parser = Parser(prog=PROG, description=description, epilog=EXIT_CODES, formatter_class=formatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,status,drift}", parser_class=Parser)
    run = commands.add_parser("run", help="run (or follow) the promotion workflow to its verdict",
                              description="Follow the newest RUNNING execution of the promotion workflow, or start "
                                          "one with input {}; print each judgement (a look's verdict; with --verbose "
                                          "every state as well), then the verdict report and the verdict.",
                              epilog=EXIT_CODES, formatter_class=formatter)
    target = run.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="the deployed stack holding the promotion workflow")
    target.add_argument("--state-machine", metavar="ARN", help="the state machine to run, instead of a stack's")
    run.add_argument("--poll", type=seconds, default=10.0, metavar="SECONDS",
                     help="seconds between two looks at the execution (default: 10)")
    run.add_argument("--new", action="store_true",
                     help="start a new run even when the newest one already promoted or removed the shadow")
    output = run.add_mutually_exclusive_group()
    output.add_argument("--quiet", dest="verbose", action="store_false", default=None,
                        help="print one line per judgement (each look's verdict), the verdict and errors, not each "
                             "state (default when stdout is not a terminal: a CI log, a pipe)")
    output.add_argument("--verbose", dest="verbose", action="store_true", default=None,
                        help="print every state as it is entered as well (default on a terminal)")
    status = commands.add_parser("status", help="the endpoint's live state beside the stack's template, "
                                                "the pending end and the last verdict",
                                 description="Show the live endpoint, what the deployed template declares, the "
                                             "pending end of the test and the last verdict.",
                                 epilog=EXIT_CODES, formatter_class=formatter)
    status.add_argument("--stack", required=True, help="the deployed stack")
    drift = commands.add_parser("drift", help="would deploying the synthesized app change the production model?",
                                description="Compare the production model the synthesized template would deploy "
                                            "with the one serving now (the pre-deploy guard of a pipeline).",
                                epilog=EXIT_CODES, formatter_class=formatter)
    drift.add_argument("--stack", required=True, help="the stack's name or display name in the cloud assembly")
    drift.add_argument("--app", default="cdk.out", metavar="CDK_OUT",
                       help="the synthesized cloud assembly folder (default: cdk.out)")
    for command in (run, status, drift):
        command.add_argument("--region", help="AWS region (default: the environment's or profile's; for drift, the "
                                              "stack's environment if it names one)" if command is drift else
                                              "AWS region (default: the environment's or profile's)")
    run.set_defaults(handler=cmd_run)
    status.set_defaults(handler=cmd_status)
    drift.set_defaults(handler=cmd_drift)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else EXIT_USAGE)
    args.aws, args.execution_arn = None, None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return args.handler(args)
    except CliError as error:
        failure = error
    except (BotoCoreError, ClientError) as error:
        failure = aws_failure(error, args.aws.region if args.aws else None)
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit flush from failing again
        return EXIT_FAILED
    except KeyboardInterrupt:
        follow_note = f"; execution {args.execution_arn} keeps running in AWS" if args.execution_arn else ""
        print(f"{PROG}: interrupted{follow_note}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    print(f"{PROG}: {failure.message}", file=sys.stderr, flush=True)
    return failure.code


if __name__ == "__main__":
    sys.exit(main())
