"""A custom-resource handler for the emulator's lifecycle tests (run in-process by the emulator's LambdaDouble).

It appends every event it gets to the file its ``RecordTo`` property names (one JSON line each)
and answers per the custom-resource protocol, as cfn-response does (PUT, ``Content-Type: ''``):

* ``PhysicalId``: the physical id to answer on Create and Update (Delete answers the event's);
* ``Value``: answered as the ``Echo`` attribute (Data; ``unset`` without it), with ``Kind``, the request type;
* ``FailOn``: request types (comma-separated) answered FAILED with Reason ``probe refuses <type>``;
* ``FailDeleteWhile``: a path; Delete is answered FAILED while that file exists;
* ``RaiseOn``: request types on which the handler raises instead of answering.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    properties = event.get("ResourceProperties") or {}
    kind = event["RequestType"]
    with open(properties["RecordTo"], "a") as record:
        record.write(json.dumps(event) + "\n")
    if kind in properties.get("RaiseOn", "").split(","):
        raise RuntimeError(f"probe raises on {kind}")
    failing = kind in properties.get("FailOn", "").split(",") or (
        kind == "Delete" and bool(properties.get("FailDeleteWhile")) and os.path.exists(properties["FailDeleteWhile"]))
    physical = event["PhysicalResourceId"] if kind == "Delete" else properties.get("PhysicalId", event["RequestId"])
    body = {"Status": "FAILED" if failing else "SUCCESS", "Reason": f"probe refuses {kind}" if failing else "ok",
            "PhysicalResourceId": physical, "StackId": event["StackId"], "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": {"Echo": properties.get("Value", "unset"), "Kind": kind}}
    data = json.dumps(body).encode()
    request = urllib.request.Request(event["ResponseURL"], data=data, method="PUT",
                                     headers={"Content-Type": "", "Content-Length": str(len(data))})
    with urllib.request.urlopen(request, timeout=30):
        pass
    return body
