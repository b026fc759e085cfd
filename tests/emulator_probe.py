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
    # The library's own cfn-response PUT (the emulator's LambdaDouble puts lambda/ on the path).
    from shadow_runtime.lifecycle import respond

    return respond(event, "FAILED" if failing else "SUCCESS",
                   {"PhysicalResourceId": physical, "Data": {"Echo": properties.get("Value", "unset"), "Kind": kind}},
                   f"probe refuses {kind}" if failing else "ok")
