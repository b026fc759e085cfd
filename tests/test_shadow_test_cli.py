"""`shadow-test run | status | drift` against the local emulator: every exit code, the output, one-line failures.

One emulator (``python -m shadow_emulator``) serves the module; small stacks shaped like
shadow-constructs' (marked state machines whose outputs follow the workflow's contract, models, an
endpoint config with a shadow variant, an endpoint) are deployed into it with CreateStack. The CLI
runs in-process through ``main(argv)`` with the environment pointing at the emulator (made-up
credentials, no profile), and once as ``python -m shadow_cli.shadow_test`` to prove no traceback.
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
from botocore.exceptions import ClientError

from shadow_cli import shadow_test
from shadow_cli.aws import CliError, aws_failure
from shadow_cli.shadow_test import main
from shadow_emulator.ports import free_port, port_in_use
from tests.shadow_test_stacks import (
    REPORTS_BUCKET,
    ROLE_ARN,
    ROLE_TRUST,
    endpoint_resources,
    template,
    verdict,
    workflow,
    write_assembly,
)

pytestmark = pytest.mark.outer  # the outer loop (make test-fast skips it): the emulator server

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
REPORT_MD = "# Shadow test verdict: PROMOTE\n\n| metric | production | shadow |\n|---|---|---|\n| ModelLatency p99 | 12 ms | 11 ms |\n"
CHURN_ENDPOINT = "Churn-Shadow-Test"


def report_uri(name: str) -> str:
    return f"s3://{REPORTS_BUCKET}/shadow-tests/{name}/2026-12-01T10:00:00Z/verdict.md"


#: The judgements of the "Looks" stack's workflow, one per look: (decision, score, first reason); the last is the end.
LOOKS = [("INCONCLUSIVE", 41.0, "too little traffic yet:\n60 of 120 paired minutes"),
         ("INCONCLUSIVE", 63.5, "ModelLatency p99 not yet within the margin"),
         ("PROMOTE", 97.5, "the shadow is as fast and as right as production")]
#: When the looks fall: all passed, so the workflow's waits end at once.
LOOK_TIMES = [(datetime.now(UTC) - timedelta(hours=len(LOOKS) - k)).strftime("%Y-%m-%dT%H:%M:%SZ") for k in range(len(LOOKS))]


def looks_workflow() -> dict:
    """A promotion workflow judging at looks as the self-ending execution does, with its state names: each look is
    planned, waited for, judged (a Pass giving the look's planned verdict) and goes on at InterimLook?: to the next
    look while INCONCLUSIVE before the last one, else to the verdict."""
    count = len(LOOKS)
    looks = {f"Look{k}": {"Type": "Pass", "ResultPath": "$.look", "Next": shadow_test.LOOK_WAIT_STATE, "Result": {
        "number": k, "looks": count, "at": LOOK_TIMES[k - 1], "minutes": 60 * k, "final": k == count,
        "planned": {"decision": decision, "score": score, "minutes": 60 * k, "summary": reason}}}
        for k, (decision, score, reason) in enumerate(LOOKS, 1)}
    states = {
        "StartLooks": {"Type": "Pass", "Result": {"number": 0}, "ResultPath": "$.look", "Next": "PlanLook"},
        "PlanLook": {"Type": "Choice", "Default": "Look1", "Choices": [
            {"Variable": "$.look.number", "NumericEquals": k - 1, "Next": f"Look{k}"} for k in range(2, count + 1)]},
        **looks,
        shadow_test.LOOK_WAIT_STATE: {"Type": "Wait", "TimestampPath": "$.look.at", "Next": "LookWindow"},
        "LookWindow": {"Type": "Pass", "Next": "Judge"},
        "Judge": {"Type": "Pass", "InputPath": "$.look.planned", "ResultPath": "$.verdict",
                  "Next": shadow_test.INTERIM_CHOICE},
        shadow_test.INTERIM_CHOICE: {"Type": "Choice", "Default": "PublishVerdict", "Choices": [{"And": [
            {"Variable": "$.look.final", "BooleanEquals": False},
            {"Variable": "$.verdict.decision", "StringEquals": "INCONCLUSIVE"}], "Next": "PlanLook"}]},
        "PublishVerdict": {"Type": "Pass", "Next": "Result"},
        "Result": {"Type": "Pass", "Result": verdict("PROMOTE", "promoted", report_uri("churn"), score=97.5), "End": True},
    }
    resource = workflow()
    resource["Properties"]["DefinitionString"] = json.dumps({"StartAt": "StartLooks", "States": states})
    return resource


#: Stack name -> resources. "Churn" also holds the reports bucket, so it is created first.
STACKS = {
    "Churn": {"Reports": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": REPORTS_BUCKET}},
              "Promotion": workflow(verdict("PROMOTE", "promoted", report_uri("churn"), score=97.5)),
              "Dashboard": {"Type": "AWS::CloudWatch::Dashboard",
                            "Properties": {"DashboardName": "churn-shadow-test", "DashboardBody": '{"widgets": []}'},
                            "Metadata": {"shadow-constructs": {"role": "dashboard", "endpoint": "Stack/Churn",
                                                               "comparing": True}}},
              **endpoint_resources(endpoint_name=CHURN_ENDPOINT)},
    "Rejected": {"Promotion": workflow(verdict("REJECT", "shadow_removed", report_uri("rejected"), score=12.0))},
    "Declined": {"Promotion": workflow(verdict("PROMOTE", "declined", report_uri("churn")))},
    "Ended": {"Promotion": workflow(verdict("REJECT", "shadow_removed", report_uri("churn"), score=20.0))},
    "Inconclusive": {"Promotion": workflow(verdict("INCONCLUSIVE", "none", report_uri("churn"), score=60.0),
                                           undecided="keep")},
    "Legacy": {"Promotion": workflow(verdict("REJECT", None, report_uri("churn")))},  # output without "action"
    "Failing": {"Promotion": workflow(fail=("SageMaker.ValidationException", "Could not find endpoint\n'churn'."))},
    "TimingOut": {"Promotion": workflow(timeout_seconds=1)},
    "Aborting": {"Promotion": workflow(verdict("PROMOTE", "promoted", report_uri("churn")))},
    "Unmarked": {"Machine": workflow(verdict("PROMOTE", "promoted", report_uri("churn")), marked=False)},
    "Twice": {"First": workflow(verdict("PROMOTE", "promoted", report_uri("churn"))),
              "Second": workflow(verdict("REJECT", "shadow_removed", report_uri("churn")))},
    "Drift": endpoint_resources(),  # no EndpointName: the CLI recovers it from the physical ARN
    "Looks": {"Promotion": looks_workflow()},
}


class Emulator:
    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        with log_path.open("w") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "shadow_emulator", "--port", str(self.port)],
                                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while not self.ready():
            assert time.monotonic() < deadline, f"the emulator did not start; see {log_path}"
            time.sleep(0.1)
        self.session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                             region_name=REGION)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            lines = self.log_path.read_text(errors="replace").strip().splitlines() or ["no output"]
            raise AssertionError(f"the emulator stopped (exit code {self.process.returncode}): {lines[-1]}")
        if not port_in_use("localhost", self.port):
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/_shadow_emulator/health", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.url)

    def set_clock(self, offset_seconds: float) -> None:
        """Move the emulator's clock (its Wait states end by it)."""
        request = urllib.request.Request(f"{self.url}/_shadow_emulator/clock", method="POST",
                                         data=json.dumps({"offset_seconds": offset_seconds}).encode())
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    emulator = Emulator(tmp_path_factory.mktemp("emulator") / "emulator.log")
    try:
        emulator.client("iam").create_role(RoleName=ROLE_ARN.split("/")[-1], AssumeRolePolicyDocument=json.dumps(ROLE_TRUST))
        cloudformation = emulator.client("cloudformation")
        for name, resources in STACKS.items():
            cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template(resources)))
            assert cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        emulator.client("s3").put_object(Bucket=REPORTS_BUCKET, Key=report_uri("churn").split("/", 3)[3],
                                         Body=REPORT_MD.encode())
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path, request):
    """The CLI sees the emulator only: made-up credentials, no profile, no instance metadata."""
    for key in [key for key in os.environ if key.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    if "emulator" in request.fixturenames:
        monkeypatch.setenv("AWS_ENDPOINT_URL", request.getfixturevalue("emulator").url)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("shadow-test: ")
    return lines[0]


def machine_of(emulator, stack: str, logical: str = "Promotion") -> str:
    return emulator.client("cloudformation").describe_stack_resource(
        StackName=stack, LogicalResourceId=logical)["StackResourceDetail"]["PhysicalResourceId"]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def start_test_end(emulator, stack: str, seconds: float, name: str = "test-end-0a1b2c3d") -> str:
    """The self-ending execution as the test-end timer starts it: waiting in WaitForTestEnd until then."""
    end = iso(datetime.now(UTC) + timedelta(seconds=seconds))
    arn = emulator.client("stepfunctions").start_execution(
        stateMachineArn=machine_of(emulator, stack), name=name,
        input=json.dumps({"test_end": end, "trigger": "test-end", "duration_seconds": 604800}))["executionArn"]
    wait_for_state(emulator, arn, "WaitForTestEnd")
    return arn


def wait_for_state(emulator, execution_arn: str, state: str) -> None:
    sfn = emulator.client("stepfunctions")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=execution_arn)["events"]
        if any((e.get("stateEnteredEventDetails") or {}).get("name") == state for e in events):
            return
        time.sleep(0.05)
    raise AssertionError(f"{execution_arn} never entered {state}")


