"""Construct combinations beyond the demo's, deployed and run on the emulator with authorization on.

The demo's lifecycles (tests/test_demo_lifecycle.py) cover capture analytics on, a fixed production fleet and no
approval, then the PROMOTED and ROLLED_BACK phases. Here the example app with:

- production autoscaling, a person's approval, and a promotion onto the shadow's (smaller) instance type: the verdict
  waits for an approver (an IAM user allowed only states:SendTaskSuccess), then the workflow deregisters production's
  scaling (SageMaker refuses to retype a registered variant), promotes, and registers the scaling again on the
  promoted variant (Application Auto Scaling reads and resizes the endpoint as the caller);
- no data capture: no capture bucket, analytics or agreement step; the regressed candidate is rejected.

Each runs as ``make demo`` does (the CLI as the least-privilege operator) and must end with nothing refused.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import boto3
import pytest
from demo_assembly import VERDICT_MINUTES, VERDICT_REQUESTS, synthesize

from scripts.demo import Console, Demo
from shadow_constructs import ConfigError
from shadow_emulator.ports import free_port

pytestmark = pytest.mark.outer  # the outer loop (make test-fast skips it): the CDK CLI and the emulator server, whole lifecycles

REQUESTS, MINUTES = VERDICT_REQUESTS, VERDICT_MINUTES  # demo_assembly: enough to judge the p99s
APPROVER = "shadow-approver"


def run(scenario: str, tmp_path: Path, **settings) -> Demo:
    demo = Demo(scenario, requests=REQUESTS, minutes=MINUTES, port=free_port(), workdir=tmp_path,
                assembly=synthesize(scenario, tmp_path / "cdk.out", **settings), console=Console(quiet=True))
    return demo


def task_token(sfn, execution_arn: str, state: str) -> str | None:
    """The task token a waitForTaskToken state sent to the topic (from its scheduled parameters)."""
    entered = False
    for event in sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]:
        if (event.get("stateEnteredEventDetails") or {}).get("name") == state:
            entered = True
        if entered and event["type"] == "TaskScheduled":
            message = json.loads(event["taskScheduledEventDetails"]["parameters"])["Message"]
            return (json.loads(message) if isinstance(message, str) else message)["token"]
    return None


def approver(demo: Demo):
    """An IAM user who may only answer a workflow's approval request; its Step Functions client."""
    iam = demo.client("iam")
    iam.create_user(UserName=APPROVER)
    iam.put_user_policy(UserName=APPROVER, PolicyName="approve", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["states:SendTaskSuccess", "states:SendTaskFailure"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName=APPROVER)["AccessKey"]
    return boto3.client("stepfunctions", endpoint_url=demo.emulator.url, region_name="us-east-1",
                        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])


def approve_when_asked(demo: Demo, answers: list[str], stop: threading.Event) -> None:
    """Wait for the self-ending execution's approval request and approve it, as the approver."""
    sfn, answering = demo.client("stepfunctions"), approver(demo)
    while not stop.is_set():
        for execution in sfn.list_executions(stateMachineArn=demo.state_machine)["executions"]:
            token = task_token(sfn, execution["executionArn"], "AwaitApproval")
            if token:
                answering.send_task_success(taskToken=token, output=json.dumps({"approved": True}))
                answers.append(execution["name"])
                return
        time.sleep(0.3)


def test_autoscaled_production_promoted_after_approval_with_nothing_refused(tmp_path):
    demo = run("healthy", tmp_path, require_approval=True, shadow_instance_type="ml.m5.large",
               promoted_instance_settings="shadow",
               production_autoscaling={"max_capacity": 4, "target_invocations_per_instance": 1000})
    answers: list[str] = []
    stop = threading.Event()
    try:
        demo.emulator.check_port()
        demo.start_emulator()
        demo.deploy()
        demo.send_traffic()
        approving = threading.Thread(target=approve_when_asked, args=(demo, answers, stop), daemon=True)
        approving.start()
        demo.end_of_test()
        assert answers, "the workflow never asked for approval"
        assert demo.result.decision == "PROMOTE"
        scaling = demo.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")
        targets = {t["ResourceId"]: (t["MinCapacity"], t["MaxCapacity"]) for t in scaling["ScalableTargets"]}
        production = demo.endpoint_config()["production"][0]
        assert production["InstanceType"] == "ml.m5.large"  # the shadow's settings, promoted
        assert targets == {f"endpoint/{demo.endpoint}/variant/{production['VariantName']}": (2, 4)}  # registered again
        recorded = demo.emulator.control("GET", "authorization")
        assert recorded["denials"] == []
        for who, action in [("PromotionPrepareUpdateRole", "application-autoscaling:DeregisterScalableTarget"),
                            ("PromotionRestoreAutoscalingRole", "application-autoscaling:RegisterScalableTarget"),
                            ("PromotionRestoreAutoscalingRole", "sagemaker:UpdateEndpointWeightsAndCapacities"),
                            (f"user/{APPROVER}", "states:SendTaskSuccess")]:
            assert any(who in u["principal"] and u["action"] == action for u in recorded["usage"]), (who, action)
    finally:
        stop.set()
        demo.emulator.stop()


def test_without_capture_the_regressed_candidate_is_rejected_with_nothing_refused(tmp_path):
    # Label agreement is measured on the captured data: without capture the criteria leave it out (else: refused at
    # synth, "criteria min_agreement (0.85) is measured on the captured data: give capture_analytics").
    demo = run("regressed", tmp_path, capture_enabled=False,
               promotion_criteria={"latency_tolerance": 0.3, "error_rate_tolerance": 0.01})
    try:
        demo.emulator.check_port()
        demo.start_emulator()
        demo.deploy()
        assert demo.result.capture_destination == ""
        demo.send_traffic()
        demo.end_of_test()
        assert demo.result.decision == "REJECT"
        assert demo.endpoint_config()["shadow"] == []
        recorded = demo.emulator.control("GET", "authorization")
        assert recorded["denials"] == []
        assert not [u for u in recorded["usage"] if "MeasureAgreement" in u["principal"]]  # no agreement step
    finally:
        demo.emulator.stop()


@pytest.mark.parametrize("settings, message", [
    ({"production_autoscaling": {"max_capacty": 4}}, "production_autoscaling has unknown keys ['max_capacty']"),
])
def test_bad_combination_settings_are_refused_at_synth(settings, message, tmp_path):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        synthesize("healthy", tmp_path / "cdk.out", **settings)
