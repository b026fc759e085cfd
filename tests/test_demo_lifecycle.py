"""The demo's whole lifecycle, as `make demo` runs it, with less traffic: both scenarios.

Each test synthesizes the scenario's app as ``make demo`` does (here in the test's own jsii process: the same
files as ``cdk synth``), starts the emulator (``python -m shadow_emulator``) on a free port, bootstraps and
deploys that assembly with the real CDK CLI, sends real traffic through InvokeEndpoint, lets
the test end itself (the emulated clock moves to its end; the execution the deploy started judges
and acts; ``shadow-test run`` follows it), runs the drift guard and deploys the next phase with
production unchanged, inspects the endpoint and the captured data, and destroys the stack.
"""

from __future__ import annotations

import json
import math

import pytest
from conftest import ROOT
from demo_assembly import VERDICT_MINUTES, VERDICT_REQUESTS, synthesize

from scripts.demo import Console, Demo, DemoError
from shadow_emulator.authorization import operator_policy
from shadow_emulator.authorization.least_privilege import JUSTIFIED_UNUSED, construct_id, unused_in_every_run
from shadow_emulator.ports import free_port

pytestmark = pytest.mark.outer  # the outer loop (make test-fast skips it): the CDK CLI and the emulator server, whole lifecycles

REQUESTS, MINUTES, SAMPLING = VERDICT_REQUESTS, VERDICT_MINUTES, 0.5  # demo_assembly: enough to judge the p99s


def run(scenario: str, tmp_path_factory) -> Demo:
    workdir = tmp_path_factory.mktemp(f"demo-{scenario}")
    demo = Demo(scenario, requests=REQUESTS, minutes=MINUTES, port=free_port(), workdir=workdir,
                assembly=synthesize(scenario, workdir / "cdk.out"), console=Console(quiet=True))
    demo.run()
    return demo


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    return run("healthy", tmp_path_factory)


@pytest.fixture(scope="module")
def regressed(tmp_path_factory):
    return run("regressed", tmp_path_factory)


def assert_traffic_and_capture(demo: Demo) -> None:
    result = demo.result
    production = result.initial_config["production"][0]["VariantName"]
    shadow = result.initial_config["shadow"][0]["VariantName"]
    # Every request got a production answer (a probability), whatever the shadow did.
    assert result.requests == REQUESTS and result.production_answers == REQUESTS
    assert result.served[production] == REQUESTS
    # The shadow got its sampled share: binomial(REQUESTS, 0.5) within 4.5 standard deviations.
    bound = 4.5 * math.sqrt(REQUESTS * SAMPLING * (1 - SAMPLING))
    assert abs(result.served[shadow] - REQUESTS * SAMPLING) < bound
    # Capture samples 100%: one record per request served, under each variant's own prefix.
    assert result.captured_records == {production: REQUESTS, shadow: result.served[shadow]}
    assert all(result.captured_files[variant] >= 1 for variant in (production, shadow))
    assert result.capture_destination.startswith("s3://") and result.capture_destination.endswith("/datacapture")
    assert result.execution_status == "SUCCEEDED"
    assert set(result.seconds) >= {"deploy", "traffic", "workflow", "destroy"}
    # shadow-report over the emulated S3: every shadow record pairs with its production record.
    pairing = result.shadow_report["pairing"]
    assert pairing["paired"] == result.served[shadow] and pairing["unmatched_shadow"] == 0
    assert pairing["unmatched_production"] == REQUESTS - result.served[shadow]
    # The workflow measured the label agreement with the shipped Athena SQL (run by the emulator on the same
    # captured files): the same pairs and the same share as shadow-report's engine.
    agreement = result.verdict["metrics"]["PredictionAgreement"]
    labels = result.shadow_report["labels"]
    assert agreement["critical"] and agreement["n"] == labels["predictions"] == pairing["paired"]
    assert agreement["effect"] == pytest.approx(labels["agreement"], abs=1e-9)
    assert 0.85 < agreement["effect"] < 0.99  # v2 and v1 are different models; they mostly agree


