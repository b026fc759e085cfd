"""The real PromotionWorkflow definition executed by moto's ASL interpreter, path by path.

Lambda tasks run the real handlers in-process; SageMaker's and CloudWatch's gaps in moto are
filled by shadow_emulator's doubles. Waits are real, so polls and retries are set to 1 second.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aws_cdk as cdk
import boto3
import pytest
import workflow_harness as harness
from conftest import XGBOOST_URI, new_stack, template_of
from moto import mock_aws

from shadow_constructs import (
    DeploymentGuardrails,
    ExperimentOutcome,
    InconclusiveAction,
    ManagedShadowTest,
    PromotionWorkflow,
    ServingModel,
    ShadowEndpoint,
    Variant,
)
from shadow_emulator import CloudWatchDouble, DefinitionParseCache, LambdaDouble, SageMakerDouble, WaitStateDouble

FAST = {"window": cdk.Duration.minutes(30), "retry_interval": cdk.Duration.seconds(1),
        "poll_interval": cdk.Duration.seconds(1), "update_timeout": cdk.Duration.seconds(4),
        "criteria": {"latency_tolerance": 0.1}, "on_inconclusive": InconclusiveAction.KEEP}


def self_service_template(**overrides) -> dict:
    stack = new_stack()
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    endpoint = ShadowEndpoint(stack, "Endpoint", endpoint_name="churn", production=Variant(model=v1, instance_count=2),
                              shadow=Variant(model=v2), sampling_percent=50, deployment=DeploymentGuardrails())
    PromotionWorkflow(stack, "Promotion", endpoint=endpoint, **{**FAST, **overrides})
    return template_of(stack).to_json()


@pytest.fixture(scope="module")
def automatic():
    return self_service_template()


@pytest.fixture(scope="module")
def with_approval():
    return self_service_template(require_approval=True)


# One parse of each definition for the whole module (moto parses it at creation and at every execution's start).
PARSES = DefinitionParseCache()


@pytest.fixture
def world(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", harness.REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    # Waits and retry back-offs move a clock instead of sleeping: the executions' logic, at once.
    with mock_aws(config=config), SageMakerDouble(update_polls=2) as sagemaker, CloudWatchDouble(), LambdaDouble(), \
            WaitStateDouble(fast_forward=True), PARSES:
        yield sagemaker, boto3.client("sagemaker", region_name=harness.REGION)


def production_model(client) -> tuple[str, list]:
    endpoint = client.describe_endpoint(EndpointName="churn")
    config = client.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    return config["ProductionVariants"][0]["ModelName"], config.get("ShadowProductionVariants", [])


def start(template, client, *, regression=0.0, rpm=400, **run):
    harness.create_endpoint(client)
    harness.publish_traffic(30, rpm=rpm, regression=regression)
    deployed = harness.deploy(template)
    return deployed, harness.run(deployed["state_machine"], **run)


def test_healthy_shadow_is_promoted_keeping_the_variant_name(world, automatic):
    _, client = world
    deployed, result = start(automatic, client)
    assert result["status"] == "SUCCEEDED", harness.failures(result["executionArn"])
    states = harness.states_entered(result["executionArn"])
    assert "PromoteUpdateEndpoint" in states and "PromoteRestoreAutoscaling" in states
    model, shadows = production_model(client)
    assert (model, shadows) == ("churn-v2", [])
    endpoint = client.describe_endpoint(EndpointName="churn")
    assert endpoint["ProductionVariants"][0]["VariantName"] == "production"
    verdict = harness.state_output(result["executionArn"], "Judge")["verdict"]
    assert verdict["decision"] == "PROMOTE"
    bucket, key = verdict["report_markdown"][5:].split("/", 1)
    report = boto3.client("s3", region_name=harness.REGION).get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert report.startswith("# Shadow test verdict: **PROMOTE**")
    # The execution's output: what was decided and done (what shadow-test and pipelines read).
    output = json.loads(result["output"])
    assert output == {"decision": "PROMOTE", "score": verdict["score"], "report": verdict["report_markdown"],
                      "outcome": "promote: endpoint updated", "action": "promoted"}


def test_regressed_shadow_is_removed_and_production_untouched(world, automatic):
    _, client = world
    _, result = start(automatic, client, regression=0.5)
    assert result["status"] == "SUCCEEDED", result
    assert harness.state_output(result["executionArn"], "Judge")["verdict"]["decision"] == "REJECT"
    assert production_model(client) == ("churn-v1", [])
    assert "RemoveShadowUpdateEndpoint" in harness.states_entered(result["executionArn"])
    assert json.loads(result["output"])["action"] == "shadow_removed"


def test_a_pipeline_run_fails_unless_the_shadow_was_promoted(world, automatic):
    _, client = world
    _, result = start(automatic, client, regression=0.5, payload={"fail_unless_promoted": True})
    # The shadow was removed as usual, and the run (a pipeline's verdict step) failed, saying why.
    assert production_model(client) == ("churn-v1", [])
    assert (result["status"], result["error"]) == ("FAILED", "ShadowNotPromoted")
    assert result["cause"].startswith("The shadow was not promoted: decision REJECT, remove_shadow: endpoint updated")


def test_a_following_run_takes_the_self_ending_runs_result_instead_of_judging_again(world, automatic):
    _, client = world
    deployed, own = start(automatic, client, name="test-end-0123456789abcdef01234567")
    assert own["status"] == "SUCCEEDED", harness.failures(own["executionArn"])
    followed = harness.run(deployed["state_machine"], {"follow": True, "fail_unless_promoted": True})
    assert followed["status"] == "SUCCEEDED", harness.failures(followed["executionArn"])
    states = harness.states_entered(followed["executionArn"])
    assert "FollowedResult" in states and "Judge" not in states  # judged once, by the self-ending run
    assert json.loads(followed["output"]) == json.loads(own["output"])


def test_a_following_run_judges_itself_when_the_test_does_not_end_itself(world, automatic):
    _, client = world
    _, result = start(automatic, client, payload={"follow": True, "fail_unless_promoted": True})
    assert result["status"] == "SUCCEEDED", harness.failures(result["executionArn"])
    states = harness.states_entered(result["executionArn"])
    assert states[:2] == ["Follow?", "FollowTestEnd"] and "Judge" in states
    assert json.loads(result["output"])["action"] == "promoted"


def test_inconclusive_keeps_everything_as_it_is(world, automatic):
    _, client = world
    _, result = start(automatic, client, rpm=4)
    assert result["status"] == "SUCCEEDED", result
    assert "KeptAsIs" in harness.states_entered(result["executionArn"])
    assert json.loads(result["output"])["action"] == "none"
    model, shadows = production_model(client)
    assert model == "churn-v1" and [s["VariantName"] for s in shadows] == ["shadow"]


def test_a_test_still_inconclusive_after_its_extensions_removes_the_shadow_by_default(world):
    # The defaults: EXTEND, then (after_extensions) REMOVE_SHADOW: the test stops costing, production untouched.
    template = self_service_template(on_inconclusive=InconclusiveAction.EXTEND, max_extensions=1,
                                     extension=cdk.Duration.minutes(1))
    _, client = world
    _, result = start(template, client, rpm=4)
    assert result["status"] == "SUCCEEDED", harness.failures(result["executionArn"])
    states = harness.states_entered(result["executionArn"])
    assert states.count("WaitForMoreTraffic") == 1 and "KeptAsIs" not in states and "RemoveShadowUpdate" in "".join(states)
    output = json.loads(result["output"])
    assert (output["decision"], output["action"]) == ("INCONCLUSIVE", "shadow_removed")
    model, shadows = production_model(client)
    assert model == "churn-v1" and shadows == []


def test_update_failure_leaves_the_old_production_serving(world, automatic):
    double, client = world
    double.fail_next_update("churn", mode="rollback")
    _, result = start(automatic, client)
    assert result["status"] == "FAILED"
    states = harness.states_entered(result["executionArn"])
    assert "PromoteRolledBack" in states and "PromoteRestoreAfterRollback" in states and states[-1] == "Failed"
    endpoint = client.describe_endpoint(EndpointName="churn")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", "shadow-config")
    assert production_model(client)[0] == "churn-v1"


def test_update_that_never_finishes_times_out_without_touching_production(world, automatic):
    double, client = world
    double.update_polls = 1000
    _, result = start(automatic, client)
    assert result["status"] == "FAILED"
    assert "PromoteTimedOut" in harness.states_entered(result["executionArn"])
    assert client.describe_endpoint(EndpointName="churn")["EndpointConfigName"] == "shadow-config"


def test_throttled_update_is_retried(world, automatic):
    double, client = world
    double.throttle("UpdateEndpoint", times=2)
    _, result = start(automatic, client)
    assert result["status"] == "SUCCEEDED", harness.failures(result["executionArn"])
    updates = [params for op, params in double.calls if op == "UpdateEndpoint"]
    assert len(updates) == 3
    assert production_model(client)[0] == "churn-v2"


def test_rerun_after_promotion_is_safe(world, automatic):
    double, client = world
    deployed, first = start(automatic, client)
    assert first["status"] == "SUCCEEDED"
    second = harness.run(deployed["state_machine"])
    assert second["status"] in ("SUCCEEDED", "FAILED")
    assert production_model(client) == ("churn-v2", [])  # never reverted, never broken


def test_promotion_waits_for_a_person(world, with_approval):
    _, client = world
    approved = []

    def approve(execution_arn):
        token = harness.task_token(execution_arn, "AwaitApproval")
        if token and not approved:
            boto3.client("stepfunctions", region_name=harness.REGION).send_task_success(
                taskToken=token, output=json.dumps({"approved": True}))
            approved.append(token)

    _, result = start(with_approval, client, on_waiting=approve)
    assert approved and result["status"] == "SUCCEEDED", result
    assert production_model(client) == ("churn-v2", [])


def test_declined_promotion_changes_nothing(world, with_approval):
    _, client = world

    def decline(execution_arn):
        token = harness.task_token(execution_arn, "AwaitApproval")
        if token:
            boto3.client("stepfunctions", region_name=harness.REGION).send_task_success(
                taskToken=token, output=json.dumps({"approved": False}))

    _, result = start(with_approval, client, on_waiting=decline)
    assert result["status"] == "SUCCEEDED"
    assert "PromotionDeclined" in harness.states_entered(result["executionArn"])
    output = json.loads(result["output"])
    assert (output["decision"], output["action"]) == ("PROMOTE", "declined")
    assert production_model(client)[0] == "churn-v1"


def test_managed_test_is_ended_with_stop_inference_experiment(world):
    double, client = world
    stack = new_stack()
    candidate = ServingModel(stack, "Candidate", image=XGBOOST_URI)
    endpoint = ShadowEndpoint.from_endpoint_name(stack, "Prod", "churn", production_variant_name="AllTraffic")
    test = ManagedShadowTest(stack, "Test", endpoint=endpoint, production_model="churn-v1",
                             shadow=Variant(model=candidate), sampling_percent=50,
                             outcome=ExperimentOutcome.RUNNING, experiment_name="churn-v2-test")
    PromotionWorkflow(stack, "Promotion", endpoint=endpoint, managed_test=test, **FAST)
    template = template_of(stack).to_json()

    harness.create_endpoint(client, shadow=False)
    client.create_inference_experiment(
        Name="churn-v2-test", Type="ShadowMode", RoleArn=harness.ROLE, EndpointName="churn",
        ModelVariants=[{"ModelName": m, "VariantName": v, "InfrastructureConfig": {
            "InfrastructureType": "RealTimeInference",
            "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}}}
            for m, v in (("churn-v1", "AllTraffic"), ("churn-v2", "shadow"))],
        ShadowModeConfig={"SourceModelVariantName": "AllTraffic",
                          "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}]})
    harness.publish_traffic(30, rpm=400, production="AllTraffic")
    deployed = harness.deploy(template)
    result = harness.run(deployed["state_machine"])
    assert result["status"] == "SUCCEEDED", result
    experiment = client.describe_inference_experiment(Name="churn-v2-test")
    assert experiment["Status"] == "Completed"
    assert {v["VariantName"]: v["Status"] for v in experiment["ModelVariants"]} == \
        {"AllTraffic": "NotDeployed", "shadow": "Deployed"}
    stops = [params for op, params in double.calls if op == "StopInferenceExperiment"]
    assert stops[0]["ModelVariantActions"] == {"AllTraffic": "Remove", "shadow": "Promote"}


@pytest.fixture(scope="module")
def resized():
    return self_service_template(instance_override={"InstanceType": "ml.m5.2xlarge", "InitialInstanceCount": 2})


def test_autoscaling_is_taken_down_for_the_update_and_restored_after(world, resized):
    _, client = world
    harness.create_endpoint(client)
    scaling = boto3.client("application-autoscaling", region_name=harness.REGION)
    dimension = "sagemaker:variant:DesiredInstanceCount"
    for variant, high in (("production", 4), ("shadow", 2)):
        scaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=f"endpoint/churn/variant/{variant}",
                                         ScalableDimension=dimension, MinCapacity=1, MaxCapacity=high)
    harness.publish_traffic(30, rpm=400)
    result = harness.run(harness.deploy(resized)["state_machine"])
    assert result["status"] == "SUCCEEDED", harness.failures(result["executionArn"])
    endpoint = client.describe_endpoint(EndpointName="churn")
    config = client.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert [(v["ModelName"], v["InstanceType"]) for v in config["ProductionVariants"]] == [("churn-v2", "ml.m5.2xlarge")]
    targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MaxCapacity"]) for t in targets] == [("endpoint/churn/variant/production", 4)]


# Judging answers: the agreement measured by CaptureAnalytics' query (run for real by the AthenaDouble).

@pytest.fixture(scope="module")
def with_agreement():
    from aws_cdk import aws_s3 as s3

    from shadow_constructs import CaptureAnalytics, DataCapture

    stack = new_stack()
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    endpoint = ShadowEndpoint(stack, "Endpoint", endpoint_name="churn", production=Variant(model=v1, instance_count=2),
                              shadow=Variant(model=v2), sampling_percent=50, deployment=DeploymentGuardrails(),
                              data_capture=DataCapture(bucket=s3.Bucket.from_bucket_name(stack, "Capture", "capture")))
    analytics = CaptureAnalytics(stack, "Analytics", endpoint=endpoint)
    PromotionWorkflow(stack, "Promotion", endpoint=endpoint, capture_analytics=analytics,
                      **{**FAST, "criteria": {"latency_tolerance": 0.1, "min_agreement": 0.95}})
    return template_of(stack).to_json()


@pytest.fixture
def athena_world(world):
    from shadow_emulator import AthenaDouble

    with AthenaDouble() as double:
        boto3.client("s3", region_name=harness.REGION).create_bucket(Bucket="capture")
        yield (*world, double)


def published_agreement() -> dict[str, float]:
    """The live agreement metrics of the shadow variant, as the emulated CloudWatch holds them (the last of each)."""
    cloudwatch = boto3.client("cloudwatch", region_name=harness.REGION)
    dims = [{"Name": "EndpointName", "Value": "churn"}, {"Name": "VariantName", "Value": "shadow"}]
    now = datetime.now(UTC)
    figures = {}
    for name in ("PairedPredictions", "PredictionAgreement", "PredictionMeanAbsDifference"):
        points = cloudwatch.get_metric_statistics(
            Namespace="ShadowConstructs/Predictions", MetricName=name, Dimensions=dims, StartTime=now - timedelta(days=1),
            EndTime=now + timedelta(days=1), Period=60, Statistics=["Maximum"])["Datapoints"]
        if points:
            figures[name] = max(points, key=lambda p: p["Timestamp"])["Maximum"]
    return figures


def test_answers_that_disagree_reject_a_shadow_with_healthy_metrics(athena_world, with_agreement):
    _, client, _ = athena_world
    harness.publish_capture(pairs=400, disagreements=80)  # 80% agreement, minimum 95%
    _, result = start(with_agreement, client)
    assert result["status"] == "SUCCEEDED", harness.failures(result["executionArn"])
    states = harness.states_entered(result["executionArn"])
    assert states.index("GatherMetrics") < states.index("MeasureAgreement") < states.index("Judge")
    measured = harness.state_output(result["executionArn"], "MeasureAgreement")["agreement"]
    assert (measured["agreement"], measured["predictions"]) == (0.8, 400)
    # Published as live metrics (ShadowDashboard shows them, ShadowAlarms watch them), with the values judged.
    assert measured["published"] == ["PairedPredictions", "PredictionAgreement", "PredictionMeanAbsDifference"]
    assert published_agreement() == {"PairedPredictions": 400.0, "PredictionAgreement": 80.0,
                                     "PredictionMeanAbsDifference": pytest.approx(0.6 * 80 / 400)}
    verdict = harness.state_output(result["executionArn"], "Judge")["verdict"]
    assert verdict["decision"] == "REJECT" and "PredictionAgreement" in verdict["summary"]
    assert production_model(client) == ("churn-v1", [])  # the shadow removed, production as it was


def test_answers_that_agree_let_the_metrics_decide(athena_world, with_agreement):
    _, client, _ = athena_world
    harness.publish_capture(pairs=400, disagreements=0)
    _, result = start(with_agreement, client)
    assert result["status"] == "SUCCEEDED", harness.failures(result["executionArn"])
    assert harness.state_output(result["executionArn"], "Judge")["verdict"]["decision"] == "PROMOTE"
    assert production_model(client) == ("churn-v2", [])


def test_a_failing_agreement_query_stops_the_run_before_anything_changes(athena_world, with_agreement):
    _, client, double = athena_world
    # No capture table: the query fails in Athena, the function reports it, nothing is updated.
    glue = boto3.client("glue", region_name=harness.REGION)
    harness.create_endpoint(client)
    harness.publish_traffic(30, rpm=400)
    deployed = harness.deploy(with_agreement)
    for database in glue.get_databases()["DatabaseList"]:
        for table in glue.get_tables(DatabaseName=database["Name"])["TableList"]:
            glue.delete_table(DatabaseName=database["Name"], Name=table["Name"])
    result = harness.run(deployed["state_machine"])
    assert result["status"] == "FAILED"
    states = harness.states_entered(result["executionArn"])
    assert states[-2:] == ["ReportFailure", "Failed"] and "Judge" not in states
    assert "ended FAILED" in harness.failures(result["executionArn"]) and double.failures
    model, shadows = production_model(client)
    assert model == "churn-v1" and [s["VariantName"] for s in shadows] == ["shadow"]


# Interim looks (issue 14): the self-ending execution judges all data so far at every look and stops at the first
# PROMOTE or REJECT. Its input is what the deploy-time timer gives it: the test's start and end.

@pytest.fixture(scope="module")
def looking():
    return self_service_template(look_interval=cdk.Duration.minutes(10), duration=cdk.Duration.hours(3))


def self_ending_input(started_minutes_ago: int, ends_in_minutes: int) -> dict:
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return {"trigger": "test-end", "test_start": (now - timedelta(minutes=started_minutes_ago)).strftime(stamp),
            "test_end": (now + timedelta(minutes=ends_in_minutes)).strftime(stamp)}


def looks_judged(execution_arn: str) -> list[dict]:
    return [json.loads(e["stateExitedEventDetails"]["output"])["look"] for e in harness.history(execution_arn)
            if e.get("stateExitedEventDetails", {}).get("name") == "PlanLook"]


def test_a_healthy_shadow_is_promoted_at_an_interim_look(world, looking):
    _, client = world
    _, result = start(looking, client, payload=self_ending_input(30, 150))
    assert result["status"] == "SUCCEEDED", harness.failures(result["executionArn"])
    looks = looks_judged(result["executionArn"])
    assert looks and not looks[-1]["final"] and looks[-1]["number"] < looks[-1]["looks"]  # before the test's end
    assert harness.states_entered(result["executionArn"]).count("Judge") == len(looks)
    verdict = harness.state_output(result["executionArn"], "Judge")["verdict"]
    assert verdict["decision"] == "PROMOTE" and json.loads(result["output"])["action"] == "promoted"
    bucket, key = verdict["report_markdown"][5:].split("/", 1)
    report = boto3.client("s3", region_name=harness.REGION).get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    hours = looks[-1]["hours_left"]
    assert f"- Look {looks[-1]['number']} of {looks[-1]['looks']}: {looks[-1]['minutes']} minutes into the test" in report
    assert f"- Decided {hours:g} h before the planned end: stopping now saves {hours:g} shadow instance-hours" in report


def test_a_regressed_shadow_is_rejected_at_the_first_look(world, looking):
    _, client = world
    _, result = start(looking, client, regression=0.5, payload=self_ending_input(30, 150))
    assert result["status"] == "SUCCEEDED", harness.failures(result["executionArn"])
    assert len(looks_judged(result["executionArn"])) == 1
    assert harness.state_output(result["executionArn"], "Judge")["verdict"]["decision"] == "REJECT"
    assert production_model(client) == ("churn-v1", [])


def test_an_undecided_test_is_judged_at_every_look_until_its_end(world, looking):
    _, client = world
    _, result = start(looking, client, rpm=4, payload=self_ending_input(30, 25))
    assert result["status"] == "SUCCEEDED", harness.failures(result["executionArn"])
    looks = looks_judged(result["executionArn"])
    # From the first look still ahead to the end (10 and 20 minutes from now, then the end at 25): each judged once.
    assert [look["number"] for look in looks] == list(range(looks[0]["number"], looks[0]["number"] + 3))
    assert [look["final"] for look in looks] == [False, False, True]
    assert harness.states_entered(result["executionArn"]).count("Judge") == 3
    assert json.loads(result["output"])["action"] == "none"  # on_inconclusive=KEEP after the last look
