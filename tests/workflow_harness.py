"""Runs the synthesized PromotionWorkflow state machine in moto's ASL interpreter.

The template's definition is resolved against resources created in moto (functions, topic,
bucket, endpoint), Lambda tasks run the real handlers in-process (LambdaDouble), and the
SageMaker and CloudWatch gaps are filled by the project's doubles.
"""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
from capture_fixtures import record
from conftest import create_churn_endpoint

REGION, ACCOUNT = "us-east-1", "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/workflow"


def resolve(value: Any, names: dict[str, Any]) -> Any:
    """A CloudFormation value with Ref / GetAtt / Join replaced by the moto resources' values."""
    if isinstance(value, dict):
        if "Ref" in value:
            return names[value["Ref"]]
        if "Fn::GetAtt" in value:
            return names[".".join(value["Fn::GetAtt"])]
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(resolve(p, names)) for p in parts)
        if "Fn::FindInMap" in value:
            raise KeyError(f"unexpected mapping in definition: {value}")
    return value


def deploy(template: dict, endpoint_name: str = "churn") -> dict[str, Any]:
    """Create what the definition refers to in moto; return the state machine's ARN and helpers."""
    names: dict[str, Any] = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
                             "AWS::URLSuffix": "amazonaws.com"}
    lambda_client = boto3.client("lambda", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="workflow", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "# the double runs lambda/ in-process\n")
    for logical_id, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::Lambda::Function":
            arn = lambda_client.create_function(
                FunctionName=logical_id, Runtime="python3.12", Role=role, Handler=props["Handler"],
                Code={"ZipFile": buffer.getvalue()})["FunctionArn"]
            names[f"{logical_id}.Arn"] = arn
        elif kind == "AWS::SNS::Topic":
            names[logical_id] = boto3.client("sns", region_name=REGION).create_topic(Name=logical_id)["TopicArn"]
        elif kind == "AWS::S3::Bucket":
            bucket = logical_id.lower()[:60]
            boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
            names[logical_id] = bucket
        elif kind == "AWS::SageMaker::Endpoint":
            names[logical_id] = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{endpoint_name}"
            names[f"{logical_id}.EndpointName"] = endpoint_name
        elif kind == "AWS::SageMaker::InferenceExperiment":
            names[f"{logical_id}.Arn"] = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-experiment/{props['Name']}"
        elif kind == "AWS::KMS::Key":
            names[f"{logical_id}.Arn"] = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{logical_id}"
        elif kind == "AWS::Athena::WorkGroup":
            boto3.client("athena", region_name=REGION).create_work_group(Name=props["Name"])
            names[logical_id] = props["Name"]
    glue = boto3.client("glue", region_name=REGION)
    for kind in ("AWS::Glue::Database", "AWS::Glue::Table"):  # CaptureAnalytics' table, for the agreement query
        for resource in (r for r in template["Resources"].values() if r["Type"] == kind):
            props = resource["Properties"]
            if kind == "AWS::Glue::Database":
                glue.create_database(DatabaseInput=props["DatabaseInput"])
            else:
                table = dict(props["TableInput"])
                table["StorageDescriptor"] = {**table["StorageDescriptor"],
                                              "Location": resolve(table["StorageDescriptor"]["Location"], names)}
                table["Parameters"] = {k: resolve(v, names) for k, v in table.get("Parameters", {}).items()}
                glue.create_table(DatabaseName=props["DatabaseName"], TableInput=table)
    machine = next(r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    definition = resolve(machine["Properties"]["DefinitionString"], names)
    json.loads(definition)  # resolved to plain JSON
    sfn = boto3.client("stepfunctions", region_name=REGION)
    name = resolve(machine["Properties"].get("StateMachineName", "promotion"), names)
    arn = sfn.create_state_machine(name=name, definition=definition, roleArn=role)["stateMachineArn"]
    bucket = next(v for k, v in names.items() if k.startswith("PromotionReportsBucket") and "." not in k)
    return {"state_machine": arn, "names": names, "reports_bucket": bucket}


def create_endpoint(sagemaker, *, shadow: bool = True, name: str = "churn") -> None:
    """The reference endpoint, without model archives or capture (the workflow reads only metrics)."""
    create_churn_endpoint(sagemaker, shadow=shadow, name=name)


def publish_traffic(minutes: int, *, rpm: int = 200, regression: float = 0.0, endpoint: str = "churn",
                    production: str = "production", shadow: str = "shadow", seed: int = 5) -> None:
    """Per-request latencies and per-minute counts of both variants over the last ``minutes``."""
    rng = np.random.default_rng(seed)
    cloudwatch = _MetricBackend()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for m in range(minutes, 0, -1):
        stamp = now - timedelta(minutes=m) + timedelta(seconds=30)
        load = rng.normal(0, 0.15)
        n = int(rng.poisson(rpm))
        for variant, count, factor in ((production, n, 1.0), (shadow, int(rng.binomial(n, 0.5)), 1 + regression)):
            dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
            latencies = np.exp(rng.normal(math.log(20_000) + load, 0.25, count)) * factor
            data = [{"MetricName": "Invocations", "Dimensions": dims, "Timestamp": stamp, "Value": count},
                    {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Timestamp": stamp, "Value": 0},
                    {"MetricName": "InvocationModelErrors", "Dimensions": dims, "Timestamp": stamp, "Value": 0},
                    {"MetricName": "Invocation4XXErrors", "Dimensions": dims, "Timestamp": stamp, "Value": 0}]
            for chunk in range(0, len(latencies), 150):
                values = [float(v) for v in latencies[chunk:chunk + 150]]
                data.append({"MetricName": "ModelLatency", "Dimensions": dims, "Timestamp": stamp, "Values": values})
                data.append({"MetricName": "OverheadLatency", "Dimensions": dims, "Timestamp": stamp,
                             "Values": [v / 20 for v in values]})
            cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=data)
            cloudwatch.put_metric_data(Namespace="/aws/sagemaker/Endpoints", MetricData=[
                {"MetricName": "CPUUtilization", "Dimensions": dims, "Timestamp": stamp, "Value": 30 * (1 + load)},
                {"MetricName": "MemoryUtilization", "Dimensions": dims, "Timestamp": stamp, "Value": 40.0}])


class _MetricBackend:
    """PutMetricData straight into moto's CloudWatch backend, with the datapoints moto's API stores (one
    ``MetricDatum`` a value, naive UTC timestamps): a few tens of thousands of latencies a test, which through
    boto3's query-string serialization and moto's parsing took about 1.5 s of CPU each time, and through moto's
    backend call 0.8 s (it makes the dimension objects anew for every value; here the values of one datum share
    them, as nothing changes them)."""

    def put_metric_data(self, Namespace: str, MetricData: list[dict]) -> None:  # noqa: N803 - the API's names
        from moto.cloudwatch.models import Dimension, MetricDatum, cloudwatch_backends

        stored = cloudwatch_backends[ACCOUNT][REGION].metric_data
        for datum in MetricData:
            stamp = datum["Timestamp"].astimezone(UTC).replace(tzinfo=None)
            dimensions = [Dimension(d["Name"], d["Value"]) for d in datum["Dimensions"]]
            for value in datum.get("Values") or [datum["Value"]]:
                point = MetricDatum(Namespace, datum["MetricName"], float(value), [], stamp, datum.get("Unit"))
                point.dimensions = dimensions
                stored.append(point)


def publish_capture(pairs: int, disagreements: int, *, bucket: str = "capture", prefix: str = "datacapture",
                    endpoint: str = "churn") -> None:
    """Capture files of ``pairs`` requests served by both variants, ten minutes ago; the shadow's probability
    falls on the other side of 0.5 for the first ``disagreements`` of them."""
    s3 = boto3.client("s3", region_name=REGION)
    moment = datetime.now(UTC) - timedelta(minutes=10)
    for variant in ("production", "shadow"):
        lines = [record(f"req-{i}", f"{0.2 if variant == 'production' or i >= disagreements else 0.8:.6f}",
                        time=moment.strftime("%Y-%m-%dT%H:%M:%SZ"), event_id=f"{variant}-{i}") for i in range(pairs)]
        key = f"{prefix}/{endpoint}/{variant}/{moment:%Y/%m/%d/%H}/capture.jsonl"
        s3.put_object(Bucket=bucket, Key=key, Body="".join(line + "\n" for line in lines).encode())


def run(state_machine: str, payload: dict | None = None, timeout: float = 90,
        on_waiting=None, name: str | None = None) -> dict[str, Any]:
    """Start an execution and wait for its end; ``on_waiting(execution_arn)`` is called once per poll."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    name = name or f"run-{time.time_ns()}"
    arn = sfn.start_execution(stateMachineArn=state_machine, name=name, input=json.dumps(payload or {}))["executionArn"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        if on_waiting:
            on_waiting(arn)
        time.sleep(0.1)
    raise TimeoutError(f"execution {arn} still running after {timeout} s")


def task_token(execution_arn: str, state: str) -> str | None:
    """The task token a waitForTaskToken state sent (read from its scheduled parameters)."""
    entered = False
    for event in history(execution_arn):
        if event.get("stateEnteredEventDetails", {}).get("name") == state:
            entered = True
        if entered and event["type"] == "TaskScheduled":
            parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
            message = parameters.get("Message")
            message = json.loads(message) if isinstance(message, str) else message
            return message["token"]
    return None


def state_output(execution_arn: str, state: str) -> dict:
    for event in history(execution_arn):
        details = event.get("stateExitedEventDetails", {})
        if details.get("name") == state:
            return json.loads(details["output"])
    raise KeyError(f"state {state!r} never exited")


def failures(execution_arn: str) -> str:
    """Every failure event of an execution, as text (for assertion messages)."""
    lines = []
    for event in history(execution_arn):
        if "Failed" in event["type"]:
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            lines.append(f"{event['type']}: {details.get('error')}: {str(details.get('cause'))[:600]}")
    return "\n".join(lines)


def history(execution_arn: str) -> list[dict]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    return sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]


def states_entered(execution_arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history(execution_arn) if "stateEnteredEventDetails" in e]
