"""Negative controls: the emulator's authorization finds each grant missing where AWS would.

Each control removes ONE grant from the demo's synthesized template (the SHADOW phase of the healthy scenario), deploys
that assembly into a fresh emulator with the real CDK CLI and runs the lifecycle up to the step that needs the grant:
that step fails with the error AWS gives (its code and its "User: ... is not authorized to perform: ..." message), the
emulator records the refusal (principal, action, resource), and production still answers every request. A control
whose grant is not found in the template fails: it would prove nothing.

The grants are the issue's: the model role's capture write and its capture key, the workflow's UpdateEndpoint on the
endpoint config (aws-cdk #11594) and its publish to the verdict topic, the agreement step's read of the capture
(Athena reads it as the caller) and the deploy-time timer's StartExecution.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from demo_assembly import VERDICT_MINUTES, VERDICT_REQUESTS, synthesize

from scripts.build_models import churn_data
from scripts.demo import ACCOUNT, REGION, STACK, Console, Demo, DemoError
from shadow_emulator.ports import free_port

pytestmark = pytest.mark.outer  # the outer loop (make test-fast skips it): the CDK CLI and the emulator server, whole lifecycles

REQUESTS, MINUTES = VERDICT_REQUESTS, VERDICT_MINUTES  # demo_assembly: enough to judge the p99s
TEMPLATE = f"{STACK}.template.json"


@dataclass(frozen=True)
class Control:
    """One grant to remove: the ``action`` from the statements of the role policy whose logical id starts with
    ``policy``; with ``resource`` (a substring of the rendered resource), only that resource of the statement."""

    name: str
    policy: str
    action: str
    resource: str = ""


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def remove_grant(template: dict[str, Any], control: Control) -> dict[str, Any]:
    """The template without the control's grant; AssertionError if the grant is not there to remove."""
    changed = copy.deepcopy(template)
    removed = 0
    for logical_id, resource in changed["Resources"].items():
        if resource["Type"] != "AWS::IAM::Policy" or not logical_id.startswith(control.policy):
            continue
        statements = resource["Properties"]["PolicyDocument"]["Statement"]
        for statement in list(statements):
            if control.action.lower() not in [a.lower() for a in _actions(statement)]:
                continue
            if control.resource:
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                kept = [r for r in resources if control.resource not in json.dumps(r)]
                assert len(kept) < len(resources), f"{control.name}: no resource matching {control.resource!r}"
                removed += 1
                if kept:
                    statement["Resource"] = kept
                    continue
            else:
                removed += 1
            others = [a for a in _actions(statement) if a.lower() != control.action.lower()]
            if others:
                statement["Action"] = others if len(others) > 1 else others[0]
            else:
                statements.remove(statement)
    assert removed, f"{control.name}: {control.action} is not granted by a policy {control.policy}*: the control is void"
    return changed


@pytest.fixture(scope="module")
def assemblies(tmp_path_factory) -> dict[str, Path]:
    """The healthy scenario's SHADOW assembly and its ROLLED_BACK phase (production alone: where a test starts)."""
    root = tmp_path_factory.mktemp("controls")
    return {"shadow": synthesize("healthy", root / "cdk.out"),
            "rolled_back": synthesize("healthy", root / "cdk.out.rolled_back", phase="rolled_back")}


def without(assemblies: dict[str, Path], control: Control, workdir: Path) -> Path:
    """A copy of the SHADOW assembly whose template lacks the control's grant."""
    target = workdir / "cdk.out"
    shutil.copytree(assemblies["shadow"], target)
    template = json.loads((target / TEMPLATE).read_text())
    (target / TEMPLATE).write_text(json.dumps(remove_grant(template, control)))
    return target


def demo_for(control: Control, assemblies: dict[str, Path], tmp_path: Path, requests: int = REQUESTS,
             minutes: int = MINUTES) -> Demo:
    workdir = tmp_path / control.name
    workdir.mkdir()
    return Demo("healthy", requests=requests, minutes=minutes, port=free_port(), workdir=workdir,
                assembly=without(assemblies, control, workdir), console=Console(quiet=True))


def refusals(demo: Demo, action: str) -> list[dict[str, str]]:
    return [d for d in demo.emulator.control("GET", "authorization")["denials"] if d["action"] == action]


def production_still_serves(demo: Demo, before: dict[str, Any]) -> None:
    """The endpoint is InService on the config it had, and production answers a request."""
    now = demo.endpoint_config()
    assert now["status"] == "InService"
    assert now["config_name"] == before["config_name"] and now["production"] == before["production"]
    row = ",".join(f"{value:g}" for value in churn_data(1, seed=7)[0][0])
    answer = demo.client("sagemaker-runtime").invoke_endpoint(EndpointName=demo.endpoint, ContentType="text/csv",
                                                             Body=row.encode())
    assert answer["InvokedProductionVariant"] == before["production"][0]["VariantName"]


def captured_variants(demo: Demo) -> set[str]:
    destination = demo.result.capture_destination
    bucket, _, prefix = destination[5:].partition("/")
    base = f"{prefix.strip('/')}/{demo.endpoint}/"
    listed = demo.client("s3").list_objects_v2(Bucket=bucket, Prefix=base).get("Contents", [])
    return {item["Key"][len(base):].split("/", 1)[0] for item in listed}


