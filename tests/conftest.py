"""Shared helpers: one jsii process per worker, stacks synthesized once per module."""

from __future__ import annotations

import glob
import json
import math
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# As app.py does for its jsii kernel (and for the same reason: Node's four V8 worker threads compiling CDK's template
# validation engine swamp a 2-core machine): each test worker's kernel sizes its pool to the machine. Same templates.
if "--v8-pool-size" not in os.environ.get("NODE_OPTIONS", ""):
    os.environ["NODE_OPTIONS"] = f"{os.environ.get('NODE_OPTIONS', '')} --v8-pool-size=0".strip()
# CDK's built-in template validation, as CDK registers it by default, reports what it finds as warnings and never
# fails a synth (unless @aws-cdk/core:validateAgainstDefaultRules is set), yet costs about half of the CPU of each of
# the suite's synths. The workers' kernels skip it; tests/test_app.py runs it on the example app with its findings as
# errors (cdk.json sets the flag, so `make demo`'s synth fails on them too), with a template it must fail as control.
os.environ.setdefault("CDK_VALIDATION", "false")

import aws_cdk as cdk  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from aws_cdk import assertions  # noqa: E402


def _share_botocore_data_loader() -> None:
    """One botocore data loader for the whole test process, as one long-lived boto3 session would have.

    moto's ``mock_aws`` gives every test a new default boto3 session, and each new session's loader reads and
    parses again every service model its clients use (SageMaker's is megabytes of JSON) and the endpoint
    rules: about half a second of CPU per test that calls AWS. The models are the same files; a session only
    reads them, so sessions may share the loader (and its cache) like the clients of one session do.
    """
    import botocore.session

    loaders: dict[str | None, object] = {}
    create = botocore.session.create_loader

    def create_loader(search_path_string: str | None = None):
        if search_path_string not in loaders:
            loaders[search_path_string] = create(search_path_string)
        return loaders[search_path_string]

    botocore.session.create_loader = create_loader


_share_botocore_data_loader()

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lambda"))
MODELS = ROOT / "models"
XGBOOST_URI = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SAGEMAKER_ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def new_stack(name: str = "Test", *, region: str | None = None) -> cdk.Stack:
    app = cdk.App(outdir=tempfile.mkdtemp(prefix="cdkout-"))
    env = cdk.Environment(account="123456789012", region=region) if region else None
    return cdk.Stack(app, name, env=env)


def template_of(stack: cdk.Stack) -> assertions.Template:
    return assertions.Template.from_stack(stack)


def resources_of(template: assertions.Template, kind: str) -> dict:
    return template.find_resources(kind)


def only(template: assertions.Template, kind: str) -> dict:
    found = template.find_resources(kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return next(iter(found.values()))


def policy_statements(template: assertions.Template, role_logical_prefix: str) -> list[dict]:
    """Every statement of the AWS::IAM::Policy resources whose logical id starts with the prefix."""
    statements = []
    for logical_id, policy in template.find_resources("AWS::IAM::Policy").items():
        if logical_id.startswith(role_logical_prefix):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def actions_of(statement: dict) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def create_churn_endpoint(sagemaker, *, name: str = "churn", shadow: bool = True, model_data_url=None,
                          shadow_instance_type: str = "ml.m5.xlarge", capture: dict | None = None) -> None:
    """The reference endpoint in moto (with shadow_emulator.SageMakerDouble installed): models churn-v1 and
    churn-v2, churn-v1 in production on 2 x ml.m5.xlarge and, with ``shadow``, churn-v2 as a 50% shadow.

    ``model_data_url(model_name)`` gives each model's archive URL (default: none); ``capture`` is a
    DataCaptureConfig. Config names: ``shadow-config``, or ``plain-config`` (variant ``AllTraffic``).
    """
    for model in ("churn-v1", "churn-v2"):
        container = {"Image": XGBOOST_URI}
        if model_data_url is not None:
            container["ModelDataUrl"] = model_data_url(model)
        sagemaker.create_model(ModelName=model, ExecutionRoleArn=SAGEMAKER_ROLE, PrimaryContainer=container)
    config = {"EndpointConfigName": "shadow-config" if shadow else "plain-config",
              "ProductionVariants": [{"VariantName": "production" if shadow else "AllTraffic", "ModelName": "churn-v1",
                                      "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 2,
                                      "InitialVariantWeight": 1.0}]}
    if shadow:
        config["ShadowProductionVariants"] = [{"VariantName": "shadow", "ModelName": "churn-v2",
                                               "InstanceType": shadow_instance_type, "InitialInstanceCount": 1,
                                               "InitialVariantWeight": 0.5}]
    if capture is not None:
        config["DataCaptureConfig"] = capture
    sagemaker.create_endpoint_config(**config)
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config["EndpointConfigName"])


def cfn_lint_findings(template_text: str, regions: tuple[str, ...] = ("us-east-1", "eu-west-1")) -> list[str]:
    """cfn-lint's findings for a template, with the project's .cfnlintrc.yaml ignores."""
    import yaml
    from cfnlint.api import ManualArgs, lint

    ignores = yaml.safe_load((ROOT / ".cfnlintrc.yaml").read_text()).get("ignore_checks", [])
    return [str(m) for m in lint(template_text, config=ManualArgs(regions=list(regions), ignore_checks=ignores))]


def nag_violations(app: cdk.App) -> list[str]:
    """Synthesize ``app`` (which has cdk-nag added) and return every unacknowledged finding."""
    try:
        app.synth()
        return []
    except RuntimeError as error:
        reports = glob.glob(os.path.join(app.outdir, "validation-report.json"))
        if not reports:
            raise
        report = json.loads(Path(reports[0]).read_text())
        return [f"{v['ruleName']} at {c['constructPath']}"
                for plugin in report["pluginReports"] for v in plugin["violations"]
                for c in v["violatingConstructs"]] or [str(error)]


def simulated_traffic(minutes=60, *, regression=0.0, error_p=0.002, error_s=0.002, rpm=400, seed=1, share=0.5,
            model_errors_s=0.0):
    """Per-minute CloudWatch-like series of both variants from simulated requests."""
    rng = np.random.default_rng(seed)
    keys = ("Invocations", "Invocation5XXErrors", "InvocationModelErrors", "ModelLatency:p99", "ModelLatency:p50",
            "ModelLatency:Average", "CPUUtilization:Average")
    production, shadow = {k: [] for k in keys}, {k: [] for k in keys}
    for _ in range(minutes):
        load = rng.normal(0, 0.15)  # both variants feel the same load swing in a minute
        n = int(rng.poisson(rpm))
        n_s = int(rng.binomial(n, share))
        for series, count, factor, error, model_errors in ((production, n, 1.0, error_p, 0.0),
                                                           (shadow, n_s, 1 + regression, error_s, model_errors_s)):
            latency = np.exp(rng.normal(math.log(20_000) + load, 0.25, count)) * factor
            series["Invocations"].append(count)
            series["Invocation5XXErrors"].append(int(rng.binomial(count, error)))
            series["InvocationModelErrors"].append(int(rng.binomial(count, model_errors)))
            series["ModelLatency:p99"].append(float(np.percentile(latency, 99)) if count else None)
            series["ModelLatency:p50"].append(float(np.percentile(latency, 50)) if count else None)
            series["ModelLatency:Average"].append(float(latency.mean()) if count else None)
            series["CPUUtilization:Average"].append(float(30 * (1 + load) * factor))
    return production, shadow


@pytest.fixture
def stack() -> cdk.Stack:
    return new_stack()
