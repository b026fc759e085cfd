"""ShadowDashboard and ShadowMetricFactory: every widget family, both endpoint kinds, the body snapshot."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from conftest import XGBOOST_URI, new_stack, only, template_of

from shadow_constructs import (
    VERDICT_SERIES,
    ConfigError,
    DataCapture,
    ServingModel,
    ShadowDashboard,
    ShadowEndpoint,
    ShadowMetricFactory,
    Variant,
)


def body_of(template) -> str:
    """The dashboard body with CloudFormation references written as <LogicalId.Attr> / <Ref>."""
    body = only(template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]

    def text(part):
        if isinstance(part, str):
            return part
        if "Ref" in part:
            return f"<{part['Ref']}>"
        return f"<{part['Fn::GetAtt'][0]}.{part['Fn::GetAtt'][1]}>"

    return "".join(text(p) for p in parts)


@pytest.fixture(scope="module")
def created():
    stack = new_stack()
    v1 = ServingModel(stack, "V1", image=XGBOOST_URI)
    v2 = ServingModel(stack, "V2", image=XGBOOST_URI)
    endpoint = ShadowEndpoint(stack, "Endpoint", endpoint_name="churn", production=Variant(model=v1, instance_count=2),
                              shadow=Variant(model=v2), sampling_percent=50, data_capture=DataCapture())
    ShadowDashboard(stack, "Dashboard", endpoint=endpoint, start=datetime(2026, 11, 25, 9, tzinfo=UTC),
                    planned_end=datetime(2026, 12, 2, 9, tzinfo=UTC))
    return json.loads(body_of(template_of(stack)))


def metric_lines(widget):
    return widget["properties"].get("metrics", [])


def titles(body):
    return [w["properties"].get("title", "") for w in body["widgets"]]


def test_header_states_the_test(created):
    header = created["widgets"][0]
    assert header["type"] == "text"
    markdown = header["properties"]["markdown"]
    assert "# Shadow test: endpoint churn" in markdown
    assert "| instances | 2 x ml.m5.xlarge | 1 x ml.m5.xlarge |" in markdown
    assert "**50%** of production requests" in markdown
    assert "Capture: s3://<EndpointCaptureStoreBucket" in markdown
    assert "Start: 2026-11-25T09:00:00+00:00 · planned end: 2026-12-02T09:00:00+00:00" in markdown


def test_window_starts_at_the_test_start(created):
    assert created["start"] == "2026-11-25T09:00:00Z"


@pytest.mark.parametrize("name", ["ModelLatency", "OverheadLatency"])
def test_latency_graphs_overlay_both_variants_in_milliseconds(created, name):
    graph = next(w for w in created["widgets"] if w["properties"].get("title", "").startswith(f"{name} (ms)"))
    expressions = [line[0] for line in metric_lines(graph) if isinstance(line[0], dict) and "expression" in line[0]]
    labels = sorted(e["label"] for e in expressions)
    assert labels == sorted(f"{role} {s} (ms)" for role in ("production", "shadow") for s in ("p50", "p90", "p99", "Average"))
    assert all(e["expression"].endswith("/ 1000") for e in expressions)
    raw = [line for line in metric_lines(graph) if isinstance(line[0], str)]
    assert {line[5] for line in raw} == {"production", "shadow"}
    assert {line[-1].get("stat", "Average") for line in raw} == {"p50", "p90", "p99", "Average"}
    assert graph["properties"]["yAxis"]["left"]["label"] == "ms"


@pytest.mark.parametrize("name", ["Invocations", "InvocationsPerInstance", "Invocation4XXErrors",
                                  "Invocation5XXErrors", "InvocationModelErrors"])
def test_every_count_metric_has_a_graph_with_both_variants(created, name):
    graph = next(w for w in created["widgets"] if w["properties"].get("title") == f"{name} (sum per period)")
    assert [(line[1], line[5], line[-1]["stat"]) for line in metric_lines(graph)] == \
        [(name, "production", "Sum"), (name, "shadow", "Sum")]


def test_error_rates_and_deltas_use_metric_math(created):
    rates = next(w for w in created["widgets"] if w["properties"].get("title") == "Error rates (%) per variant")
    expressions = [line[0]["expression"] for line in metric_lines(rates) if "expression" in line[0]]
    assert "IF(invocations_prod_sum > 0, 100 * (FILL(invocation5xxerrors_prod_sum, 0) + "\
           "FILL(invocationmodelerrors_prod_sum, 0)) / invocations_prod_sum, 0)" in expressions
    deltas = [w for w in created["widgets"] if w["properties"].get("title", "").startswith("Shadow - production")]
    assert len(deltas) == 2
    assert any(line[0].get("expression") == "(modellatency_shadow_p99 - modellatency_prod_p99) / 1000"
               for line in metric_lines(deltas[0]))
    assert deltas[0]["properties"]["annotations"]["horizontal"][0]["value"] == 0


def test_instance_metrics_per_variant_without_gpu_on_cpu_instances(created):
    graphs = [t for t in titles(created) if t.endswith("(%, per instance)")]
    assert graphs == [f"{n} (%, per instance)" for n in ("CPUUtilization", "MemoryUtilization", "DiskUtilization")]
    cpu = next(w for w in created["widgets"] if w["properties"].get("title") == "CPUUtilization (%, per instance)")
    assert {line[0] for line in metric_lines(cpu)} == {"/aws/sagemaker/Endpoints"}


def test_window_statistics_and_table(created):
    single = [w for w in created["widgets"] if w["type"] == "metric" and w["properties"].get("view") == "singleValue"]
    assert len(single) == 2 and all(w["properties"]["setPeriodToTimeRange"] for w in single)
    labels = {line[-1].get("label") for line in metric_lines(single[0])}
    assert {"production count", "shadow count", "production mean (ms)", "shadow p99 (ms)", "shadow max (ms)"} <= labels
    table = next(w for w in created["widgets"] if w["properties"].get("view") == "table")
    assert table["properties"]["table"]["summaryColumns"] == ["SUM", "AVG", "MAX"]
    assert len(metric_lines(table)) == 8


def test_gpu_graphs_for_gpu_instances_and_imported_endpoints():
    stack = new_stack()
    v1 = ServingModel(stack, "V1", image=XGBOOST_URI)
    v2 = ServingModel(stack, "V2", image=XGBOOST_URI)
    endpoint = ShadowEndpoint(stack, "Endpoint", production=Variant(model=v1, instance_type="ml.g5.xlarge"),
                              shadow=Variant(model=v2, instance_type="ml.g5.xlarge"))
    ShadowDashboard(stack, "Dashboard", endpoint=endpoint)
    assert "GPUUtilization (%, per instance)" in titles(json.loads(body_of(template_of(stack))))

    stack = new_stack()
    imported = ShadowEndpoint.from_endpoint_name(stack, "Prod", "churn-prod", shadow_variant_name="candidate")
    ShadowDashboard(stack, "Dashboard", endpoint=imported, description="v3 candidate", gpu=True)
    body = json.loads(body_of(template_of(stack)))
    assert "GPUMemoryUtilization (%, per instance)" in titles(body)
    assert "| variant | AllTraffic | candidate |" in body["widgets"][0]["properties"]["markdown"]
    assert "v3 candidate" in body["widgets"][0]["properties"]["markdown"]


def test_dashboard_body_snapshot(created, snapshot):
    assert json.dumps(created, indent=1, sort_keys=True) == snapshot


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"start": "2026-11-25"}, r"start must be a datetime, got '2026-11-25'"),
    ({"start": datetime(2026, 1, 2), "planned_end": datetime(2026, 1, 1)}, r"planned_end must be after start"),
    ({"gpu": "yes"}, r"gpu must be a bool, got 'yes'"),
    ({"dashboard_name": "bad name!"}, r"dashboard_name must be 1-255 letters, digits, '-' or '_', got 'bad name!'"),
])
def test_dashboard_rejects_bad_input(kwargs, message):
    stack = new_stack()
    endpoint = ShadowEndpoint.from_endpoint_name(stack, "E", "churn", shadow_variant_name="shadow")
    with pytest.raises(ConfigError, match=message):
        ShadowDashboard(stack, "D", endpoint=endpoint, **kwargs)


def test_dashboard_needs_an_endpoint_with_a_shadow():
    stack = new_stack()
    with pytest.raises(ConfigError, match=r"ShadowDashboard 'Test/D': endpoint 'Test/E' has no shadow variant: import it with "
                                          r"ShadowEndpoint.from_endpoint_attributes\(..., shadow_variant_name=...\)"):
        ShadowDashboard(stack, "D", endpoint=ShadowEndpoint.from_endpoint_name(stack, "E", "churn"))
    with pytest.raises(ConfigError, match=r"endpoint must be an IShadowEndpoint \(a ShadowEndpoint, created or imported\), got 'churn'"):
        ShadowDashboard(stack, "D2", endpoint="churn")


def test_metric_data_queries_cover_both_variants_with_unique_ids():
    stack = new_stack()
    endpoint = ShadowEndpoint.from_endpoint_name(stack, "E", "churn", shadow_variant_name="shadow")
    queries = ShadowMetricFactory(endpoint).metric_data_queries()
    assert len(queries) == 2 * len(VERDICT_SERIES)
    ids = [q["Id"] for q in queries]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[a-z][a-zA-Z0-9_]*", i) for i in ids)
    p99 = next(q for q in queries if q["Label"] == "shadow|ModelLatency:p99")
    assert p99["MetricStat"] == {"Metric": {"Namespace": "AWS/SageMaker", "MetricName": "ModelLatency", "Dimensions": [
        {"Name": "EndpointName", "Value": "churn"}, {"Name": "VariantName", "Value": "shadow"}]},
        "Period": 60, "Stat": "p99"}
    with pytest.raises(ConfigError, match=r"keys must be among .*, got \['Latency'\]"):
        ShadowMetricFactory(endpoint).metric_data_queries(keys=["Latency"])


def test_metric_data_queries_are_valid_get_metric_data_requests():
    """Checked against botocore's own model of CloudWatch GetMetricData."""
    import botocore.session
    from botocore.validate import ParamValidator

    stack = new_stack()
    endpoint = ShadowEndpoint.from_endpoint_name(stack, "E", "churn", shadow_variant_name="shadow")
    queries = ShadowMetricFactory(endpoint).metric_data_queries()
    model = botocore.session.get_session().get_service_model("cloudwatch")
    shape = model.operation_model("GetMetricData").input_shape
    request = {"MetricDataQueries": queries, "StartTime": datetime(2026, 11, 25), "EndTime": datetime(2026, 11, 26)}
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