def deployed_with_traffic(demo: Demo) -> None:
    demo.start_emulator()
    demo.deploy()
    demo.send_traffic()


CAPTURE_CONTROLS = [
    (Control("shadow-model-capture-write", "ShadowModelExecutionRoleDefaultPolicy", "s3:PutObject"),
     "s3:PutObject", "arn:aws:s3:::", "shadow"),
    (Control("production-model-capture-key", "ProductionModelExecutionRoleDefaultPolicy", "kms:GenerateDataKey"),
     "kms:GenerateDataKey", "arn:aws:kms:", "production"),
]


@pytest.mark.parametrize("control, action, resource, variant", CAPTURE_CONTROLS, ids=[c[0].name for c in CAPTURE_CONTROLS])
def test_a_model_role_without_its_capture_grant_loses_that_variants_capture(control, action, resource, variant,
                                                                             assemblies, tmp_path):
    demo = demo_for(control, assemblies, tmp_path, requests=300, minutes=10)  # no verdict needed: the least traffic
    try:
        deployed_with_traffic(demo)
        assert demo.result.production_answers == 300  # capture never stands between the caller and production
        role = "ShadowModelExecutionRole" if variant == "shadow" else "ProductionModelExecutionRole"
        refused = refusals(demo, action)
        assert refused and all(role in d["principal"] and d["resource"].startswith(resource) for d in refused)
        assert f"is not authorized to perform: {action} on resource: {resource}" in refused[0]["message"]
        assert "because no identity-based policy allows" in refused[0]["message"]
        other = {"shadow": "production", "production": "shadow"}[variant]
        assert captured_variants(demo) == {other}  # that variant's records are lost, the other's written
        production_still_serves(demo, demo.result.initial_config)
    finally:
        demo.emulator.stop()


WORKFLOW_CONTROLS = [
    # aws-cdk #11594: UpdateEndpoint granted on the endpoint only. SageMaker's model has no AccessDeniedException, so
    # Step Functions names it SageMaker.SageMakerException (retried as a possible throttle, then caught).
    (Control("workflow-update-endpoint-config", "PromotionStateMachineRoleDefaultPolicy", "sagemaker:updateEndpoint",
             resource=":endpoint-config/"),
     "sagemaker:UpdateEndpoint", "PromoteUpdateEndpoint failed: SageMaker.SageMakerException", ":endpoint-config/"),
    (Control("workflow-publish", "PromotionStateMachineRoleDefaultPolicy", "sns:Publish"),
     "sns:Publish", "SNS.AuthorizationErrorException", ":sns:"),
    # Athena reads the capture as the caller while it runs the query: the query ends FAILED, the step with it.
    (Control("agreement-capture-read", "PromotionMeasureAgreementRoleDefaultPolicy", "s3:GetObject",
             resource="CaptureStoreBucket"),
     "s3:GetObject", "MeasureAgreement failed: RuntimeError", "datacapture/"),
]


@pytest.mark.parametrize("control, action, error, resource", WORKFLOW_CONTROLS, ids=[c[0].name for c in WORKFLOW_CONTROLS])
def test_the_workflow_fails_at_the_step_whose_grant_is_missing(control, action, error, resource, assemblies, tmp_path):
    demo = demo_for(control, assemblies, tmp_path)
    try:
        deployed_with_traffic(demo)
        with pytest.raises(DemoError, match="the promotion workflow ended FAILED") as failed:
            demo.end_of_test()
        assert error in str(failed.value)  # shadow-test run names the failed step and its error
        refused = refusals(demo, action)
        assert refused and resource in refused[0]["resource"]
        assert f"is not authorized to perform: {action} on resource: {refused[0]['resource']}" in refused[0]["message"]
        production_still_serves(demo, demo.result.initial_config)
    finally:
        demo.emulator.stop()


def test_a_timer_without_start_execution_fails_the_deploy_and_production_keeps_serving(assemblies, tmp_path):
    control = Control("timer-start-execution", "PromotionTestEndRoleDefaultPolicy", "states:StartExecution")
    demo = demo_for(control, assemblies, tmp_path)
    try:
        demo.start_emulator()
        demo.cdk("bootstrap", f"aws://{ACCOUNT}/{REGION}", what="bootstrap", app=False)
        demo.cdk("deploy", STACK, "--require-approval", "never", "--method=direct", assembly=assemblies["rolled_back"],
                 what="deploy production alone")
        demo.endpoint = demo.client("sagemaker").list_endpoints()["Endpoints"][0]["EndpointName"]
        before = demo.endpoint_config()
        with pytest.raises(DemoError, match="cdk deploy failed"):
            demo.cdk("deploy", STACK, "--require-approval", "never", "--method=direct", what="deploy the shadow")
        cloudformation = demo.client("cloudformation")
        assert cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        events = cloudformation.describe_stack_events(StackName=STACK)["StackEvents"]
        failed = [e for e in events if e.get("ResourceStatus") == "CREATE_FAILED"]
        assert failed and "AccessDeniedException" in failed[0]["ResourceStatusReason"]
        assert "is not authorized to perform: states:StartExecution" in failed[0]["ResourceStatusReason"]
        refused = refusals(demo, "states:StartExecution")
        assert refused and "PromotionTestEndRole" in refused[0]["principal"]
        production_still_serves(demo, before)
    finally:
        demo.emulator.stop()
