"""shadow_emulator's CloudWatch, Lambda and Step Functions doubles."""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import UTC, datetime, timedelta

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from shadow_emulator import CloudWatchDouble, LambdaDouble
from shadow_emulator.cloudwatch import percentile

START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)


@pytest.fixture
def cloudwatch(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(), CloudWatchDouble():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def query(stat: str, namespace: str = "AWS/SageMaker", qid: str = "q") -> dict:
    return {"Id": qid, "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "ModelLatency",
                                                 "Dimensions": [{"Name": "EndpointName", "Value": "churn"}]},
                                      "Period": 60, "Stat": stat}}


def test_percentile_matches_numpy_linear_interpolation():
    values = list(np.random.default_rng(1).lognormal(0, 1, 333))
    for q in (0, 50, 90, 99, 99.9, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    with pytest.raises(ValueError):
        percentile([], 50)


def test_percentile_statistics_per_period(cloudwatch):
    rng = np.random.default_rng(2)
    minutes = [list(rng.lognormal(10, 0.3, 120)) for _ in range(3)]
    for i, values in enumerate(minutes):
        cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{
            "MetricName": "ModelLatency", "Dimensions": [{"Name": "EndpointName", "Value": "churn"}],
            "Timestamp": START + timedelta(minutes=i, seconds=5), "Values": [float(v) for v in values]}])
    result = cloudwatch.get_metric_data(MetricDataQueries=[query("p99", qid="p99"), query("Average", qid="avg"),
                                                           query("p99", namespace="Other", qid="other")],
                                        StartTime=START, EndTime=START + timedelta(minutes=3),
                                        ScanBy="TimestampAscending")
    by_id = {r["Id"]: r for r in result["MetricDataResults"]}
    assert by_id["p99"]["Values"] == pytest.approx([float(np.percentile(v, 99)) for v in minutes])
    assert by_id["avg"]["Values"] == pytest.approx([float(np.mean(v)) for v in minutes])
    assert by_id["other"]["Values"] == []  # the namespace is matched too


def test_aggregated_values_read_their_maximum_as_percentile(cloudwatch):
    cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{
        "MetricName": "ModelLatency", "Dimensions": [{"Name": "EndpointName", "Value": "churn"}],
        "Timestamp": START + timedelta(seconds=5),
        "StatisticValues": {"SampleCount": 10, "Sum": 100, "Minimum": 1, "Maximum": 40}}])
    result = cloudwatch.get_metric_data(MetricDataQueries=[query("p90")], StartTime=START,
                                        EndTime=START + timedelta(minutes=1))
    assert result["MetricDataResults"][0]["Values"] == [40]


def test_the_index_follows_data_put_between_requests_and_each_backend_has_its_own(cloudwatch, monkeypatch):
    def put(minute: int, value: float) -> None:
        cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{
            "MetricName": "ModelLatency", "Dimensions": [{"Name": "EndpointName", "Value": "churn"}],
            "Timestamp": START + timedelta(minutes=minute, seconds=5), "Value": value}])

    def averages() -> list[float]:
        return cloudwatch.get_metric_data(MetricDataQueries=[query("Average")], StartTime=START, ScanBy="TimestampAscending",
                                          EndTime=START + timedelta(minutes=3))["MetricDataResults"][0]["Values"]

    put(0, 10.0)
    assert averages() == [10.0]
    put(0, 20.0)
    put(1, 5.0)
    put(5, 99.0)  # outside the window asked
    assert averages() == [15.0, 5.0]
    # Another account's backend: an index of its own, none of this one's datapoints.
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111122223333")
    other = boto3.client("cloudwatch", region_name="us-east-1")
    assert other.get_metric_data(MetricDataQueries=[query("Average")], StartTime=START,
                                 EndTime=START + timedelta(minutes=3))["MetricDataResults"][0]["Values"] == []


@pytest.fixture
def lambdas(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(config={"lambda": {"use_docker": False}}), LambdaDouble() as double:
        client = boto3.client("lambda", region_name="us-east-1")
        role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("x.py", "")
        for name, handler in (("restore", "shadow_runtime.handlers.restore_autoscaling"),
                              ("judge", "shadow_runtime.handlers.judge"), ("other", "x.handler")):
            client.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler=handler,
                                   Code={"ZipFile": buffer.getvalue()})
        yield client, double


def test_runtime_handlers_run_in_process(lambdas):
    client, double = lambdas
    response = client.invoke(FunctionName="restore", Payload=json.dumps({"targets": []}))
    assert json.loads(response["Payload"].read()) == {"restored": []}
    assert "FunctionError" not in response
    assert double.invocations == [("shadow_runtime.handlers.restore_autoscaling", {"targets": []})]


def test_handler_exceptions_become_function_errors(lambdas):
    client, _ = lambdas
    response = client.invoke(FunctionName="judge", Payload=json.dumps({"series": "not-s3"}))
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "ValueError" and "s3://bucket/key" in error["errorMessage"]


def test_other_functions_keep_motos_behaviour(lambdas):
    client, double = lambdas
    response = client.invoke(FunctionName="other", Payload=json.dumps({"a": 1}))
    assert json.loads(response["Payload"].read()) == {"a": 1}  # moto's echo
    assert double.invocations == []


def _finished(client, execution: str) -> dict:
    for _ in range(100):
        described = client.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError(f"{execution} still running")