# run: every exit code

def test_run_starts_the_workflow_and_prints_states_report_and_verdict_exit_0(emulator, capsys):
    code, out, err = cli(capsys, "run", "--stack", "Churn", "--poll", "0.1", "--verbose")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("promotion workflow Promotion of stack Churn (Churn-Promotion-")
    assert ": started execution shadow-test-" in lines[0]
    assert lines[1:4] == ["-> WaitForTestEnd?", "-> Setup", "-> Judge"]
    assert REPORT_MD.strip() in out  # the Markdown report, read from S3
    assert f"report: {report_uri('churn')}" in lines
    assert lines[-1].startswith("execution shadow-test-") and lines[-1].endswith(
        "SUCCEEDED: decision PROMOTE (score 97.5), action promoted: promote (promoted)")


@pytest.mark.parametrize(("stack", "code", "summary"), [
    ("Rejected", 3, "decision REJECT (score 12.0), action shadow_removed"),
    ("Declined", 3, "decision PROMOTE (score 91.5), action declined"),
    ("Inconclusive", 4, "decision INCONCLUSIVE (score 60.0), action none"),
    ("Legacy", 3, "decision REJECT (score 91.5), action shadow_removed"),  # no "action": derived from the decision
])
def test_run_exit_codes_of_the_verdicts(emulator, capsys, stack, code, summary):
    exit_code, out, err = cli(capsys, "run", "--stack", stack, "--poll", "0.1")
    assert (exit_code, err) == (code, "")
    assert summary in out.splitlines()[-1]