def assert_the_test_ended_itself(demo: Demo, exit_code: int) -> int:
    result = demo.result
    # One execution in all: the one the deploy started, judging at the test's looks. Nobody started another.
    assert len(result.executions) == 1 and result.executions[0].startswith("test-end-"), result.executions
    assert result.run_exit_code == exit_code, result.run_output
    assert "-> WaitForNextLook (look 1 of 3 at " in result.run_output and "-> Judge" in result.run_output
    # It decided at a look before the test's planned end (1 hour, looks every 20 minutes): the report says which.
    look = next(line for line in result.report_markdown.splitlines() if line.startswith("- Look "))
    number = int(look.split()[2])
    assert number < 3 and look.startswith(f"- Look {number} of 3: {20 * number} minutes into the test"), look
    assert result.run_output.count("-> Judge") == number
    assert f"- Decided {round((3 - number) / 3, 4):g} h before the planned end: stopping now saves" in result.report_markdown
    assert f"verdict: **{result.decision}**" in result.run_output  # the report, printed by shadow-test run
    # At each look the workflow published the agreement so far; the emulated CloudWatch holds what the report shows.
    agreement = result.verdict["metrics"]["PredictionAgreement"]
    assert result.live_agreement["PredictionAgreement"] == pytest.approx(100 * agreement["effect"], abs=1e-9)
    assert result.live_agreement["PairedPredictions"] == agreement["n"]
    assert result.live_agreement["PredictionMeanAbsDifference"] == pytest.approx(
        result.shadow_report["numeric"]["mean_abs_diff"], abs=1e-9)
    # The next phase passes the drift guard and its deploy leaves production's model (and instances) as they were.
    assert result.drift_next[0] == 0, result.drift_next
    assert result.production_after_phase_deploy == result.production_before_phase_deploy
    assert result.final_config["production"] == result.production_after_phase_deploy
    return number


def test_healthy_candidate_is_promoted_into_the_production_variant(healthy):
    result = healthy.result
    assert result.decision == "PROMOTE", result.report_markdown
    assert "verdict: **PROMOTE**" in result.report_markdown
    before, after = result.initial_config, result.final_config
    assert after["status"] == "InService" and after["config_name"] != before["config_name"]
    # v2 now serves in the production variant, on production's instances; the shadow is gone.
    assert after["production"] == [{**before["production"][0], "ModelName": before["shadow"][0]["ModelName"]}]
    assert after["shadow"] == []
    assert_traffic_and_capture(healthy)
    assert_the_test_ended_itself(healthy, exit_code=0)
    # The SHADOW assembly would put v1 back into production: the guard refuses it, naming both models.
    code, line = result.drift_shadow
    assert code == 1 and "\n" not in line, line
    assert before["production"][0]["ModelName"] in line and before["shadow"][0]["ModelName"] in line
    assert result.next_phase == "promoted"


def test_regressed_candidate_is_rejected_and_production_untouched(regressed):
    result = regressed.result
    assert result.decision == "REJECT", result.report_markdown
    assert "ModelLatency:p50** (critical) | higher" in result.report_markdown
    before, after = result.initial_config, result.final_config
    assert after["status"] == "InService"
    assert after["production"] == before["production"]  # same model, instances and weight
    assert after["shadow"] == []
    assert_traffic_and_capture(regressed)
    assert assert_the_test_ended_itself(regressed, exit_code=3) == 1  # rejected at the first look
    assert result.drift_shadow[0] == 0 and result.next_phase == "rolled_back"  # v1 still serves, as declared


def test_nothing_was_refused_and_every_grant_is_used_or_justified(healthy, regressed):
    """Least privilege, measured: with enforcement on, neither lifecycle met a refusal; every grant of the stack's
    roles was used by one of them or is justified in one line (JUSTIFIED_UNUSED), and no justification is stale."""
    assert healthy.result.denials == [] and regressed.result.denials == []
    runs = [healthy.result.permissions, regressed.result.permissions]
    assert {"ProductionModelExecutionRole", "PromotionStateMachineRole", "PromotionMeasureAgreementRole"} <= {
        construct_id(role) for role in runs[0]}
    unused = unused_in_every_run(runs)
    assert sorted(unused - set(JUSTIFIED_UNUSED)) == [], "never used: remove the grant or justify it in JUSTIFIED_UNUSED"
    assert sorted(set(JUSTIFIED_UNUSED) - unused) == [], "used now: remove its line from JUSTIFIED_UNUSED"
    used = {(role, grant["action"]) for run in runs for role, answer in run.items() for request in answer["used"]
            for grant in request["grants"]}
    assert len(used) > 60  # the report saw the lifecycle's requests, not an empty emulator