def test_state_machines_from_cloudformation_can_be_executed(monkeypatch):
    from aws_cdk import aws_stepfunctions as sfn
    from conftest import new_stack, template_of

    from shadow_emulator import StepFunctionsDouble

    stack = new_stack()
    sfn.StateMachine(stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(
        sfn.Pass(stack, "Hello", result=sfn.Result.from_object({"greeting": "hi"}))))
    template = template_of(stack).to_json()
    for section in ("Rules", "Parameters"):
        template.pop(section, None)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), StepFunctionsDouble():
        boto3.client("cloudformation").create_stack(StackName="s", TemplateBody=json.dumps(template),
                                                    Capabilities=["CAPABILITY_IAM"])
        client = boto3.client("stepfunctions")
        machine, = client.list_state_machines()["stateMachines"]
        execution = client.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"]
        described = _finished(client, execution)
        assert described["status"] == "SUCCEEDED" and json.loads(described["output"]) == {"greeting": "hi"}
        boto3.client("cloudformation").delete_stack(StackName="s")
        assert client.list_state_machines()["stateMachines"] == []



def test_the_parse_cache_parses_a_definition_once_and_executions_keep_their_own_state(monkeypatch):
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from shadow_emulator import DefinitionParseCache

    # A Choice on the input and a Pass that counts into its result: two executions of one definition, run from
    # one parse tree, must each follow their own input.
    definition = json.dumps({"StartAt": "Which", "States": {
        "Which": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}],
                  "Default": "Small"},
        "Big": {"Type": "Pass", "Parameters": {"size": "big", "n.$": "$.n"}, "End": True},
        "Small": {"Type": "Pass", "Parameters": {"size": "small", "n.$": "$.n"}, "End": True}}})
    from moto.stepfunctions.parser.asl.utils import json_path
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original, original_validate = AmazonStateLanguageParser.parse, StepFunctionsParserBackend._validate_definition
    original_path = json_path.parse
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), DefinitionParseCache() as cache:
        client = boto3.client("stepfunctions")
        machine = client.create_state_machine(name="m", definition=definition,
                                              roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
        assert (cache.parses, cache.hits) == (1, 0)  # the creation parsed it
        outputs = [json.loads(_finished(client, client.start_execution(stateMachineArn=machine, name=f"n{n}", input=json.dumps({"n": n}))
                                        ["executionArn"])["output"]) for n in (5, 0, 7)]
        assert outputs == [{"size": "big", "n": 5}, {"size": "small", "n": 0}, {"size": "big", "n": 7}]
        assert (cache.parses, cache.hits) == (1, 3)  # each execution's start found the tree
        assert json_path.parse.cache_info().hits >= 3  # "$.n" of the Choice, parsed once for the three executions
        # Another machine of the same definition: checked when it was first seen, not parsed again.
        client.create_state_machine(name="m2", definition=definition, roleArn="arn:aws:iam::123456789012:role/r")
        assert (cache.parses, cache.hits) == (1, 3)
        # A definition that does not parse is moto's error, every time (nothing kept).
        for _ in range(2):
            with pytest.raises(ClientError, match="ASLParserException"):
                client.create_state_machine(name="bad", definition='{"StartAt": "X", "States": {"X": {"Type": "Nope"}}}',
                                            roleArn="arn:aws:iam::123456789012:role/r")
        assert (cache.parses, cache.hits) == (3, 3)
    assert AmazonStateLanguageParser.parse is original and StepFunctionsParserBackend._validate_definition is original_validate
    assert json_path.parse is original_path


def test_step_functions_lambda_tasks_reuse_one_client_per_region_while_the_lambda_double_is_installed():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    original = lambda_eval_utils.boto_client_for
    with mock_aws(), LambdaDouble():
        first = lambda_eval_utils.boto_client_for("us-east-1", "lambda", None)
        assert lambda_eval_utils.boto_client_for("us-east-1", "lambda", None) is first
        other = lambda_eval_utils.boto_client_for("eu-west-1", "lambda", None)
        assert other is not first and other.meta.region_name == "eu-west-1"
    assert lambda_eval_utils.boto_client_for is original


def test_the_cloudformation_double_reads_json_templates_as_json_and_others_as_yaml():
    import yaml
    from moto.cloudformation import models, responses

    from shadow_emulator import CloudFormationDouble

    with CloudFormationDouble(response_url="http://localhost:1"):
        reader = models.yaml
        # 1e3 is a number in JSON (and in CloudFormation's reading of a JSON template), a string to PyYAML 1.1.
        assert reader.load('{"Resources": {}, "Limit": 1e3}', Loader=yaml.Loader) == {"Resources": {}, "Limit": 1000.0}
        assert yaml.load('{"Limit": 1e3}', Loader=yaml.Loader) == {"Limit": "1e3"}
        assert reader.load("Resources:\n  A: {Type: X}\n", Loader=yaml.Loader) == {"Resources": {"A": {"Type": "X"}}}
        assert reader.load("{Type: X}", Loader=yaml.Loader) == {"Type": "X"}  # flow YAML, not JSON: PyYAML's
        assert responses.yaml.load('{"a": [1]}', Loader=yaml.Loader) == {"a": [1]}
    assert models.yaml is yaml and responses.yaml is yaml