def test_run_after_the_test_ended_reports_that_run_instead_of_judging_again(emulator, capsys):
    """A retried pipeline job (or a second run) after the shadow was removed: the newest run already acted, so run
    reports it with its exit code and starts nothing; --new starts a run anyway; an INCONCLUSIVE run (nothing acted)
    does not count as an end."""
    sfn, machine = emulator.client("stepfunctions"), machine_of(emulator, "Ended")

    def runs() -> list[str]:
        return [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]

    assert cli(capsys, "run", "--stack", "Ended", "--poll", "0.1")[0] == 3
    first, = runs()
    code, out, err = cli(capsys, "run", "--stack", "Ended", "--poll", "0.1")
    assert (code, err, runs()) == (3, "", [first])
    lines = out.splitlines()
    assert f": the test has ended: execution {first} SUCCEEDED at " in lines[0]
    assert lines[0].endswith("(shadow_removed); not judging again (--new starts a new run)")
    assert lines[-1] == f"execution {first} SUCCEEDED: decision REJECT (score 20.0), action shadow_removed: " \
        "reject (shadow_removed)"
    code, out, _ = cli(capsys, "run", "--stack", "Ended", "--poll", "0.1", "--new")
    assert code == 3 and ": started execution shadow-test-" in out.splitlines()[0] and len(runs()) == 2
    assert cli(capsys, "run", "--stack", "Inconclusive", "--poll", "0.1")[0] == 4
    code, out, _ = cli(capsys, "run", "--stack", "Inconclusive", "--poll", "0.1")
    assert code == 4 and ": started execution shadow-test-" in out.splitlines()[0]


def test_an_unreadable_report_prints_its_uri_and_why(emulator, capsys):
    code, out, _ = cli(capsys, "run", "--stack", "Rejected", "--poll", "0.1")
    assert code == 3
    line, = [line for line in out.splitlines() if line.startswith("report: ")]
    assert line.startswith(f"report: {report_uri('rejected')} could not be read: NoSuchKey: ")


def test_a_failed_execution_is_exit_1_with_error_and_cause_on_one_line(emulator, capsys):
    code, out, err = cli(capsys, "run", "--stack", "Failing", "--poll", "0.1", "--verbose")
    assert code == 1
    assert "-> Judge" in out.splitlines()
    line = one_error_line(err)
    assert line.startswith("shadow-test: execution shadow-test-")
    assert line.endswith(" FAILED: SageMaker.ValidationException: Could not find endpoint 'churn'.")


def test_a_timed_out_execution_is_exit_1(emulator, capsys):
    code, out, err = cli(capsys, "run", "--stack", "TimingOut", "--poll", "0.1")
    assert code == 1
    assert " TIMED_OUT" in one_error_line(err)


