"""The demo's app configurations (scenarios/*.json) and its one-line failures, without an emulator."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from conftest import only

import scripts.demo as demo_module
from app import build_app
from scripts.demo import Console, Demo, DemoError, Emulator
from shadow_constructs import ConfigError


def synthesize(context: dict, outdir: str | None = None) -> assertions.Template:
    app = cdk.App(outdir=outdir or tempfile.mkdtemp(), context={"nag": "false", **context})
    build_app(app)
    return assertions.Template.from_json(app.synth().get_stack_by_name("ChurnShadowTest").template)


@pytest.fixture(scope="module")
def assemblies() -> dict[str, str]:
    """Where each scenario's app is synthesized (the ``scenarios`` fixture's cloud assemblies)."""
    return {name: tempfile.mkdtemp(prefix=f"cdkout-{name}-") for name in ("healthy", "regressed")}


@pytest.fixture(scope="module")
def scenarios(assemblies):
    return {name: synthesize({"shadow-test-config": f"scenarios/{name}.json"}, outdir)
            for name, outdir in assemblies.items()}


def definition(template: assertions.Template) -> str:
    parts = only(template, "AWS::StepFunctions::StateMachine")["Properties"]["DefinitionString"]["Fn::Join"][1]
    return "".join(part if isinstance(part, str) else "<token>" for part in parts)


def models(template: assertions.Template) -> dict[str, str]:
    return {logical_id.split("Model")[0]: json.dumps(resource["Properties"]["PrimaryContainer"]["ModelDataUrl"])
            for logical_id, resource in template.find_resources("AWS::SageMaker::Model").items()}


def test_scenarios_configure_the_workflow_for_a_short_local_test(scenarios):
    for template in scenarios.values():
        text = definition(template)
        assert '"minutes":30' in text  # the judged window
        assert '"latency_tolerance":0.3' in text and '"error_rate_tolerance":0.01' in text
        assert '"Seconds":2' in text  # DescribeEndpoint polling during the update
        # INCONCLUSIVE at the end removes the shadow at once (no extensions in a one-hour demo): the test stops costing.
        assert "WaitForMoreTraffic" not in text and '"KeptAsIs"' not in text and '"RemoveShadowUpdate' in text
        # The demo's test ends itself one hour after its deploy.
        timer = only(template, "Custom::ShadowTestEnd")["Properties"]
        assert timer["DurationSeconds"] == 3600


def test_scenarios_judge_the_prediction_agreement(scenarios):
    for template in scenarios.values():
        states = json.loads(definition(template).replace("<token>", "x"))["States"]
        assert states["GatherMetrics"]["Next"] == "MeasureAgreement"
        assert states["Judge"]["Parameters"]["criteria"]["min_agreement"] == 0.85
        # Judged at a look every 20 minutes of the 1-hour test, from 20 minutes on.
        assert states["PlanLook"]["Parameters"]["look_seconds"] == 1200


def test_the_plan_says_the_workflow_measures_the_agreement(scenarios, assemblies):
    from shadow_cli.plan import plan_assembly, render_plan

    text = render_plan(plan_assembly(assemblies["healthy"]))  # the healthy scenario's app, synthesized
    assert re.search(r"Promotion workflow \S+: gather metrics, measure the prediction agreement \(Athena over the "
                     r"capture\), judge, report, then update the endpoint", text)


def test_regressed_scenario_changes_only_the_shadows_model(scenarios):
    healthy, regressed = models(scenarios["healthy"]), models(scenarios["regressed"])
    assert healthy["Production"] == regressed["Production"]
    assert healthy["Shadow"] != regressed["Shadow"]


def test_new_workflow_settings_are_checked():
    with pytest.raises(ConfigError, match=r"promotion_on_inconclusive must be one of extend, remove_shadow, keep, "
                                          r"got 'wait'"):
        synthesize({"shadow-test": {"promotion_on_inconclusive": "wait"}})
    with pytest.raises(ConfigError, match=r"promotion_criteria must be dict \| None, got 0.3"):
        synthesize({"shadow-test": {"promotion_criteria": 0.3}})
    with pytest.raises(ConfigError, match=r"window must be"):
        synthesize({"shadow-test": {"promotion_window_minutes": 5}})
    # The agreement needs the capture: the config's own keys are named, not a construct's parameters.
    with pytest.raises(ConfigError, match=r"ShadowTestConfig.*promotion_criteria min_agreement=0.85 judges the captured "
                                          r"answers, but capture_enabled is false: set capture_enabled true or drop "
                                          r"min_agreement"):
        synthesize({"shadow-test": {"capture_enabled": False, "promotion_criteria": {"min_agreement": 0.85}}})


def test_a_missing_cdk_cli_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_module, "CDK", tmp_path / "node_modules" / ".bin" / "cdk")
    demo = Demo("healthy", workdir=tmp_path, console=Console(quiet=True))
    with pytest.raises(DemoError, match=r"the CDK CLI is missing .* run `make setup`"):
        demo.cdk("bootstrap", "aws://123456789012/us-east-1", what="bootstrap")


def test_an_emulator_that_died_is_named_with_its_last_words(tmp_path):
    emulator = Emulator(5999, tmp_path / "emulator.log")
    (tmp_path / "emulator.log").write_text("starting\nMemoryError: out of memory\n\n")
    emulator.process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    emulator.process.wait()
    with pytest.raises(DemoError, match=r"the emulator stopped \(exit code 3\): MemoryError: out of memory \(log: "):
        emulator.check_alive()


@pytest.mark.outer  # the demo and its emulator as processes
def test_a_killed_demo_stops_its_emulator(tmp_path):
    import signal
    import time

    from shadow_emulator.ports import free_port, port_in_use

    port = free_port()
    demo = subprocess.Popen([sys.executable, "scripts/demo.py", "--port", str(port), "--workdir", str(tmp_path)],
                            cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while not port_in_use("localhost", port):  # step 1 done: the emulator listens
        assert demo.poll() is None and time.monotonic() < deadline, demo.communicate()
        time.sleep(0.1)
    demo.send_signal(signal.SIGTERM)
    _, stderr = demo.communicate(timeout=60)
    assert demo.returncode == 130 and "demo interrupted; the emulator is stopped" in stderr
    assert not port_in_use("localhost", port)


def test_a_failed_cli_command_names_its_last_line_and_log(tmp_path, monkeypatch):
    cli = tmp_path / "cdk"
    cli.write_text("#!/bin/sh\necho 'synthesizing...'\necho 'Error: the stack is not bootstrapped' >&2\nexit 1\n")
    cli.chmod(0o755)
    monkeypatch.setattr(demo_module, "CDK", cli)
    demo = Demo("healthy", workdir=tmp_path, console=Console(quiet=True))
    with pytest.raises(DemoError, match=r"cdk bootstrap failed \(bootstrap the emulated account\): Error: the stack is "
                                        r"not bootstrapped \(full output: .*cdk-bootstrap.log\)"):
        demo.cdk("bootstrap", "aws://123456789012/us-east-1", what="bootstrap the emulated account")


def test_an_unknown_scenario_from_the_environment_is_one_line(tmp_path):
    import os

    run = subprocess.run([sys.executable, "scripts/demo.py", "--workdir", str(tmp_path)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "SCENARIO": "chaos"})
    assert run.returncode == 2
    assert run.stderr.strip() == "demo: SCENARIO must be one of healthy, regressed, got 'chaos'"


@pytest.mark.parametrize("status", [200, 424])
def test_the_demo_sends_invoke_endpoint_as_boto3_does(status, monkeypatch):
    """The demo's InvokeEndpointSender puts the same request on the wire as boto3's invoke_endpoint (method, URL,
    body, every signed header and the SigV4 signature itself) and gives the same answer or raises the same error."""
    import datetime as dt
    import io

    import boto3
    import botocore.auth
    from botocore.awsrequest import AWSResponse, HTTPHeaders
    from botocore.credentials import Credentials

    from scripts.demo import InvokeEndpointSender

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: dt.datetime(2026, 12, 1, 16, 43, 57))
    answer = {"Content-Type": "text/csv", "x-Amzn-Invoked-Production-Variant": "production"} if status == 200 else \
        {"Content-Type": "application/json", "x-amzn-ErrorType": "ModelError"}
    body = b"0.250000" if status == 200 else b'{"__type": "ModelError", "message": "no such model", "OriginalStatusCode": 424}'

    class Raw(io.BytesIO):
        def stream(self, **kwargs):
            yield self.read()

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    client = session.client("sagemaker-runtime", endpoint_url="http://localhost:5055")
    sent = []

    def before_send(request, **kwargs):
        sent.append((request.method, request.url, request.body, {k.lower(): v.decode() if isinstance(v, bytes) else v
                                                                for k, v in request.headers.items()}))
        return AWSResponse(request.url, status, {**answer, "Content-Length": str(len(body))}, Raw(body))

    def on_the_wire(prepared):
        sent.append((prepared.method, prepared.url, prepared.body, {k.lower(): v for k, v in prepared.headers.items()}))
        headers = HTTPHeaders()
        for name, value in {**answer, "Content-Length": str(len(body))}.items():
            headers[name] = value
        return status, headers, body

    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", before_send)
    sender = InvokeEndpointSender(client, Credentials("testing", "testing"))
    monkeypatch.setattr(sender, "_send", on_the_wire)
    params = {"EndpointName": "churn-shadow-test", "ContentType": "text/csv", "Accept": "text/csv",
              "Body": b"12,70.5,840.2,3,1,2,1,0", "InferenceId": "demo-000042"}
    outcomes = []
    for invoke in (client.invoke_endpoint, sender.invoke_endpoint):
        try:
            response = invoke(**params)
            outcomes.append((response["InvokedProductionVariant"], response["ContentType"], response["Body"].read()))
        except client.exceptions.ModelError as error:
            outcomes.append((type(error), error.response["Error"], error.response["ResponseMetadata"]["HTTPStatusCode"],
                             str(error)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == "production" if status == 200 else outcomes[0][2] == 424
    (boto_method, boto_url, boto_body, boto_headers), (method, url, sent_body, headers) = sent
    assert (method, url, sent_body) == (boto_method, boto_url, boto_body) == (
        "POST", "http://localhost:5055/endpoints/churn-shadow-test/invocations", b"12,70.5,840.2,3,1,2,1,0")
    # Everything but boto3's own bookkeeping (the user agent, its invocation id and attempt count: none signed).
    unsigned = {"user-agent", "amz-sdk-invocation-id", "amz-sdk-request"}
    assert {k: v for k, v in headers.items() if k not in unsigned} == \
        {k: v for k, v in boto_headers.items() if k not in unsigned}
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/sagemaker/")
    assert "x-amzn-sagemaker-inference-id" in headers["authorization"].split("SignedHeaders=")[1]
