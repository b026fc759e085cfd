"""shadow_emulator.AthenaDouble: CaptureAnalytics deploys through moto's CloudFormation, and the named queries run
for real (DuckDB over the emulated S3) with the numbers of shadow-report's engine; measure_agreement on top."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from unittest import mock

import boto3
import pytest
from aws_cdk import aws_s3 as s3
from capture_fixtures import write_reference_capture
from conftest import new_stack, template_of
from moto import mock_aws
from shadow_runtime import handlers

from shadow_constructs import CaptureAnalytics, ShadowEndpoint
from shadow_emulator import AthenaDouble
from shadow_emulator.athena import sql_literal
from shadow_report import ReportSettings, analyse, discover

REGION = "us-east-1"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    stack = new_stack("Analytics")
    endpoint = ShadowEndpoint.from_endpoint_name(stack, "Endpoint", "churn", production_variant_name="production",
                                                 shadow_variant_name="shadow")
    analytics = CaptureAnalytics(stack, "Analytics", endpoint=endpoint,
                                 bucket=s3.Bucket.from_bucket_name(stack, "Capture", "capture"), prefix="datacapture")
    template = template_of(stack).to_json()
    for section in ("Parameters", "Rules"):  # the CDK bootstrap version check (an SSM parameter) is not deployed here
        template.pop(section, None)
    root = write_reference_capture(tmp_path_factory.mktemp("capture"))
    files, _ = discover(root)
    with tempfile.TemporaryDirectory() as scratch:
        engine = analyse(files, ReportSettings(), scratch).report
    environment = {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with mock.patch.dict(os.environ, environment), mock_aws(), AthenaDouble() as double:
        s3_client = boto3.client("s3", region_name=REGION)
        s3_client.create_bucket(Bucket="capture")
        for path in sorted(Path(root).rglob("*.jsonl")):
            s3_client.put_object(Bucket="capture", Key=f"datacapture/{path.relative_to(root)}", Body=path.read_bytes())
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(StackName="analytics", TemplateBody=json.dumps(template),
                                    Capabilities=["CAPABILITY_IAM"])
        yield {"analytics": analytics, "engine": engine, "double": double, "athena": boto3.client("athena", region_name=REGION),
               "glue": boto3.client("glue", region_name=REGION), "cloudformation": cloudformation}


def run(athena, query: str, workgroup: str, parameters: list[str]) -> tuple[str, list[dict]]:
    execution_id = athena.start_query_execution(QueryString=query, WorkGroup=workgroup,
                                                ExecutionParameters=parameters)["QueryExecutionId"]
    rows = athena.get_query_results(QueryExecutionId=execution_id)["ResultSet"]["Rows"]
    header = [cell["VarCharValue"] for cell in rows[0]["Data"]]
    return execution_id, [dict(zip(header, (c.get("VarCharValue") for c in row["Data"]), strict=True)) for row in rows[1:]]


def test_the_glue_table_and_workgroup_deploy_from_the_template(deployed):
    analytics, glue = deployed["analytics"], deployed["glue"]
    table = glue.get_table(DatabaseName=analytics.database_name, Name=analytics.table_name)["Table"]
    assert table["StorageDescriptor"]["Location"] == "s3://capture/datacapture/"
    assert table["Parameters"]["storage.location.template"] == "s3://capture/datacapture/${endpoint}/${variant}/${datehour}/"
    workgroup = deployed["athena"].get_work_group(WorkGroup=analytics.workgroup_name)["WorkGroup"]
    assert workgroup["Configuration"]["EnforceWorkGroupConfiguration"] is True
    named = deployed["athena"].list_named_queries(WorkGroup=analytics.workgroup_name)["NamedQueryIds"]
    assert len(named) == 5


def test_a_named_query_runs_on_the_captured_files_with_the_engines_numbers(deployed):
    athena, analytics, engine = deployed["athena"], deployed["analytics"], deployed["engine"]
    ids = athena.list_named_queries(WorkGroup=analytics.workgroup_name)["NamedQueryIds"]
    queries = {q["Name"]: q for q in (athena.get_named_query(NamedQueryId=i)["NamedQuery"] for i in ids)}
    _, rows = run(athena, queries["shadow-label-agreement"]["QueryString"], analytics.workgroup_name,
                  ["'2026/11/25/00'", "'2026/11/25/23'"])
    overall = next(row for row in rows if row["scope"] == "all")
    assert int(overall["predictions"]) == engine["labels"]["predictions"]
    assert float(overall["agreement"]) == pytest.approx(engine["labels"]["agreement"], abs=1e-12)
    _, rows = run(athena, queries["shadow-pairing"]["QueryString"], analytics.workgroup_name,
                  ["'2026/11/25/00'", "'2026/11/25/23'"])
    assert int(next(r for r in rows if r["scope"] == "all")["paired"]) == engine["pairing"]["paired"]


def test_measure_agreement_reads_the_windows_hours_through_athena(deployed):
    analytics, engine = deployed["analytics"], deployed["engine"]
    result = handlers.measure_agreement({"query": analytics.query_strings["label-agreement"],
                                         "workgroup": analytics.workgroup_name, "start": "2026-11-25T00:00:00Z",
                                         "end": "2026-11-26T00:00:00Z", "poll_seconds": 0})
    assert result["predictions"] == engine["labels"]["predictions"] and result["hours"] == ["2026/11/25/00", "2026/11/25/23"]
    assert result["agreement"] == pytest.approx(engine["labels"]["agreement"], abs=1e-12)
    # A window with no capture: no paired predictions, no agreement.
    empty = handlers.measure_agreement({"query": analytics.query_strings["label-agreement"],
                                        "workgroup": analytics.workgroup_name, "start": "2026-11-20T00:00:00Z",
                                        "end": "2026-11-20T02:00:00Z", "poll_seconds": 0})
    assert (empty["agreement"], empty["predictions"]) == (None, 0)


def test_a_failing_query_ends_failed_and_the_handler_says_so(deployed):
    athena, double, analytics = deployed["athena"], deployed["double"], deployed["analytics"]
    execution_id = athena.start_query_execution(QueryString='SELECT nothing FROM "nowhere"."gone"',
                                                WorkGroup=analytics.workgroup_name)["QueryExecutionId"]
    status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
    assert status["State"] == "FAILED" and "Database nowhere not found" in status["StateChangeReason"]
    assert status["StateChangeReason"] == double.failures[execution_id]
    with pytest.raises(RuntimeError, match=r"ended FAILED: ParseError: Expecting \)\. Line 1, Col: 14\.\n  SELECT broken\($"):
        handlers.measure_agreement({"query": "SELECT broken(", "workgroup": analytics.workgroup_name,
                                    "start": "2026-11-25T00:00:00Z", "end": "2026-11-25T01:00:00Z", "poll_seconds": 0})


def test_execution_parameters_are_sql_literals():
    assert sql_literal("'2026/11/25/14'") == "2026/11/25/14"
    assert sql_literal("'it''s'") == "it's"
    assert sql_literal("42") == 42 and sql_literal(" 0.5 ") == 0.5


def test_deleting_the_stack_removes_the_table_and_workgroup(deployed):
    # Last in this module: the stack goes away.
    analytics, glue, athena = deployed["analytics"], deployed["glue"], deployed["athena"]
    deployed["cloudformation"].delete_stack(StackName="analytics")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table(DatabaseName=analytics.database_name, Name=analytics.table_name)
    assert analytics.workgroup_name not in [w["Name"] for w in athena.list_work_groups()["WorkGroups"]]