class WhenRunPauses:
    """``time`` as run sees it: ``action`` happens at each of its pauses between two looks. The first pause comes
    after run chose the execution to follow, so the test acts only then (a timer could fire before run looked,
    on a loaded machine)."""

    def __init__(self, action) -> None:
        self.action = action

    def __getattr__(self, name: str):
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        self.action()
        time.sleep(seconds)


def test_run_follows_the_running_test_end_execution_and_says_so(emulator, capsys, monkeypatch):
    """The self-ending execution waits a week in WaitForTestEnd; run follows it and the emulated clock jumps there."""
    end = iso(datetime.now(UTC) + timedelta(days=7))
    execution = start_test_end(emulator, "Churn", 7 * 86400, name="test-end-5eed")
    sfn = emulator.client("stepfunctions")
    safety = threading.Timer(30.0, lambda: sfn.stop_execution(executionArn=execution))  # never hang the suite
    monkeypatch.setattr(shadow_test, "time", WhenRunPauses(lambda: emulator.set_clock(7 * 86400 + 60)))
    safety.start()
    try:
        code, out, err = cli(capsys, "run", "--stack", "Churn", "--poll", "0.1", "--verbose")
    finally:
        safety.cancel()
        emulator.set_clock(0)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    started = sfn.describe_execution(executionArn=execution)["startDate"]
    assert lines[0].endswith(f": following execution test-end-5eed, RUNNING since {started.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
    assert lines[1:5] == ["-> WaitForTestEnd?", f"-> WaitForTestEnd (until {end}, in 6 d 23 h)", "-> Setup", "-> Judge"]
    assert lines[-1] == "execution test-end-5eed SUCCEEDED: decision PROMOTE (score 97.5), action promoted: promote (promoted)"


def test_an_aborted_execution_is_exit_1(emulator, capsys, monkeypatch):
    execution = start_test_end(emulator, "Aborting", 3600, name="test-end-ab0r7")
    sfn = emulator.client("stepfunctions")

    def stop() -> None:
        if sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
            sfn.stop_execution(executionArn=execution)

    monkeypatch.setattr(shadow_test, "time", WhenRunPauses(stop))
    code, out, err = cli(capsys, "run", "--stack", "Aborting", "--poll", "0.1", "--verbose")
    assert code == 1
    assert "-> WaitForTestEnd (until " in out and ", in 59 min " in out
    assert one_error_line(err) == "shadow-test: execution test-end-ab0r7 ABORTED: no error or cause given"


# run: what it prints

LOOK_LINES = [f"look 1 of 3 ({LOOK_TIMES[0]}): INCONCLUSIVE, score 41.0 over 60 min: too little traffic yet: 60 of 120 "
              "paired minutes",
              f"look 2 of 3 ({LOOK_TIMES[1]}): INCONCLUSIVE, score 63.5 over 120 min: ModelLatency p99 not yet within "
              "the margin",
              f"look 3 of 3 ({LOOK_TIMES[2]}, the last): PROMOTE, score 97.5 over 180 min: the shadow is as fast and as "
              "right as production"]
VERDICT_LINE = "SUCCEEDED: decision PROMOTE (score 97.5), action promoted: promote (promoted)"


def test_quiet_run_prints_each_look_judged_and_the_verdict_not_each_state(emulator, capsys):
    # GIVEN a workflow judging at three looks (INCONCLUSIVE, INCONCLUSIVE, then PROMOTE at the last)
    # WHEN run follows it with --quiet
    code, out, err = cli(capsys, "run", "--stack", "Looks", "--poll", "0.1", "--new", "--quiet")
    # THEN a line says what it follows, one line per look judged, then the report and the verdict; no state
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert ": started execution shadow-test-" in lines[0]
    assert lines[1:5] == [*LOOK_LINES, ""]
    assert REPORT_MD.strip() in out and f"report: {report_uri('churn')}" in lines
    assert lines[-1].startswith("execution shadow-test-") and lines[-1].endswith(VERDICT_LINE)
    assert not [line for line in lines if line.startswith("-> ")]


def test_verbose_run_prints_every_state_and_each_look_judged(emulator, capsys):
    code, out, _ = cli(capsys, "run", "--stack", "Looks", "--poll", "0.1", "--new", "--verbose")
    assert code == 0
    lines = out.splitlines()
    states = [line for line in lines if line.startswith("-> ")]
    assert states[:4] == ["-> StartLooks", "-> PlanLook", "-> Look1", f"-> WaitForNextLook (look 1 of 3 at {LOOK_TIMES[0]}, "
                                                                       "passed)"]
    assert states.count("-> Judge") == 3 and states[-2:] == ["-> PublishVerdict", "-> Result"]
    # each judgement follows the state it goes on to, as in the quiet output
    assert [lines[i + 1] for i, line in enumerate(lines) if line == "-> InterimLook?"] == LOOK_LINES
    assert lines[-1].endswith(VERDICT_LINE)


@pytest.mark.parametrize(("terminal", "states_shown"), [(True, True), (False, False)])
def test_run_is_verbose_on_a_terminal_and_quiet_elsewhere(emulator, capsys, monkeypatch, terminal, states_shown):
    """A person at a terminal watches each state; a CI log (stdout not a terminal) gets the looks and the verdict."""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)
    code, out, _ = cli(capsys, "run", "--stack", "Looks", "--poll", "0.1", "--new")
    assert code == 0
    lines = out.splitlines()
    assert ("-> Judge" in lines) is states_shown
    assert [line for line in lines if line.startswith("look ")] == LOOK_LINES


