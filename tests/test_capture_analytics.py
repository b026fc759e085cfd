"""CaptureAnalytics: the Glue table, the Athena workgroup, least-privilege grants, validation, and the named
queries' SQL proven on DuckDB against the same capture files as shadow-report's engine."""

from __future__ import annotations

import json
import tempfile

import aws_cdk as cdk
import duckdb
import pytest
from athena_standin import create_table, run_athena_sql
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from capture_fixtures import write_label_capture, write_reference_capture
from conftest import XGBOOST_URI, cfn_lint_findings, nag_violations, only, policy_statements, template_of

from shadow_constructs import CaptureAnalytics, CaptureStore, ConfigError, DataCapture, ServingModel, ShadowEndpoint, Variant
from shadow_report import ReportSettings, analyse, discover


def endpoint_stack(*, capture: bool = True, endpoint_name: str = "churn"):
    app = cdk.App(outdir=tempfile.mkdtemp(prefix="cdkout-analytics-"))
    stack = cdk.Stack(app, "Analytics", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    endpoint = ShadowEndpoint(stack, "Endpoint", endpoint_name=endpoint_name, production=Variant(model=v1),
                              shadow=Variant(model=v2), sampling_percent=50,
                              data_capture=DataCapture() if capture else None)
    return app, stack, endpoint


@pytest.fixture(scope="module")
def synthesized():
    from cdk_nag import AwsSolutionsChecks

    app, stack, endpoint = endpoint_stack()
    analytics = CaptureAnalytics(stack, "Analytics", endpoint=endpoint, database_name="churn_capture")
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    analytics.grant_query(reader)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    violations = nag_violations(app)
    template = template_of(stack)
    return analytics, template, violations


def test_glue_table_projects_endpoint_variant_and_hour(synthesized):
    _, template, _ = synthesized
    table = only(template, "AWS::Glue::Table")["Properties"]
    assert table["DatabaseName"] == "churn_capture"
    table_input = table["TableInput"]
    assert table_input["Name"] == "captured_records"
    parameters = table_input["Parameters"]
    assert {k: v for k, v in parameters.items() if k != "storage.location.template"} == {
        "classification": "json", "projection.enabled": "true",
        "projection.endpoint.type": "enum", "projection.endpoint.values": "churn",
        "projection.variant.type": "enum", "projection.variant.values": "production,shadow",
        "projection.datehour.type": "date", "projection.datehour.format": "yyyy/MM/dd/HH",
        "projection.datehour.range": "2022/12/01/00,NOW", "projection.datehour.interval": "1",
        "projection.datehour.interval.unit": "HOURS"}
    template_parts = parameters["storage.location.template"]["Fn::Join"][1]
    assert template_parts[0] == "s3://" and template_parts[-1] == "/datacapture/${endpoint}/${variant}/${datehour}/"
    assert template_parts[1]["Ref"].startswith("EndpointCaptureStoreBucket")
    assert [k["Name"] for k in table_input["PartitionKeys"]] == ["endpoint", "variant", "datehour"]
    descriptor = table_input["StorageDescriptor"]
    assert [c["Name"] for c in descriptor["Columns"]] == ["capturedata", "eventmetadata", "eventversion"]
    assert descriptor["SerdeInfo"] == {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
                                       "Parameters": {"ignore.malformed.json": "true", "case.insensitive": "true"}}


def test_workgroup_enforces_encrypted_results_and_a_scan_limit(synthesized):
    _, template, _ = synthesized
    workgroup = only(template, "AWS::Athena::WorkGroup")["Properties"]
    configuration = workgroup["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == 10 * 1024 ** 3
    assert configuration["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    encryption = configuration["ResultConfiguration"]["EncryptionConfiguration"]
    assert encryption["EncryptionOption"] == "SSE_KMS"
    assert encryption["KmsKey"]["Fn::GetAtt"][0].startswith("AnalyticsResultsKey")
    results = [r for r in template.find_resources("AWS::S3::Bucket").values()
               if r["Properties"].get("LifecycleConfiguration", {}).get("Rules", [{}])[0].get("Id") == "ExpireResults"]
    assert len(results) == 1
    assert results[0]["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 30
    assert results[0]["DeletionPolicy"] == "Retain"
    policies = [p["Properties"]["PolicyDocument"]["Statement"] for p in template.find_resources("AWS::S3::BucketPolicy").values()]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for statements in policies for s in statements)


def test_five_named_queries_in_the_workgroup(synthesized):
    analytics, template, _ = synthesized
    queries = template.find_resources("AWS::Athena::NamedQuery")
    assert sorted(q["Properties"]["Name"] for q in queries.values()) == [
        "shadow-confusion-matrix", "shadow-label-agreement", "shadow-numeric-measures", "shadow-pairing", "shadow-record-counts"]
    for query in queries.values():
        assert query["Properties"]["Database"] == "churn_capture"
        assert query["Properties"]["WorkGroup"]["Ref"].startswith("AnalyticsWorkGroup")
        assert query["Properties"]["QueryString"].count("?") == 2


def test_grant_query_is_least_privilege(synthesized):
    _, template, _ = synthesized

    def arn(service, rest):
        return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":{service}:eu-west-1:123456789012:{rest}"]]}

    capture, results = (next(k for k in template.find_resources("AWS::S3::Bucket") if k.startswith(p))
                        for p in ("EndpointCaptureStoreBucket", "AnalyticsResults"))
    capture_key, results_key = (next(k for k in template.find_resources("AWS::KMS::Key") if k.startswith(p))
                                for p in ("EndpointCaptureStoreKey", "AnalyticsResultsKey"))
    workgroup = template.find_resources("AWS::Athena::WorkGroup")
    name = next(iter(workgroup.values()))["Properties"]["Name"]
    assert policy_statements(template, "ReaderDefaultPolicy") == [
        {"Action": ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StopQueryExecution",
                    "athena:GetWorkGroup", "athena:GetNamedQuery", "athena:BatchGetNamedQuery", "athena:ListNamedQueries"],
         "Effect": "Allow", "Resource": arn("athena", f"workgroup/{name}")},
        {"Action": "glue:GetDatabase", "Effect": "Allow",
         "Resource": [arn("glue", "catalog"), arn("glue", "database/churn_capture")]},
        {"Action": "glue:GetTable", "Effect": "Allow",
         "Resource": [arn("glue", "catalog"), arn("glue", "database/churn_capture"),
                      arn("glue", "table/churn_capture/captured_records")]},
        {"Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Effect": "Allow",
         "Resource": [{"Fn::GetAtt": [capture, "Arn"]}, {"Fn::GetAtt": [results, "Arn"]}]},
        {"Action": "s3:GetObject", "Effect": "Allow",
         "Resource": [{"Fn::Join": ["", [{"Fn::GetAtt": [capture, "Arn"]}, "/datacapture/*"]]},
                      {"Fn::Join": ["", [{"Fn::GetAtt": [results, "Arn"]}, "/results/*"]]}]},
        {"Action": ["s3:PutObject", "s3:AbortMultipartUpload"], "Effect": "Allow",
         "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [results, "Arn"]}, "/results/*"]]}},
        {"Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Effect": "Allow", "Resource": {"Fn::GetAtt": [results_key, "Arn"]}},
        {"Action": "kms:Decrypt", "Effect": "Allow", "Resource": {"Fn::GetAtt": [capture_key, "Arn"]}},
    ]


def test_cdk_nag_and_cfn_lint_are_clean(synthesized):
    _, template, violations = synthesized
    assert violations == []
    assert cfn_lint_findings(json.dumps(template.to_json())) == []


def test_an_existing_store_or_bucket_for_an_imported_endpoint():
    app, stack, _ = endpoint_stack(capture=False)
    imported = ShadowEndpoint.from_endpoint_name(stack, "Imported", "churn-prod", production_variant_name="AllTraffic",
                                                 shadow_variant_name="candidate")
    store = CaptureStore(stack, "Store")
    with_store = CaptureAnalytics(stack, "WithStore", endpoint=imported, store=store, prefix="captured/v2")
    assert (with_store.capture_bucket, with_store.capture_prefix) == (store.bucket, "captured/v2")
    bucket = s3.Bucket.from_bucket_name(stack, "Existing", "existing-capture")
    key = kms.Key.from_key_arn(stack, "ExistingKey", "arn:aws:kms:eu-west-1:123456789012:key/abc")
    with_bucket = CaptureAnalytics(stack, "WithBucket", endpoint=imported, bucket=bucket, encryption_key=key,
                                   workgroup_name="churn-prod-analytics", bytes_scanned_cutoff_per_query=10_000_000)
    with_bucket.grant_query(iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal()))
    template = template_of(stack)
    tables = [t["Properties"]["TableInput"]["Parameters"] for t in template.find_resources("AWS::Glue::Table").values()]
    assert sorted(t["projection.variant.values"] for t in tables) == ["AllTraffic,candidate", "AllTraffic,candidate"]
    assert "s3://existing-capture/datacapture/${endpoint}/${variant}/${datehour}/" in [t["storage.location.template"] for t in tables]
    statements = policy_statements(template, "ReaderDefaultPolicy")
    decrypt = [s for s in statements if "kms:Decrypt" in s["Action"] and s["Resource"] == "arn:aws:kms:eu-west-1:123456789012:key/abc"]
    assert decrypt


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bytes_scanned_cutoff_per_query": 1000},
     r"bytes_scanned_cutoff_per_query must be at least 10,000,000 \(Athena's minimum\), got 1,000"),
    ({"bytes_scanned_cutoff_per_query": 1.5e10}, r"bytes_scanned_cutoff_per_query must be an integer, got 15000000000.0 \(float\)"),
    ({"tolerance": -0.1}, r"tolerance must be a finite number >= 0, got -0.1"),
    ({"threshold": float("nan")}, r"threshold must be a finite number, got nan"),
    ({"database_name": "Churn-DB"}, r"database_name must be 1-255 lower case letters, digits or underscores, got 'Churn-DB'"),
    ({"workgroup_name": "a b"}, r"workgroup_name must be 1-128 letters, digits, '.', '_' or '-', got 'a b'"),
    ({"results_expiration": cdk.Duration.hours(1)}, r"results_expiration must be between 1 day and 3650 days, got 1 hour"),
    ({"projection_start": "2024-01-01"}, r"projection_start must be an hour as yyyy/MM/dd/HH, got '2024-01-01'"),
    ({"prefix": "other"}, r"prefix goes with store or bucket; the endpoint captures under 'datacapture'"),
    ({"shadow_variant_name": "production"}, r"production_variant_name and shadow_variant_name are both 'production'"),
    ({"encryption_key": "key"}, r"encryption_key goes with bucket; a CaptureStore brings its own key"),
])
def test_bad_settings_name_the_parameter_and_value(kwargs, message):
    _, stack, endpoint = endpoint_stack()
    with pytest.raises(ConfigError, match=r"^CaptureAnalytics 'Analytics/A': " + message + "$"):
        CaptureAnalytics(stack, "A", endpoint=endpoint, **kwargs)


def test_every_problem_is_reported_at_once_and_capture_is_required():
    _, stack, endpoint = endpoint_stack(capture=False)
    with pytest.raises(ConfigError) as raised:
        CaptureAnalytics(stack, "A", endpoint=endpoint, table_name="Bad Name", threshold="high")
    assert raised.value.problems == [
        "the endpoint captures no data here: give store or bucket (and prefix) where its capture lands",
        "table_name must be 1-255 lower case letters, digits or underscores, got 'Bad Name'",
        "threshold must be a number, got 'high' (str)"]
    with pytest.raises(ConfigError, match=r"endpoint must be an IShadowEndpoint \(a ShadowEndpoint, created or imported\), got 'churn'"):
        CaptureAnalytics(stack, "B", endpoint="churn")
    with pytest.raises(ConfigError, match=r"give either store or bucket, not both"):
        CaptureAnalytics(stack, "C", endpoint=endpoint, store=CaptureStore(stack, "S"),
                         bucket=s3.Bucket.from_bucket_name(stack, "X", "xyz-bucket"))


# The SQL that ships, run on DuckDB over the fixture capture files, must give shadow-report's numbers.

@pytest.fixture(scope="module")
def proven(synthesized, tmp_path_factory):
    """Every shipped named query (read back from the template), run on the reference capture, and the engine's report."""
    _, template, _ = synthesized
    root = write_reference_capture(tmp_path_factory.mktemp("capture"))
    connection = duckdb.connect()
    create_table(connection, str(root), "churn_capture", "captured_records")
    results = {q["Properties"]["Name"].removeprefix("shadow-"): run_athena_sql(connection, q["Properties"]["QueryString"])
               for q in template.find_resources("AWS::Athena::NamedQuery").values()}
    files, _ = discover(root)
    with tempfile.TemporaryDirectory() as scratch:
        report = analyse(files, ReportSettings(), scratch).report
    return results, report


def by_scope(rows):
    return {row["scope"]: row for row in rows}


def test_sql_record_counts_equal_the_engines(proven):
    results, report = proven
    rows = {(r["variant"], r["scope"]): r for r in results["record-counts"]}
    for variant, counts in report["variants"].items():
        row = rows[(variant, "all")]
        assert {k: row[k] for k in counts if k in row} == {k: counts[k] for k in counts if k in row}
        assert set(counts) - set(row) == {"files", "outside_window"}
    for hour in report["hourly"]:
        for variant in ("production", "shadow"):
            assert rows[(variant, hour["hour"])]["records"] == hour["records"][variant]
            assert rows[(variant, hour["hour"])]["usable"] == hour["usable"][variant]


def test_sql_pairing_equals_the_engines(proven):
    results, report = proven
    row = by_scope(results["pairing"])["all"]
    assert {k: v for k, v in row.items() if k != "scope"} == report["pairing"]
    assert {h: r["paired"] for h, r in by_scope(results["pairing"]).items() if h != "all"} == \
        {h["hour"]: h["paired"] for h in report["hourly"]}


def test_sql_numeric_measures_equal_the_engines(proven):
    results, report = proven
    rows = by_scope(results["numeric-measures"])
    expected = {"all": report["numeric"], **{h["hour"]: h["numeric"] for h in report["hourly"]}}
    assert set(rows) == set(expected)
    for scope, numeric in expected.items():
        for measure, value in numeric.items():
            assert rows[scope][measure] == pytest.approx(value, abs=1e-12), (scope, measure)


def test_sql_labels_equal_the_engines(proven):
    results, report = proven
    agreement = by_scope(results["label-agreement"])
    expected = {"all": report["labels"], **{h["hour"]: h["labels"] for h in report["hourly"]}}
    confusion: dict = {}
    for row in results["confusion-matrix"]:
        confusion.setdefault(row["scope"], {}).setdefault(row["production_label"], {})[row["shadow_label"]] = row["predictions"]
    for scope, labels in expected.items():
        assert agreement[scope]["predictions"] == labels["predictions"]
        assert agreement[scope]["agreement"] == pytest.approx(labels["agreement"], abs=1e-12)
        assert confusion[scope] == labels["confusion"]


def test_sql_on_labels_multi_value_outputs_and_mismatches(tmp_path):
    """String labels, JSON lists and scalars, base64, two predictions per record, kind and length mismatches."""
    from shadow_constructs.capture_queries import capture_queries

    root = write_label_capture(tmp_path / "c")
    connection = duckdb.connect()
    create_table(connection, str(root), "db", "t")
    queries = capture_queries(table='"db"."t"', endpoint="labels", production_variant="blue", shadow_variant="blue-shadow")
    files, _ = discover(root)
    with tempfile.TemporaryDirectory() as scratch:
        report = analyse(files, ReportSettings(endpoint="labels"), scratch).report
    pairing = by_scope(run_athena_sql(connection, queries["pairing"]))["all"]
    assert {k: v for k, v in pairing.items() if k != "scope"} == report["pairing"]
    numeric = by_scope(run_athena_sql(connection, queries["numeric-measures"]))["all"]
    assert numeric["mean_abs_diff"] == pytest.approx(report["numeric"]["mean_abs_diff"], abs=1e-12)
    agreement = by_scope(run_athena_sql(connection, queries["label-agreement"]))["all"]
    assert (agreement["predictions"], agreement["agreement"]) == (6, pytest.approx(5 / 6))


def test_sql_window_is_the_partition_hours(proven, tmp_path):
    """The two parameters select partitions: only hour 15 of the reference capture."""
    _, report = proven
    from shadow_constructs.capture_queries import capture_queries

    root = write_reference_capture(tmp_path / "c")
    connection = duckdb.connect()
    create_table(connection, str(root), "db", "t")
    queries = capture_queries(table='"db"."t"', endpoint="churn", production_variant="production", shadow_variant="shadow")
    rows = by_scope(run_athena_sql(connection, queries["pairing"], "2026/11/25/15", "2026/11/25/15"))
    assert set(rows) == {"all", "2026-11-25T15:00:00Z"}
    assert rows["all"]["paired"] == 3
