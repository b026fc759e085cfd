"""shadow_emulator.EndpointRuntimeDouble: real predictions, shadow sampling, metrics, capture records."""

from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime, timedelta

import boto3
import numpy as np
import pytest
import xgboost as xgb
from botocore.exceptions import ClientError
from conftest import MODELS, SAGEMAKER_ROLE, XGBOOST_URI, create_churn_endpoint
from moto import mock_aws

from shadow_emulator import CloudWatchDouble, EndpointRuntimeDouble, SageMakerDouble

REGION = "us-east-1"
ROWS = np.random.default_rng(3).uniform([1, 18, 20, 1, 0, 1, 0, 0], [72, 120, 8000, 24, 6, 5, 1, 4], size=(200, 8))


def booster(name: str) -> xgb.Booster:
    with tarfile.open(MODELS / name / "model.tar.gz") as tar:
        raw = tar.extractfile("xgboost-model").read()
    model = xgb.Booster()
    model.load_model(bytearray(raw))
    return model


@pytest.fixture(scope="module")
def runs():
    """400 requests through an endpoint with a 50% shadow and full capture."""
    with mock_aws(), SageMakerDouble() as sagemaker, CloudWatchDouble(), \
            EndpointRuntimeDouble(sagemaker, seed=11, capture_batch=150) as runtime:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="models")
        s3.create_bucket(Bucket="capture")
        sm = boto3.client("sagemaker", region_name=REGION)
        for name in ("churn-v1", "churn-v2"):
            s3.put_object(Bucket="models", Key=f"{name}/model.tar.gz", Body=(MODELS / name / "model.tar.gz").read_bytes())
        create_churn_endpoint(sm, model_data_url=lambda name: f"s3://models/{name}/model.tar.gz", capture={
            "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://capture/datacapture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}})
        sm.create_model(ModelName="custom", ExecutionRoleArn=SAGEMAKER_ROLE,
                        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1"})
        runtime_client = boto3.client("sagemaker-runtime", region_name=REGION)
        answers = []
        for i in range(400):
            row = ",".join(f"{v:.2f}" for v in ROWS[i % len(ROWS)])
            response = runtime_client.invoke_endpoint(EndpointName="churn", ContentType="text/csv", Body=row,
                                                      InferenceId=f"req-{i}")
            answers.append((row, response["Body"].read().decode(), response["InvokedProductionVariant"]))
        runtime.flush_capture()
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        now = datetime.now(UTC)
        sums = {}
        for variant in ("production", "shadow"):
            stats = cloudwatch.get_metric_statistics(
                Namespace="AWS/SageMaker", MetricName="Invocations", Statistics=["Sum"], Period=3600,
                StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=1),
                Dimensions=[{"Name": "EndpointName", "Value": "churn"}, {"Name": "VariantName", "Value": variant}])
            sums[variant] = sum(p["Sum"] for p in stats["Datapoints"])
        captured = {}
        for variant in ("production", "shadow"):
            objects = s3.list_objects_v2(Bucket="capture", Prefix=f"datacapture/churn/{variant}/")["Contents"]
            records = [json.loads(line) for o in objects for line in
                       s3.get_object(Bucket="capture", Key=o["Key"])["Body"].read().decode().splitlines()]
            captured[variant] = (objects, records)
        # A replay: the clock set 3 hours back stamps metrics and capture records then.
        runtime.clock_offset = timedelta(hours=-3)
        for i in range(6):
            runtime_client.invoke_endpoint(EndpointName="churn", ContentType="text/csv", Body="5,99,495,1,4,1,1,2",
                                           InferenceId=f"late-{i}")
        runtime.flush_capture()
        runtime.clock_offset = timedelta(0)
        then = now - timedelta(hours=3)
        late_stats = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName="Invocations", Statistics=["Sum"], Period=600,
            StartTime=then - timedelta(minutes=5), EndTime=then + timedelta(minutes=5),
            Dimensions=[{"Name": "EndpointName", "Value": "churn"}, {"Name": "VariantName", "Value": "production"}])
        late_keys = [o["Key"] for o in s3.list_objects_v2(Bucket="capture", Prefix="datacapture/churn/production/")["Contents"]
                     if b"late-0" in s3.get_object(Bucket="capture", Key=o["Key"])["Body"].read()]
        # A shadow whose archive is missing: its failures stay with the shadow.
        sm.create_model(ModelName="lost", ExecutionRoleArn=SAGEMAKER_ROLE, PrimaryContainer={
            "Image": XGBOOST_URI, "ModelDataUrl": "s3://models/lost/model.tar.gz"})
        sm.create_endpoint_config(EndpointConfigName="lost-config", ProductionVariants=[
            {"VariantName": "production", "ModelName": "churn-v1", "InstanceType": "ml.m5.xlarge",
             "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}], ShadowProductionVariants=[
            {"VariantName": "shadow", "ModelName": "lost", "InstanceType": "ml.m5.xlarge",
             "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}])
        sm.create_endpoint(EndpointName="lost", EndpointConfigName="lost-config")
        lost_answers = [runtime_client.invoke_endpoint(EndpointName="lost", ContentType="text/csv",
                                                       Body="5,99,495,1,4,1,1,2")["Body"].read().decode()
                        for _ in range(3)]
        error = None
        sm.create_endpoint_config(EndpointConfigName="custom-config", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "custom", "InstanceType": "ml.m5.xlarge",
             "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="custom", EndpointConfigName="custom-config")
        try:
            runtime_client.invoke_endpoint(EndpointName="custom", ContentType="text/csv", Body="1,2")
        except ClientError as caught:
            error = caught
        yield {"answers": answers, "sums": sums, "captured": captured, "runtime": runtime, "error": error,
               "late_sum": sum(p["Sum"] for p in late_stats["Datapoints"]), "late_keys": late_keys, "then": then,
               "lost_answers": lost_answers}


def test_production_answers_with_version_1_predictions(runs):
    v1 = booster("churn-v1")
    for row, answer, variant in runs["answers"][:50]:
        expected = v1.predict(xgb.DMatrix(np.array([[float(x) for x in row.split(",")]], dtype=np.float32)))[0]
        assert variant == "production"
        assert float(answer) == pytest.approx(float(expected), abs=1e-6)


def test_shadow_gets_its_sampling_share(runs):
    sums = runs["sums"]
    assert sums["production"] == 400
    # Binomial(400, 0.5): 99.99% of draws lie within +-4 standard deviations (+-40).
    assert 160 <= sums["shadow"] <= 240


def test_capture_records_follow_sagemakers_format_and_layout(runs):
    objects, records = runs["captured"]["production"]
    assert len(records) == 400
    key = objects[0]["Key"]
    parts = key.split("/")
    assert parts[:3] == ["datacapture", "churn", "production"] and len(parts) == 8 and key.endswith(".jsonl")
    record = records[0]
    assert set(record) == {"captureData", "eventMetadata", "eventVersion"} and record["eventVersion"] == "0"
    assert record["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert record["captureData"]["endpointInput"]["mode"] == "INPUT"
    assert record["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    assert record["eventMetadata"]["inferenceId"].startswith("req-")


def test_shadow_records_pair_with_production_by_inference_id(runs):
    _, production = runs["captured"]["production"]
    _, shadow = runs["captured"]["shadow"]
    assert len(shadow) == runs["sums"]["shadow"]
    ids = {r["eventMetadata"]["inferenceId"] for r in production}
    assert {r["eventMetadata"]["inferenceId"] for r in shadow} <= ids
    v2 = booster("churn-v2")
    record = shadow[0]
    row = record["captureData"]["endpointInput"]["data"]
    expected = v2.predict(xgb.DMatrix(np.array([[float(x) for x in row.split(",")]], dtype=np.float32)))[0]
    assert float(record["captureData"]["endpointOutput"]["data"]) == pytest.approx(float(expected), abs=1e-6)


def test_images_it_cannot_run_are_named_in_the_error(runs):
    error = runs["error"]
    assert error is not None
    assert "serves SageMaker's XGBoost image only" in str(error) and "mine:1" in str(error)


def test_unknown_endpoint_is_a_validation_error(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(), SageMakerDouble() as sagemaker, EndpointRuntimeDouble(sagemaker), \
            pytest.raises(ClientError, match=r"Endpoint nowhere of account 123456789012 not found"):
        boto3.client("sagemaker-runtime", region_name=REGION).invoke_endpoint(
            EndpointName="nowhere", ContentType="text/csv", Body="1,2")


def test_a_clock_offset_stamps_metrics_and_capture_records_in_the_past(runs):
    assert runs["late_sum"] == 6  # the six replayed production requests, three hours back
    assert len(runs["late_keys"]) == 1
    assert runs["late_keys"][0].startswith(f"datacapture/churn/production/{runs['then']:%Y/%m/%d/%H}/")


def test_a_shadow_that_cannot_load_its_model_never_reaches_the_caller(runs):
    # production (churn-v1) answers all three; the shadow's ModelError is counted, not returned.
    assert all(0 < float(answer) < 1 for answer in runs["lost_answers"])
    counts = runs["runtime"].counts
    assert counts[("lost", "production", "invocations")] == 3 and counts[("lost", "production", "errors")] == 0
    assert counts[("lost", "shadow", "invocations")] == 3 and counts[("lost", "shadow", "errors")] == 3
    # The archive was looked for once, like a container's start, not in every request.
    assert set(runs["runtime"].unloadable) == {"s3://models/lost/model.tar.gz"}
    assert runs["runtime"].unloadable["s3://models/lost/model.tar.gz"].startswith("FileNotFoundError: NoSuchKey")


def test_model_latency_is_the_shorter_of_two_runs_and_failures_run_once(monkeypatch):
    from shadow_emulator import runtime as runtime_module
    from shadow_emulator.runtime import ModelServingError

    double = EndpointRuntimeDouble(sagemaker=None)
    predicted = []
    monkeypatch.setattr(double, "_booster", lambda backend, account, name: f"booster:{name}")
    monkeypatch.setattr(double, "_predict", lambda booster, body: predicted.append((booster, body)) or b"0.25")
    # A cold first run (5 ms) and a warm second one (2 ms): the latency is the warm one, and the
    # CPU time of both runs is reported so OverheadLatency does not absorb the repeat.
    ticks = iter([10.000, 10.005, 10.010, 10.012])
    monkeypatch.setattr(runtime_module.time, "thread_time", lambda: next(ticks))
    status, output, model_us, runs_us = double._serve(None, "123456789012", "churn", {"ModelName": "v2"},
                                                      b"1,2", "text/csv")
    assert (status, output) == (200, b"0.25") and predicted == [("booster:v2", b"1,2")] * 2
    assert model_us == pytest.approx(2000) and runs_us == pytest.approx(7000)

    def unloadable(backend, account, name):
        raise ModelServingError(f"model {name} could not be loaded")

    monkeypatch.setattr(double, "_booster", unloadable)
    ticks = iter([20.0, 20.003])
    status, output, model_us, runs_us = double._serve(None, "123456789012", "churn", {"ModelName": "lost"},
                                                      b"1,2", "text/csv")
    assert (status, output) == (424, b"model lost could not be loaded")
    assert model_us == runs_us == pytest.approx(3000)