def test_a_judgement_is_one_line_with_its_look_score_minutes_and_first_reason():
    def entered(state: dict) -> dict:
        return {"name": shadow_test.INTERIM_CHOICE, "input": json.dumps(state)}

    verdict_ = {"decision": "REJECT", "score": 12.0, "minutes": 90, "summary": "errors\n  5x production's",
                "report_markdown": "s3://r/verdict.md"}
    look = {"number": 2, "looks": 168, "at": "2026-12-08T10:00:00Z", "final": False}
    assert shadow_test.judged_text(entered({"verdict": verdict_, "look": look})) == \
        "look 2 of 168 (2026-12-08T10:00:00Z): REJECT, score 12.0 over 90 min: errors 5x production's"
    # judged once (no looks), or again after an extension of the window at the end
    assert shadow_test.judged_text(entered({"verdict": {"decision": "PROMOTE"}, "run": {"extensions": 0}})) == \
        "judgement: PROMOTE"
    extended = shadow_test.judged_text(entered({"verdict": {**verdict_, "decision": "INCONCLUSIVE"}, "look": look,
                                                "run": {"extensions": 2}}))
    assert extended == "judgement after extension 2: INCONCLUSIVE, score 12.0 over 90 min: errors 5x production's"
    assert shadow_test.judged_text(entered({"look": look})) is None  # no verdict: nothing to say
    assert shadow_test.judged_text(None) is None


def test_run_with_a_state_machine_arn(emulator, capsys):
    code, out, _ = cli(capsys, "run", "--state-machine", machine_of(emulator, "Inconclusive"), "--poll", "0.1")
    assert code == 4
    assert out.startswith("state machine Inconclusive-Promotion-")


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--stack", "Missing"], "shadow-test: stack Missing not found in us-east-1"),
    (["run", "--stack", "Missing", "--region", "eu-west-1"], "shadow-test: stack Missing not found in eu-west-1"),
    (["run", "--stack", "Unmarked"],
     "shadow-test: stack Unmarked has no promotion workflow (no AWS::StepFunctions::StateMachine marked by "
     "shadow-constructs); pass --state-machine ARN to run another state machine"),
    (["status", "--stack", "Unmarked"],
     "shadow-test: stack Unmarked has no shadow-constructs endpoint or promotion workflow (no resource marked in "
     "its deployed template)"),
    (["run", "--state-machine", "arn:aws:states:us-east-1:123456789012:stateMachine:nothing"],
     "shadow-test: state machine arn:aws:states:us-east-1:123456789012:stateMachine:nothing not found: "),
    (["run", "--stack", "Churn", "--poll", "0"], "shadow-test run: argument --poll: must be above 0, got '0'"),
    (["run"], "shadow-test run: one of the arguments --stack --state-machine is required"),
    (["run", "--stack", "Churn", "--quiet", "--verbose"], "shadow-test run: argument --verbose: not allowed with "
                                                          "argument --quiet"),
    (["status"], "shadow-test status: the following arguments are required: --stack"),
])
def test_bad_usage_is_exit_2_in_one_line(emulator, capsys, argv, message):
    code, out, err = cli(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(message) and "Traceback" not in err


def test_several_workflows_are_named_and_need_a_state_machine(emulator, capsys):
    code, _, err = cli(capsys, "run", "--stack", "Twice")
    assert code == 2
    line = one_error_line(err)
    assert line.startswith("shadow-test: stack Twice has 2 promotion workflows: First (arn:aws:states:")
    assert "Second (arn:aws:states:" in line and line.endswith("choose one with --state-machine ARN")


def test_an_unreachable_endpoint_is_exit_5(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://localhost:{free_port()}")
    code, out, err = cli(capsys, "run", "--stack", "Churn")
    assert (code, out) == (5, "")
    assert one_error_line(err).startswith("shadow-test: could not reach AWS in us-east-1: Could not connect to the "
                                          "endpoint URL: ")


def test_missing_credentials_are_exit_5(emulator, monkeypatch, capsys):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, _, err = cli(capsys, "status", "--stack", "Churn")
    assert code == 5
    assert one_error_line(err).startswith("shadow-test: no usable AWS credentials (Unable to locate credentials): ")


def test_aws_region_is_honoured_as_the_error_says(monkeypatch):
    """The error says "set AWS_REGION": it is read (boto3 alone reads only AWS_DEFAULT_REGION); --region wins."""
    from shadow_cli.aws import Aws

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    assert Aws().region == "eu-west-2"
    assert Aws("ap-south-1").region == "ap-south-1"


def test_no_region_is_exit_2(monkeypatch, capsys):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    code, _, err = cli(capsys, "status", "--stack", "Churn")
    assert code == 2
    assert one_error_line(err).startswith("shadow-test: no AWS region: pass --region or set AWS_REGION")


def test_access_denied_and_other_aws_errors_are_exit_5():
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "User: x is not authorized to\n"
                                                                                 "perform: states:StartExecution"}},
                         "StartExecution")
    failure = aws_failure(denied, "eu-west-1")
    assert (failure.code, failure.message) == (5, "AWS refused StartExecution in eu-west-1: AccessDeniedException: "
                                                  "User: x is not authorized to perform: states:StartExecution "
                                                  "(check the credentials and their permissions)")
    throttled = aws_failure(ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                                        "DescribeExecution"))
    assert (throttled.code, throttled.message) == (5, "AWS answered DescribeExecution with ThrottlingException: "
                                                      "Rate exceeded")