def test_the_cli_ran_under_the_operator_policy_generated_from_its_own_requests(healthy, regressed):
    """cdk deploy / destroy, shadow-test and shadow-report ran as an IAM user whose one policy is
    docs/operator-policy.json (nothing was refused: the previous test), and that policy is exactly what their
    recorded requests generalize to over both lifecycles (nothing in it unused, nothing missing)."""
    def pairs(policy: dict) -> set[tuple[str, str]]:
        return {(action, resource) for s in policy["Statement"] for action in s["Action"] for resource in s["Resource"]}

    generated = set()
    for demo in (healthy, regressed):
        recorded = demo.result.operator
        assert ("sts:AssumeRole", "arn:aws:iam::123456789012:role/cdk-hnb659fds-deploy-role-123456789012-us-east-1") \
            in {tuple(r) for r in recorded["requests"]}  # the CDK CLI deployed as the operator
        generated |= pairs(operator_policy.generalize([tuple(r) for r in recorded["requests"]], recorded["values"]))
    assert generated == pairs(operator_policy.load()), \
        "docs/operator-policy.json differs from the requests: python -m shadow_emulator.authorization.operator_policy " \
        ".demo/permissions.json > docs/operator-policy.json"


def test_docs_say_what_each_role_of_the_stack_may_do(healthy):
    """docs/permissions.md's role table names exactly the stack's roles."""
    page = (ROOT / "docs" / "permissions.md").read_text()
    table = page.split("## Each role, what it may do and why", 1)[1].split("\n## ", 1)[0]
    documented = {name.strip() for line in table.splitlines() if line.startswith("| ") and not line.startswith("| role")
                  for name in line.split("|")[1].split(",")}
    assert documented == {construct_id(role) for role in healthy.result.permissions}


def test_wildcard_grants_are_only_for_actions_without_a_resource_type(healthy):
    """A ``*`` resource only where the Service Authorization Reference (iam-data) gives the action no required
    resource type."""
    iam_data = ROOT / "node_modules" / "@cloud-copilot" / "iam-data" / "data" / "actions"
    wildcards = {grant["action"] for answer in healthy.result.permissions.values() for grant in answer["granted"]
                 if grant["resource"] == "*"}
    assert "cloudwatch:PutMetricData" in wildcards
    scoped = []
    for action in sorted(wildcards):
        service, name = action.split(":")
        types = json.loads((iam_data / f"{service}.json").read_text())[name.lower()].get("resourceTypes", [])
        if any(kind.get("required") for kind in types):
            scoped.append(action)
    # Application Auto Scaling's scalable targets are named by AWS when registered (scalable-target/ID): JUSTIFIED_UNUSED
    assert [a for a in scoped if not a.startswith("application-autoscaling:")] == []


def test_a_taken_port_is_a_one_line_error(tmp_path):
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        demo = Demo("healthy", requests=REQUESTS, minutes=MINUTES, port=port, workdir=tmp_path,
                    console=Console(quiet=True))
        with pytest.raises(DemoError, match=rf"port {port} is already in use"):
            demo.run()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"scenario": "broken"}, "scenario must be one of healthy, regressed, got 'broken'"),
    ({"minutes": 5}, r"minutes must be 10-120 \(the verdict needs ten paired minutes\), got 5"),
    ({"requests": 100}, r"requests must be at least 20 per minute \(400 for 20 minutes\), got 100"),
])
def test_bad_settings_are_refused_before_anything_starts(kwargs, message, tmp_path):
    with pytest.raises(DemoError, match=message):
        Demo(**{"scenario": "healthy", "workdir": tmp_path, **kwargs})
