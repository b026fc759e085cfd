"""Lambda handlers of the promotion workflow. Each is a thin shell around the pure modules.

Every handler takes and returns JSON-ready dicts (the state machine's payloads); large data
(the metric series, the reports) goes to S3 and only its location travels in the payload.
Clients are made once per AWS environment (``clients``) and reused, so tests can still point them at moto.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from . import agreement_metrics, promotion, report, series
from .clients import client
from .verdict import Criteria, compare

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


_client = client  # a client per service and AWS environment, reused across invocations


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"expected an s3://bucket/key URI, got {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def _put(bucket: str, key: str, body: str, content_type: str) -> str:
    _client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType=content_type)
    return f"s3://{bucket}/{key}"


def _now() -> datetime:
    """The current time (a function, so tests can move the clock)."""
    return datetime.now(UTC)


def _metric_data(cloudwatch, queries: list[dict[str, Any]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Every page of GetMetricData for the queries over [start, end)."""
    results: list[dict[str, Any]] = []
    token = None
    while True:
        request = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending"}
        if token:
            request["NextToken"] = token
        page = cloudwatch.get_metric_data(**request)
        results += page.get("MetricDataResults", [])
        token = page.get("NextToken")
        if not token:
            return results


def gather_metrics(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """GetMetricData for both variants over the window; the aligned series go to S3.

    Event: ``queries`` (MetricDataQueries, labels ``<role>|<key>``), ``end`` (ISO time),
    ``minutes``, ``period`` (seconds, default 60), ``report_bucket``, ``report_prefix`` and
    optionally ``run_id`` (a folder per run below the prefix, e.g. the execution's start time).
    CloudWatch keeps 1-minute points for 15 days only: the part of a window older than that
    (less an hour's margin) is asked with every query's Period set to 300 seconds, from the
    window's start floored to 5 minutes; the stored series then hold 5-minute slots followed by
    1-minute ones, and ``slot_minutes`` (stored next to them) says which. Returns the window,
    the S3 URI of the series, the minutes asked for and the ``periods`` asked
    (``[{"start", "end", "period"}]``, oldest first).
    """
    period = int(event.get("period", 60))
    start, end = series.window(event["end"], int(event["minutes"]), period)
    cloudwatch = _client("cloudwatch")
    parts = series.periods(start, end, _now(), period)
    gathered = [(_metric_data(cloudwatch, series.with_period(event["queries"], part_period), begin, finish),
                 begin, finish, part_period) for begin, finish, part_period in parts]
    production, shadow, slot_minutes = series.align_periods(gathered)
    folder = event["report_prefix"].rstrip("/")
    if event.get("run_id"):
        folder += "/" + "".join(c if c.isalnum() or c in "-_.:" else "-" for c in str(event["run_id"]))
    key = f"{folder}/series.json"
    body: dict[str, Any] = {"production": production, "shadow": shadow}
    if any(m != 1 for m in slot_minutes):
        body["slot_minutes"] = slot_minutes
    uri = _put(event["report_bucket"], key, json.dumps(body), "application/json")
    return {"start": parts[0][0].isoformat(), "end": parts[-1][1].isoformat(), "series": uri,
            "minutes": int(event["minutes"]),
            "periods": [{"start": b.isoformat(), "end": f.isoformat(), "period": p} for b, f, p in parts]}


def hour_partitions(start: str, end: str) -> tuple[str, str]:
    """The first and last capture hour (``yyyy/MM/dd/HH``, the key layout's) of the window [start, end)."""
    begin, finish = series.utc(start), series.utc(end)
    if finish <= begin:
        raise ValueError(f"the window must end after it starts, got {start} to {end}")
    return begin.strftime("%Y/%m/%d/%H"), (finish - timedelta(microseconds=1)).strftime("%Y/%m/%d/%H")


def agreement_from_results(pages: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``all`` row of the label-agreement query (GetQueryResults pages): share and count of predictions, and the
    mean absolute difference of the numeric ones (None without any, or from an older query without the column)."""
    rows = [row for page in pages for row in page["ResultSet"]["Rows"]]
    if not rows:
        raise ValueError("the agreement query returned no rows, not even its header")
    header = [cell.get("VarCharValue") for cell in rows[0]["Data"]]
    missing = sorted({"scope", "predictions", "agreement"} - set(header))
    if missing:
        raise ValueError(f"the agreement query must return scope, predictions and agreement; missing {missing} in {header}")
    for row in rows[1:]:
        values = dict(zip(header, (cell.get("VarCharValue") for cell in row["Data"]), strict=False))
        if values["scope"] == "all":
            predictions = int(float(values["predictions"] or 0))
            mean_abs_diff = values.get("mean_abs_diff")
            return {"agreement": float(values["agreement"]) if predictions else None, "predictions": predictions,
                    "mean_abs_diff": float(mean_abs_diff) if mean_abs_diff else None}
    return {"agreement": None, "predictions": 0, "mean_abs_diff": None}


def measure_agreement(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Run the label-agreement query (CaptureAnalytics) on Athena over the judged window.

    Event: ``query`` (Athena SQL whose two ``?`` are the first and last capture hour),
    ``workgroup``, ``start`` and ``end`` (the window, ISO 8601, as gather_metrics returns it),
    ``poll_seconds`` (default 2) and ``timeout_seconds`` (default 240; the function's own
    timeout must be longer), optionally ``publish`` (``{"endpoint_name", "variant_name"}``: the
    figures then go to CloudWatch, see ``agreement_metrics``, stamped with the window's end).
    Returns ``agreement`` (share 0-1, None without paired predictions), ``predictions``,
    ``mean_abs_diff``, the hours scanned, the query execution's id and the metrics ``published``.
    A failed, cancelled or overdue query is an error (the workflow then stops without changing the
    endpoint).
    """
    first, last = hour_partitions(event["start"], event["end"])
    athena = _client("athena")
    execution_id = athena.start_query_execution(
        QueryString=event["query"], WorkGroup=event["workgroup"],
        ExecutionParameters=[f"'{first}'", f"'{last}'"])["QueryExecutionId"]
    deadline = time.monotonic() + float(event.get("timeout_seconds", 240))
    while True:
        status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
        if status["State"] == "SUCCEEDED":
            break
        if status["State"] in ("FAILED", "CANCELLED"):
            raise RuntimeError(f"the agreement query {execution_id} ended {status['State']}: "
                               f"{status.get('StateChangeReason', 'no reason given')}")
        if time.monotonic() > deadline:
            athena.stop_query_execution(QueryExecutionId=execution_id)
            raise TimeoutError(f"the agreement query {execution_id} ran longer than {event.get('timeout_seconds', 240)} s")
        time.sleep(float(event.get("poll_seconds", 2)))
    pages = list(athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id))
    measured = agreement_from_results(pages)
    published: list[str] = []
    if event.get("publish"):
        published = agreement_metrics.publish(
            _client("cloudwatch"), measured, endpoint_name=event["publish"]["endpoint_name"],
            variant_name=event["publish"]["variant_name"], timestamp=series.utc(event["end"]))
    return {**measured, "hours": [first, last], "query_execution_id": execution_id, "published": published}


def judge(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The verdict over the gathered series; JSON and Markdown reports go next to them in S3.

    Event: ``series`` (S3 URI from gather_metrics), ``criteria`` (Criteria fields), ``context``
    (endpoint and variant names, window: shown in the report), optionally ``agreement``
    (measure_agreement's result, judged when the criteria set ``min_agreement``) and ``run`` (the
    workflow's run state: its ``look``, at an interim look, goes into the report). The series'
    ``slot_minutes`` (5-minute slots of an old part, see gather_metrics) are passed on to the
    verdict. Returns decision, score, the first reason, the minutes judged and the report URIs.
    """
    bucket, key = _split_s3(event["series"])
    data = json.loads(_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    verdict = compare(data["production"], data["shadow"], Criteria.from_mapping(event.get("criteria")),
                      agreement=event.get("agreement"), slot_minutes=data.get("slot_minutes"))
    details = dict(event.get("context") or {})
    look = (event.get("run") or {}).get("look")
    if look:  # an interim look of a test that ends itself (see looks.plan_look)
        details["look"] = look
    prefix = key.rsplit("/", 1)[0]
    json_uri = _put(bucket, f"{prefix}/verdict.json", report.report_json(verdict, details), "application/json")
    markdown_uri = _put(bucket, f"{prefix}/verdict.md", report.report_markdown(verdict, details), "text/markdown")
    return {"decision": verdict.decision, "score": verdict.score, "summary": verdict.reasons[0],
            "minutes": verdict.traffic["minutes"], "report_json": json_uri, "report_markdown": markdown_uri}


def prepare_update(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Build (idempotently) the endpoint config that promotes or removes the shadow, from the LIVE
    config, and deregister auto scaling that the update would otherwise trip over.

    Event: ``endpoint_name``, ``action`` (``promote`` | ``remove_shadow``), ``instance_settings``
    (production | shadow | override), ``override`` (dict). Returns the new and previous config
    names, ``already_applied`` when a previous run already moved the endpoint to the new config,
    and two lists of scalable targets (with their policies) for restore_autoscaling:
    ``restore`` — the variants the new config keeps, to register again once the update
    succeeded — and ``rollback`` — every target taken down, to put back if it failed.
    """
    action = event["action"]
    if action not in ("promote", "remove_shadow"):
        raise ValueError(f"action must be 'promote' or 'remove_shadow', got {action!r}")
    sagemaker = _client("sagemaker")
    name = event["endpoint_name"]
    live_name = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    if _is_ours(live_name, name, action):
        return {"config_name": live_name, "previous_config_name": live_name, "already_applied": True,
                "deregistered": [], "restore": [], "rollback": []}
    live = sagemaker.describe_endpoint_config(EndpointConfigName=live_name)
    new_name = promotion.config_name(name, action, live_name)
    if action == "promote":
        request = promotion.promoted_config(live, new_name, event.get("instance_settings", "production"),
                                            event.get("override"))
    else:
        request = promotion.shadow_removed_config(live, new_name)
    try:
        sagemaker.describe_endpoint_config(EndpointConfigName=new_name)  # a re-run: already created
    except sagemaker.exceptions.ClientError:
        sagemaker.create_endpoint_config(**request)
    scaling = _client("application-autoscaling")
    registered = _registered_targets(scaling, name)
    deregister, restore = promotion.autoscaling_changes(live, request, registered)
    saved, rollback = [], []
    for variant in deregister:
        target = registered[variant]
        policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=target["ResourceId"],
                                                     ScalableDimension=SCALABLE_DIMENSION)["ScalingPolicies"]
        # Deregistering deletes a target's policies on AWS; deleting them first says so explicitly.
        for policy in policies:
            scaling.delete_scaling_policy(PolicyName=policy["PolicyName"], ServiceNamespace="sagemaker",
                                          ResourceId=target["ResourceId"], ScalableDimension=SCALABLE_DIMENSION)
        scaling.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=target["ResourceId"],
                                           ScalableDimension=SCALABLE_DIMENSION)
        taken_down = {"ResourceId": target["ResourceId"], "MinCapacity": target["MinCapacity"],
                      "MaxCapacity": target["MaxCapacity"], "Policies": [_policy_request(p) for p in policies]}
        rollback.append(taken_down)
        if variant in restore:
            saved.append(taken_down)
    return {"config_name": new_name, "previous_config_name": live_name, "already_applied": False,
            "deregistered": deregister, "restore": saved, "rollback": rollback}


def _is_ours(config_name: str, endpoint_name: str, action: str) -> bool:
    """Whether the live config is one this workflow made for this action (then the update ran already)."""
    prefix = promotion.config_name(endpoint_name, action, "probe").rsplit("-", 1)[0] + "-"
    return config_name.startswith(prefix) and len(config_name) == len(prefix) + 10


def _registered_targets(scaling, endpoint_name: str) -> dict[str, dict[str, Any]]:
    targets: dict[str, dict[str, Any]] = {}
    paginator = scaling.get_paginator("describe_scalable_targets")
    for page in paginator.paginate(ServiceNamespace="sagemaker", ScalableDimension=SCALABLE_DIMENSION):
        for target in page["ScalableTargets"]:
            prefix = f"endpoint/{endpoint_name}/variant/"
            if target["ResourceId"].startswith(prefix):
                targets[target["ResourceId"][len(prefix):]] = target
    return targets


def _policy_request(policy: dict[str, Any]) -> dict[str, Any]:
    keep = ("PolicyName", "PolicyType", "TargetTrackingScalingPolicyConfiguration", "StepScalingPolicyConfiguration")
    return {k: policy[k] for k in keep if k in policy}


def restore_autoscaling(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Register again scalable targets (and their policies) that prepare_update took down.

    Event: ``targets`` — prepare_update's ``restore`` after a successful update, its
    ``rollback`` after a failed one.
    """
    scaling = _client("application-autoscaling")
    restored = []
    for target in event.get("targets") or []:
        scaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=target["ResourceId"],
                                         ScalableDimension=SCALABLE_DIMENSION, MinCapacity=target["MinCapacity"],
                                         MaxCapacity=target["MaxCapacity"])
        for policy in target["Policies"]:
            scaling.put_scaling_policy(ServiceNamespace="sagemaker", ResourceId=target["ResourceId"],
                                       ScalableDimension=SCALABLE_DIMENSION, **policy)
        restored.append(target["ResourceId"])
    return {"restored": restored}