def test_help_documents_every_exit_code(capsys):
    for argv in (["--help"], ["run", "--help"], ["drift", "--help"]):
        code, out, _ = cli(capsys, *argv)
        assert code == 0
        codes = out.split("Exit codes:", 1)[1]
        for number in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "130 "):
            assert f"\n  {number}" in codes, number
    assert "Exit codes:" in (shadow_test.__doc__ or "")


def test_as_a_command_failures_are_one_line_without_traceback(emulator, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": emulator.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": str(tmp_path / "none"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"})
    command = [sys.executable, "-m", "shadow_cli.shadow_test"]
    missing = subprocess.run([*command, "run", "--stack", "Missing"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=60)
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        2, "", "shadow-test: stack Missing not found in us-east-1\n")
    unreachable = subprocess.run([*command, "status", "--stack", "Churn"], cwd=ROOT, capture_output=True, text=True,
                                 env={**env, "AWS_ENDPOINT_URL": f"http://localhost:{free_port()}"}, timeout=60)
    assert unreachable.returncode == 5 and unreachable.stderr.count("\n") == 1
    assert "Traceback" not in unreachable.stderr and "could not reach AWS" in unreachable.stderr
    inconclusive = subprocess.run([*command, "run", "--stack", "Inconclusive", "--poll", "0.1"], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=60)
    assert (inconclusive.returncode, inconclusive.stderr) == (4, "")
    assert "decision INCONCLUSIVE" in inconclusive.stdout.splitlines()[-1]


# status

def test_status_shows_live_and_declared_variants_pending_end_and_last_verdict(emulator, capsys):
    assert cli(capsys, "run", "--stack", "Churn", "--poll", "0.1")[0] == 0
    pending = start_test_end(emulator, "Churn", 86400 * 7, name="test-end-9f8e7d")
    try:
        code, out, err = cli(capsys, "status", "--stack", "Churn")
    finally:
        emulator.client("stepfunctions").stop_execution(executionArn=pending)
    assert (code, err) == (0, "")
    models = {r["LogicalResourceId"]: r["PhysicalResourceId"].rsplit("/", 1)[1]
              for r in emulator.client("cloudformation").list_stack_resources(StackName="Churn")["StackResourceSummaries"]
              if r["ResourceType"] == "AWS::SageMaker::Model"}
    config = emulator.client("sagemaker").describe_endpoint(EndpointName=CHURN_ENDPOINT)["EndpointConfigName"]
    lines = out.splitlines()
    assert lines[:10] == [
        "Stack Churn in us-east-1: CREATE_COMPLETE",
        f"Endpoint {CHURN_ENDPOINT} (Endpoint)",
        f"  live      InService on config {config}",
        f"    production production: model {models['V1']}, 2 x ml.m5.xlarge",
        f"    shadow     shadow: model {models['V2']}, 1 x ml.m5.xlarge",
        "  template  phase SHADOW",
        f"    production production: model {models['V1']} (V1), 2 x ml.m5.xlarge",
        f"    shadow     shadow: model {models['V2']} (V2), 1 x ml.m5.xlarge",
        "Dashboard churn-shadow-test (production and shadow side by side): "
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards/dashboard/churn-shadow-test",
        f"Promotion workflow Promotion ({machine_of(emulator, 'Churn')})",
    ]
    assert lines[10].startswith("  pending end   20") and lines[10].endswith(
        ", in 6 d 23 h (execution test-end-9f8e7d waits in WaitForTestEnd)")
    assert lines[11].startswith("  last verdict  SUCCEEDED 20")
    assert lines[11].endswith(f": decision PROMOTE (score 97.5), action promoted, report {report_uri('churn')}")
    # What the end does without a decision (the workflow's mark): the default stops the test costing.
    assert lines[12] == ("  if undecided  still INCONCLUSIVE in the end (after any extensions), the shadow is removed; "
                         "production untouched: the test stops costing")
    assert len(lines) == 13


def test_status_says_when_an_undecided_test_keeps_its_shadow_running(emulator, capsys):
    code, out, _ = cli(capsys, "status", "--stack", "Inconclusive")
    assert code == 0 and out.splitlines()[-1] == (
        "  if undecided  still INCONCLUSIVE in the end, the shadow KEEPS RUNNING (and billing) until you end it "
        "(on_inconclusive/after_extensions=KEEP)")


# drift

def physical_models(emulator, stack: str) -> dict[str, str]:
    return {r["LogicalResourceId"]: r["PhysicalResourceId"].rsplit("/", 1)[1]
            for r in emulator.client("cloudformation").list_stack_resources(StackName=stack)["StackResourceSummaries"]
            if r["ResourceType"] == "AWS::SageMaker::Model"}


def promote_v2(emulator, endpoint: str, v2: str) -> None:
    """What the workflow does on PROMOTE: a config with v2 in production (no shadow), UpdateEndpoint, InService."""
    sagemaker = emulator.client("sagemaker")
    sagemaker.create_endpoint_config(EndpointConfigName=f"{endpoint}-promoted", ProductionVariants=[{
        "VariantName": "production", "ModelName": v2, "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 2,
        "InitialVariantWeight": 1.0}])
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-promoted")
    for _ in range(20):
        if sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService":
            return
    raise AssertionError("the endpoint update did not finish")


def test_drift_before_and_after_a_promotion(emulator, capsys, tmp_path):
    models = physical_models(emulator, "Drift")
    endpoint, = [e["EndpointName"] for e in emulator.client("sagemaker").list_endpoints()["Endpoints"]
                 if e["EndpointName"].startswith("Drift-")]
    shadow_phase = write_assembly(tmp_path / "shadow", {"Drift": template(STACKS["Drift"])})
    where = f"production variant production of endpoint {endpoint}"

    # Deploying what is deployed changes nothing.
    code, out, err = cli(capsys, "drift", "--stack", "Drift", "--app", str(shadow_phase))
    assert (code, err) == (0, "")
    assert out == f"no drift: deploying {shadow_phase}'s Drift keeps model {models['V1']} in {where}\n"

    promote_v2(emulator, endpoint, models["V2"])

    # The workflow promoted v2; the app still declares the SHADOW phase: deploying would put v1 back.
    code, out, err = cli(capsys, "drift", "--stack", "Drift", "--app", str(shadow_phase))
    assert (code, err) == (1, "")
    assert out == (f"drift: deploying {shadow_phase}'s Drift would put model {models['V1']} (V1) into {where}, which "
                   f"serves {models['V2']} now (the template declares phase SHADOW with that model as its shadow: the "
                   f"workflow promoted it; deploy the PROMOTED phase)\n")

    # The PROMOTED phase (in a pipeline stage's nested assembly) keeps v2: safe to deploy.
    promoted = write_assembly(tmp_path / "promoted", {"Drift": template(endpoint_resources(phase="PROMOTED"))},
                              stage="Prod")
    code, out, _ = cli(capsys, "drift", "--stack", "Prod/Drift", "--app", str(promoted))
    assert code == 0 and out == f"no drift: deploying {promoted}'s Drift keeps model {models['V2']} in {where}\n"

    # Only tags changed: CloudFormation updates the model in place, it keeps its name.
    tagged = write_assembly(tmp_path / "tagged", {"Drift": template(endpoint_resources(
        phase="PROMOTED", v2_tags=[{"Key": "team", "Value": "churn"}]))})
    assert cli(capsys, "drift", "--stack", "Drift", "--app", str(tagged))[0] == 0

    # A literal model name, compared case-insensitively (AWS's ARNs spell names in lower case).
    literal = write_assembly(tmp_path / "literal", {"Drift": template(endpoint_resources(
        phase="PROMOTED", production_model_name=models["V2"].lower()))})
    assert cli(capsys, "drift", "--stack", "Drift", "--app", str(literal))[0] == 0

    # The PROMOTED phase with a new v2 archive: the deploy creates a NEW model for production.
    rebuilt = write_assembly(tmp_path / "rebuilt", {"Drift": template(endpoint_resources(
        phase="PROMOTED", v2_archive="s3://models/churn/v2.1/model.tar.gz"))})
    code, out, _ = cli(capsys, "drift", "--stack", "Drift", "--app", str(rebuilt))
    assert code == 1
    assert out == (f"drift: deploying {rebuilt}'s Drift would put a NEW model V2 (its properties changed since the "
                   f"last deploy, so it is replaced) into {where}, replacing {models['V2']}, which serves now "
                   f"(the template declares phase PROMOTED)\n")

    # status sees the same: the live production model beside the template's, and a note.
    code, out, _ = cli(capsys, "status", "--stack", "Drift")
    assert code == 0
    assert f"Endpoint {endpoint} (Endpoint)" in out.splitlines()
    assert f"    production production: model {models['V2']}, 2 x ml.m5.xlarge" in out.splitlines()
    assert "    shadow     none" in out.splitlines()
    assert (f"  note      production variant production serves {models['V2']}, the deployed template declares "
            f"{models['V1']} (changed since the last deploy, e.g. by the promotion workflow): deploy the phase it left; "
            f"`shadow-test drift` checks before a deploy"
            in out.splitlines())
    assert "Promotion workflow: none in this stack" in out.splitlines()


def test_drift_on_a_first_deploy_is_exit_0(emulator, capsys, tmp_path):
    app = write_assembly(tmp_path / "cdk.out", {"BrandNew": template(endpoint_resources(endpoint_name="brand-new"))})
    code, out, err = cli(capsys, "drift", "--stack", "BrandNew", "--app", str(app))
    assert (code, err) == (0, "")
    assert out == "no drift: stack BrandNew does not exist in us-east-1 yet (first deploy, nothing serves)\n"


def test_drift_without_an_assembly_or_the_stack_in_it_is_exit_2(emulator, capsys, tmp_path):
    code, _, err = cli(capsys, "drift", "--stack", "Drift", "--app", str(tmp_path / "nowhere"))
    assert code == 2
    assert one_error_line(err) == (f"shadow-test: no cloud assembly at {tmp_path / 'nowhere'} (not a folder): run "
                                   f"`cdk synth` first, or pass its output folder with --app")
    (tmp_path / "empty").mkdir()
    code, _, err = cli(capsys, "drift", "--stack", "Drift", "--app", str(tmp_path / "empty"))
    assert code == 2 and "(manifest.json not found)" in one_error_line(err)
    app = write_assembly(tmp_path / "cdk.out", {"Other": template(endpoint_resources())})
    code, _, err = cli(capsys, "drift", "--stack", "Drift", "--app", str(app))
    assert code == 2
    assert one_error_line(err) == f"shadow-test: stack Drift is not in the cloud assembly {app} (its stacks: Other)"


def test_status_names_the_self_ending_timer():
    marked_timer = {"Resources": {"TestEnd": {"Type": "Custom::ShadowTestEnd", "Properties": {"ServiceToken": "x"},
                                              "Metadata": {"shadow-constructs": {"role": "test-end"}}},
                                  "Other": {"Type": "Custom::Other", "Properties": {}}}}
    assert shadow_test.timer_lines(marked_timer) == [
        "Self-ending timer TestEnd (Custom::ShadowTestEnd): starts the workflow's test-end execution"]


def test_cli_error_messages_are_one_line():
    assert CliError("a\nb  c\t d").message == "a b c d"


def test_a_wait_for_the_next_look_is_shown_with_its_look():
    look = {"number": 2, "looks": 6, "at": "2026-01-01T10:20:00Z", "minutes": 20, "final": False}
    entered = {"name": shadow_test.LOOK_WAIT_STATE, "input": json.dumps({"look": look, "test_end": "x"})}
    assert shadow_test.look_of(entered) == look
    assert shadow_test.look_text(look) == "look 2 of 6 at 2026-01-01T10:20:00Z, passed"
    assert shadow_test.look_text({**look, "number": 6, "final": True}).endswith(", passed (the last)")
    assert shadow_test.look_of({"name": "WaitForNextLook", "input": "{}"}) is None  # nothing to show
    # The state names are the workflow runtime's own (shadow_runtime.looks), read without importing aws-cdk-lib.
    assert (shadow_test.WAIT_STATE, shadow_test.LOOK_WAIT_STATE) == ("WaitForTestEnd", "WaitForNextLook")
