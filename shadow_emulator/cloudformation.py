"""A test double for CloudFormation custom resources with their whole lifecycle.

moto sends a custom resource's handler only the Create request, in the background, and then
ignores most of the answer: the resource's physical id stays a generated name, a FAILED status
leaves the stack CREATE_IN_PROGRESS for good, and neither Update nor Delete is ever sent. While
installed, ``CloudFormationDouble`` runs ``Custom::*`` (and ``AWS::CloudFormation::CustomResource``)
resources whose ServiceToken is a Lambda function the way CloudFormation does:

* every request follows the custom-resource protocol: the event (RequestType, ResponseURL,
  StackId, RequestId, LogicalResourceId, ResourceType, ResourceProperties with every number and
  boolean a string, as CloudFormation passes them; OldResourceProperties and PhysicalResourceId
  on Update and Delete) goes to the function, which PUTs its answer to the ResponseURL — this
  server's ``/cloudformation_<region>/cfnresponse``. The stack operation waits for that answer
  (``response_timeout``, 60 s by default; a handler that fails or returns without answering
  fails the request at once instead of after CloudFormation's hour);
* Create: the physical id is the one the handler answered, its Data are the resource's
  Fn::GetAtt attributes — available to the resources and outputs that use them, since the
  stack waits for the answer before creating them. A FAILED answer (or none) fails the create:
  the resource's CREATE_FAILED event carries the handler's Reason, the stack rolls back (its
  resources are deleted, the failed custom resource gets its Delete request, as on AWS) and
  ends ROLLBACK_COMPLETE with the reason in StackStatusReason;
* Update: only when the resource's resolved properties changed (a redeploy that keeps them
  sends nothing), with OldResourceProperties and the current physical id. An answer with a new
  physical id replaces the resource: after the update, Delete goes to the old id with the old
  properties. A FAILED update rolls back: custom resources this update changed get an Update
  back to their old properties (or a Delete of their replacement), resources it added are
  deleted, and the stack ends UPDATE_ROLLBACK_COMPLETE (moto's own resources keep their new
  settings: moto cannot undo them);
* Delete: when an update removes the resource (after the update's other changes, as
  CloudFormation's cleanup does) and when the stack is deleted — custom resources first, a
  dependent one before what it depends on, while their functions and referenced resources still
  exist. A FAILED Delete on stack deletion leaves the stack DELETE_FAILED with the reason (delete
  it again to retry); in an update's cleanup it is reported and the update completes, as on AWS.
  ``DeletionPolicy: Retain`` resources get no Delete.

The handler runs wherever moto runs the function: for ``shadow_runtime.*`` handlers (and those
``LambdaDouble`` is told to run) that is in this process, with their real code, and their answer
comes back over HTTP — so this double needs the server (``EmulatorServer``), not ``mock_aws``.
One more moto gap stands between ``cdk deploy`` and any update: the CDK CLI passes
``UsePreviousValue`` for every parameter the stack lists, defaulted ones included (the
``BootstrapVersion`` of every CDK stack), and moto remembers only parameters passed explicitly (a
KeyError, HTTP 500). The double gives a defaulted parameter its default again, as CloudFormation
does (an SSM-typed default is resolved afresh).

The double also reads a JSON template as JSON, as CloudFormation does: moto tries PyYAML first on every
template (0.3 s for the example app's, on each create, update and change set; JSON 1 ms).

Limits: Lambda ServiceTokens only (no SNS), no 4 KB response limit, DisableRollback is ignored.
"""

from __future__ import annotations

import copy
import graphlib
import json
import logging
import re
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto import settings
from moto.awslambda.utils import get_backend as get_lambda_backend
from moto.cloudformation import models as cloudformation_models
from moto.cloudformation import parsing
from moto.cloudformation import responses as cloudformation_responses
from moto.cloudformation.custom_model import CustomModel
from moto.cloudformation.models import CloudFormationBackend, Event, Stack, cloudformation_backends
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.common_models import CloudFormationModel

LOG = logging.getLogger(__name__)
CUSTOM_RESOURCE_TYPE = "AWS::CloudFormation::CustomResource"
_INHERITED = object()  # a patched attribute the class did not define itself


class _JsonFirstYaml:
    """PyYAML as moto's CloudFormation calls it (``yaml.load``), a JSON document read with ``json`` first."""

    def __init__(self, yaml: Any) -> None:
        self._yaml = yaml

    def load(self, stream: Any, Loader: Any = None) -> Any:  # noqa: N803 - PyYAML's name
        if isinstance(stream, str) and stream.lstrip().startswith("{"):
            try:
                return json.loads(stream)
            except ValueError:
                pass  # not JSON after all: PyYAML's reading, and its errors
        return self._yaml.load(stream, Loader=Loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._yaml, name)


class _CreateFailed(Exception):
    """A custom resource's Create failed: stops moto's creation of the stack's remaining resources."""

    def __init__(self, resource: CustomResource, reason: str) -> None:
        super().__init__(reason)
        self.resource, self.reason = resource, reason


@dataclass
class _Outcome:
    ok: bool
    reason: str = ""
    physical_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    answered: bool = True  # the handler PUT an answer (False: it failed, returned or timed out without one)


@dataclass
class _State:
    properties: dict[str, Any]
    physical_id: str
    data: dict[str, Any]


@dataclass
class _Operation:
    """One stack operation (create, update, delete) in progress on this thread."""

    kind: str
    stack: Stack | None = None
    failed: list[str] = field(default_factory=list)  # logical ids
    reason: str = ""
    rollback_failed: bool = False
    handled: set[str] = field(default_factory=set)
    updated: list[tuple[CustomResource, _State]] = field(default_factory=list)
    failed_create: CustomResource | None = None


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    response: dict[str, Any] | None = None


class CustomResource(CustomModel):
    """A custom resource as CloudFormation knows it: properties, physical id, attributes."""

    def __init__(self, double: CloudFormationDouble, account_id: str, region_name: str, stack_id: str, logical_id: str,
                 resource_type: str, resource_name: str, properties: dict[str, Any]) -> None:
        super().__init__(region_name, str(uuid.uuid4()), logical_id, resource_name)
        self.double, self.account_id, self.stack_id = double, account_id, stack_id
        self.resource_type, self.properties = resource_type, properties
        self.physical_id = resource_name
        self.cf_resource_type, self.logical_resource_id = resource_type, logical_id
        #: Whether the handler answered the Create: only then does a rollback send it a Delete.
        self.answered = True

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def is_created(self) -> bool:
        return True  # created resources exist only once their Create succeeded

    def state(self) -> _State:
        return _State(self.properties, self.physical_id, self.data)

    def restore(self, state: _State) -> None:
        self.properties, self.physical_id, self.data = state.properties, state.physical_id, state.data

    def delete(self, account_id: str, region_name: str) -> None:
        """moto's own deletion path (a stack deleted outside the double's wrappers): send Delete."""
        outcome = self.double.request(self, "Delete", self.properties, physical_id=self.physical_id)
        if not outcome.ok:
            LOG.warning("custom resource %s: Delete failed: %s", self.logical_id, outcome.reason)


def cfn_strings(value: Any) -> Any:
    """Properties as CloudFormation hands them to a custom resource: numbers and booleans as strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {key: cfn_strings(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [cfn_strings(item) for item in value]
    return value


def references(value: Any) -> set[str]:
    """Logical ids a piece of template refers to (Ref, Fn::GetAtt, Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0] if isinstance(item, list) else str(item).split(".")[0])
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                if isinstance(text, str):
                    found |= {name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text)}
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def deletion_order(resources: dict[str, Any], names: list[str]) -> list[str]:
    """``names`` ordered for deletion: a resource before everything it depends on (directly or not)."""
    direct = {}
    for name, resource in resources.items():
        depends = resource.get("DependsOn", [])
        direct[name] = (references(resource.get("Properties", {})) | set([depends] if isinstance(depends, str) else depends)) \
            & set(resources)

    def closure(name: str) -> set[str]:
        seen, todo = set(), [name]
        while todo:
            for dependency in direct.get(todo.pop(), set()):
                if dependency not in seen:
                    seen.add(dependency)
                    todo.append(dependency)
        return seen

    try:
        creation = list(graphlib.TopologicalSorter({name: closure(name) & set(names) for name in names}).static_order())
    except graphlib.CycleError:
        return list(reversed(names))
    return list(reversed(creation))


def _retained(resource_json: dict[str, Any]) -> bool:
    return resource_json.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")


class CloudFormationDouble:
    """``EmulatorServer`` installs it; see the module's docstring.

    :param response_url: base URL of this server, where handlers PUT their answers. Default:
        ``http://localhost:$MOTO_PORT``.
    :param response_timeout: seconds a stack operation waits for a handler's answer. Default: 60.
    """

    def __init__(self, response_url: str | None = None, response_timeout: float = 60.0) -> None:
        self.response_url = response_url
        self.response_timeout = response_timeout
        #: Every request sent to a handler: (RequestType, LogicalResourceId, PhysicalResourceId or None).
        self.requests: list[tuple[str, str, str | None]] = []
        self._pending: dict[str, _Pending] = {}
        self._local = threading.local()
        self._saved: list[tuple[Any, str, Any]] = []

    # Install / uninstall

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        self._saved.append((owner, name, vars(owner).get(name, _INHERITED)))
        setattr(owner, name, value)

    def install(self) -> CloudFormationDouble:
        double = self
        original_class_from_type = parsing.resource_class_from_type
        create_stack, delete_stack = CloudFormationBackend.create_stack, CloudFormationBackend.delete_stack
        execute_change_set, stack_update = CloudFormationBackend.execute_change_set, Stack.update
        map_update = parsing.ResourceMap.update
        resolve_update_parameters = CloudFormationBackend._resolve_update_parameters

        def resource_class_from_type(resource_type: str) -> type[CloudFormationModel]:
            return CustomModel if resource_type == CUSTOM_RESOURCE_TYPE else original_class_from_type(resource_type)

        def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            return double._create(resource_name, cloudformation_json, account_id, region_name, kwargs)

        def update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
            properties = cfn_strings(cloudformation_json.get("Properties") or {})
            double._update(original_resource, properties)
            return original_resource

        def process_cfn_response(response: CloudFormationResponse):
            return double._receive(response.body)

        def backend_create_stack(backend: CloudFormationBackend, *args: Any, **kwargs: Any) -> Stack:
            with double._operation("CREATE") as op:
                try:
                    return create_stack(backend, *args, **kwargs)
                except _CreateFailed as failure:
                    stack = backend.stacks[failure.resource.stack_id]
                    double._roll_back_create(stack, op, failure)
                    return stack

        def backend_delete_stack(backend: CloudFormationBackend, name_or_stack_id: str) -> None:
            stack = backend.stacks.get(name_or_stack_id) or next(
                (s for s in backend.stacks.values() if s.name == name_or_stack_id), None)
            if stack is not None:
                stack.status_reason = None
            if stack is not None and not double._delete_stack_custom_resources(stack):
                return
            delete_stack(backend, name_or_stack_id)
            if stack is not None and stack.status == "DELETE_COMPLETE":
                _forget_resources(stack)  # reading a deleted stack must not create its resources again

        def backend_execute_change_set(backend: CloudFormationBackend, change_set_name: str, stack_name: str | None = None):
            with double._operation("CHANGE_SET") as op:
                result = execute_change_set(backend, change_set_name, stack_name)
            if op.stack is not None and op.failed:
                double._finish_failed(op.stack, op, "ROLLBACK" if op.stack.status.startswith("CREATE") else "UPDATE_ROLLBACK")
            return result

        def update_stack(stack: Stack, template: str, role_arn: str | None = None, parameters: dict[str, Any] | None = None,
                         tags: dict[str, str] | None = None) -> None:
            saved = (stack.template, stack.template_dict, stack.parameters)
            stack.status_reason = None
            with double._operation("UPDATE", stack) as op:
                stack_update(stack, template, role_arn, parameters=parameters, tags=tags)
            if op.failed:
                stack.template, stack.template_dict, stack.parameters = saved
                stack.output_map = stack._create_output_map()
                double._finish_failed(stack, op, "UPDATE_ROLLBACK")

        def backend_resolve_update_parameters(backend: CloudFormationBackend, instance: Any,
                                              incoming_params: list[dict[str, Any]]) -> dict[str, Any]:
            known = getattr(instance, "parameters", None) or {}
            incoming = [p for p in incoming_params if not p.get("UsePreviousValue") or p.get("ParameterKey") in known]
            return resolve_update_parameters(backend, instance, incoming)

        def resource_map_update(resource_map: parsing.ResourceMap, template: dict[str, Any],
                                parameters: dict[str, Any] | None = None) -> None:
            with double._operation("UPDATE") as op:
                double._update_resource_map(map_update, resource_map, template, parameters, op)

        self._patch(parsing, "resource_class_from_type", resource_class_from_type)
        self._patch(CustomModel, "create_from_cloudformation_json", classmethod(create))
        self._patch(CustomModel, "update_from_cloudformation_json", classmethod(update))
        self._patch(CloudFormationResponse, "process_cfn_response", process_cfn_response)
        self._patch(CloudFormationBackend, "create_stack", backend_create_stack)
        self._patch(CloudFormationBackend, "delete_stack", backend_delete_stack)
        self._patch(CloudFormationBackend, "execute_change_set", backend_execute_change_set)
        self._patch(CloudFormationBackend, "_resolve_update_parameters", backend_resolve_update_parameters)
        self._patch(Stack, "update", update_stack)
        self._patch(parsing.ResourceMap, "update", resource_map_update)
        for module in (cloudformation_models, cloudformation_responses):
            self._patch(module, "yaml", _JsonFirstYaml(module.yaml))
        return self

    def uninstall(self) -> None:
        while self._saved:
            owner, name, value = self._saved.pop()
            if value is _INHERITED:
                delattr(owner, name)
            else:
                setattr(owner, name, value)

    def __enter__(self) -> CloudFormationDouble:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # The operation in progress on this thread (stack operations run in the request's thread)

    class _Scope:
        def __init__(self, double: CloudFormationDouble, kind: str, stack: Stack | None) -> None:
            self.double, self.kind, self.stack = double, kind, stack

        def __enter__(self) -> _Operation:
            stack_of_ops = self.double._local.__dict__.setdefault("ops", [])
            current = stack_of_ops[-1] if stack_of_ops else None
            # A stack's update runs its resource map's update: one operation for both.
            if current is not None and self.kind == "UPDATE" and current.kind in ("UPDATE", "CHANGE_SET") and \
                    (self.stack is None or current.stack is None or current.stack is self.stack):
                current.stack = current.stack or self.stack
                self.pushed = False
                return current
            operation = _Operation(self.kind, self.stack)
            stack_of_ops.append(operation)
            self.pushed = True
            return operation

        def __exit__(self, *exc: object) -> None:
            if self.pushed:
                self.double._local.ops.pop()

    def _operation(self, kind: str, stack: Stack | None = None) -> CloudFormationDouble._Scope:
        return self._Scope(self, kind, stack)

    def _current(self) -> _Operation | None:
        ops = self._local.__dict__.get("ops") or []
        return ops[-1] if ops else None

    # The protocol

    def _base_url(self) -> str:
        return (self.response_url or f"http://localhost:{settings.moto_server_port()}").rstrip("/")

    def request(self, resource: CustomResource, kind: str, properties: dict[str, Any], physical_id: str | None = None,
                old_properties: dict[str, Any] | None = None) -> _Outcome:
        """Send one request to the resource's handler and wait for its answer at the ResponseURL."""
        request_id = str(uuid.uuid4())
        token = properties.get("ServiceToken") or resource.properties.get("ServiceToken")
        event: dict[str, Any] = {
            "RequestType": kind, "ServiceToken": token,
            "ResponseURL": f"{self._base_url()}/cloudformation_{resource.region_name}/cfnresponse"
                           f"?stack={urllib.parse.quote(resource.stack_id, safe='')}",
            "StackId": resource.stack_id, "RequestId": request_id, "LogicalResourceId": resource.logical_id,
            "ResourceType": resource.resource_type, "ResourceProperties": properties}
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = old_properties
        self.requests.append((kind, resource.logical_id, physical_id))
        if not token:
            return _Outcome(False, "The custom resource has no ServiceToken", answered=False)
        pending = self._pending[request_id] = _Pending()
        finished, failure = threading.Event(), []

        def invoke() -> None:
            headers: dict[str, str] = {}
            try:
                payload = get_lambda_backend(resource.account_id, resource.region_name).invoke(
                    token, None, json.dumps(event), {}, headers)
                if "x-amz-function-error" in headers:
                    failure.append(_error_of(payload))
            except Exception as error:  # noqa: BLE001 - reported as the request's failure
                failure.append(f"{type(error).__name__}: {error}")
            finally:
                finished.set()

        threading.Thread(target=invoke, name=f"custom-resource-{resource.logical_id}", daemon=True).start()
        deadline = time.monotonic() + self.response_timeout
        try:
            while not pending.done.wait(0.05):
                if finished.is_set() and not pending.done.wait(0.5):
                    why = f"it failed: {failure[0]}" if failure else "it returned without answering"
                    return _Outcome(False, f"The custom resource's function {token} did not send a response to the "
                                           f"ResponseURL: {why} (RequestId: {request_id})", answered=False)
                if time.monotonic() >= deadline:
                    return _Outcome(False, f"Failed to receive a response from the custom resource within "
                                           f"{self.response_timeout:g} s, the emulator's limit (RequestId: {request_id})",
                                    answered=False)
        finally:
            self._pending.pop(request_id, None)
        answer = pending.response or {}
        physical = answer.get("PhysicalResourceId")
        data = answer.get("Data") or {}
        if answer.get("Status") != "SUCCESS":
            return _Outcome(False, f"Received response status [{answer.get('Status')}] from custom resource. Message "
                                   f"returned: {answer.get('Reason') or ''} (RequestId: {request_id})", physical, data)
        if not physical or not isinstance(physical, str):
            return _Outcome(False, f"Invalid PhysicalResourceId (RequestId: {request_id})", None, data)
        if not isinstance(data, dict):
            return _Outcome(False, f"Invalid Data: an object is expected (RequestId: {request_id})", physical, {})
        return _Outcome(True, answer.get("Reason") or "", physical, data)

    def _receive(self, body: Any) -> tuple[int, dict[str, Any], str]:
        """A handler's answer PUT to the ResponseURL."""
        try:
            answer = json.loads(body or "{}")
            pending = self._pending.get(answer.get("RequestId", ""))
        except (ValueError, AttributeError):
            return 400, {"status": 400}, json.dumps({"error": "the response is not a JSON object"})
        if pending is None:
            LOG.warning("a custom resource response for no pending request: %s", str(body)[:300])
            return 404, {"status": 404}, json.dumps({"error": "no pending request with this RequestId"})
        pending.response = answer
        pending.done.set()
        return 200, {"status": 200}, ""

    # Create

    def _create(self, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
                kwargs: dict[str, Any]) -> CustomResource:
        properties = cfn_strings(cloudformation_json.get("Properties") or {})
        resource = CustomResource(self, account_id, region_name, kwargs["StackId"], kwargs["LogicalId"],
                                  kwargs["ResourceType"], resource_name, properties)
        stack = cloudformation_backends[account_id][region_name].get_stack(kwargs["StackId"])
        stack.add_custom_resource(resource)
        op = self._current()
        if op is None:
            # Only a read (DescribeStacks, ...) of a stack whose resources are gone makes moto create lazily:
            # CloudFormation creates nothing outside an operation.
            LOG.warning("custom resource %s: not created outside a stack operation", kwargs["LogicalId"])
            return resource
        op.stack = op.stack or stack
        op.handled.add(resource.logical_id)
        outcome = self.request(resource, "Create", properties)
        if outcome.physical_id:
            resource.physical_id = outcome.physical_id
        resource.answered = outcome.answered
        if not outcome.ok:
            self._resource_event(stack, resource, "CREATE_FAILED", outcome.reason)
            raise _CreateFailed(resource, outcome.reason)
        resource.set_data(outcome.data)
        return resource

    def _roll_back_create(self, stack: Stack, op: _Operation, failure: _CreateFailed) -> None:
        logical = failure.resource.logical_id
        reason = f"The following resource(s) failed to create: [{logical}]. Rollback requested by user."
        stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
        stack.status = "ROLLBACK_IN_PROGRESS"
        resource_map = stack.resource_map
        created = [name for name, value in resource_map._parsed_resources.items()
                   if name in resource_map._resource_json_map and isinstance(value, CloudFormationModel)]
        ok = self._delete_failed_create(stack, failure.resource)
        ok = self._delete_resources(stack, resource_map, list(reversed(created)), resource_map._resource_json_map) and ok
        _forget_resources(stack)
        backend = cloudformation_backends[stack.account_id][stack.region_name]
        for name in [name for name, export in backend.exports.items() if export.exporting_stack_id == stack.stack_id]:
            backend.exports.pop(name)
        op.failed.append(logical)
        op.reason = failure.reason
        op.rollback_failed = not ok
        self._finish_failed(stack, op, "ROLLBACK")

    # Update

    def _update(self, resource: CustomResource, properties: dict[str, Any]) -> None:
        op = self._current() or _Operation("UPDATE")
        op.handled.add(resource.logical_id)
        if properties == resource.properties or op.failed:  # unchanged, or the update is failing already
            return
        stack = cloudformation_backends[resource.account_id][resource.region_name].get_stack(resource.stack_id)
        if properties.get("ServiceToken") != resource.properties.get("ServiceToken"):
            return self._fail(stack, op, resource, "UPDATE_FAILED", "Modifying service token is not allowed.")
        before = resource.state()
        outcome = self.request(resource, "Update", properties, physical_id=resource.physical_id,
                               old_properties=resource.properties)
        if not outcome.ok:
            return self._fail(stack, op, resource, "UPDATE_FAILED", outcome.reason)
        resource.restore(_State(properties, outcome.physical_id or before.physical_id, outcome.data))
        op.updated.append((resource, before))

    def _update_resource_map(self, map_update: Any, resource_map: parsing.ResourceMap, template: dict[str, Any],
                             parameters: dict[str, Any] | None, op: _Operation) -> None:
        """moto's update, with removed resources held back for the cleanup and custom resources compared
        by their resolved properties."""
        old_json, old_template = resource_map._resource_json_map, resource_map._template
        old_parameters = resource_map.input_parameters
        op.stack = op.stack or cloudformation_backends[resource_map._account_id][resource_map._region_name] \
            .get_stack(resource_map.stack_id)
        removed = resource_map.build_resource_diff(template, parameters)["Remove"]
        held = {**template, "Resources": {**template["Resources"], **{name: old_json[name] for name in removed}}}
        before = set(resource_map._parsed_resources)
        try:
            map_update(resource_map, held, parameters)
            # CloudFormation compares resolved properties: a changed Ref or GetAtt changes them too.
            for name, resource in list(resource_map._parsed_resources.items()):
                if isinstance(resource, CustomResource) and name not in op.handled and name not in removed \
                        and name in template["Resources"] and not op.failed:
                    resolved = parsing.clean_json(copy.deepcopy(template["Resources"][name].get("Properties") or {}),
                                                  resource_map)
                    self._update(resource, cfn_strings(resolved))
        except _CreateFailed as failure:  # a resource this update adds failed to create
            op.failed_create = failure.resource
            op.failed.append(failure.resource.logical_id)
            op.reason = op.reason or failure.reason
        if op.failed:
            added = [name for name, value in resource_map._parsed_resources.items()
                     if name not in before and isinstance(value, CloudFormationModel)]
            self._roll_back_update(op.stack, resource_map, op, added)
            resource_map._resource_json_map, resource_map._template = old_json, old_template
            resource_map.input_parameters = old_parameters
            resource_map.load_mapping()
            resource_map.load_parameters()
            resource_map.load_conditions()
            return
        resource_map._template, resource_map._resource_json_map = template, template["Resources"]
        self._clean_up(op.stack, resource_map, op, removed, old_json)

    def _clean_up(self, stack: Stack, resource_map: parsing.ResourceMap, op: _Operation, removed: list[str],
                  old_json: dict[str, Any]) -> None:
        """After a successful update: Delete for replaced physical ids, then removed resources."""
        for resource, before in op.updated:
            if resource.physical_id != before.physical_id:
                self._send_delete(stack, resource, before.properties, before.physical_id)
        kept = [name for name in removed if _retained(old_json[name])]
        for name in kept:
            resource_map._parsed_resources.pop(name, None)
        self._delete_resources(stack, resource_map, deletion_order(old_json, [n for n in removed if n not in kept]), old_json)

    def _roll_back_update(self, stack: Stack, resource_map: parsing.ResourceMap, op: _Operation, added: list[str]) -> None:
        kinds = "create" if op.failed_create is not None else "update"
        stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=(
            f"The following resource(s) failed to {kinds}: [{', '.join(op.failed)}]."))
        ok = True
        for resource, before in reversed(op.updated):
            if resource.physical_id != before.physical_id:  # replaced: the old one is still there; delete the new one
                ok = self._send_delete(stack, resource, resource.properties, resource.physical_id) and ok
            else:
                outcome = self.request(resource, "Update", before.properties, physical_id=resource.physical_id,
                                       old_properties=resource.properties)
                if not outcome.ok:
                    self._resource_event(stack, resource, "UPDATE_FAILED", outcome.reason)
                    ok = False
            resource.restore(before)
        if op.failed_create is not None:
            ok = self._delete_failed_create(stack, op.failed_create) and ok
        ok = self._delete_resources(stack, resource_map, list(reversed(added)), resource_map._resource_json_map) and ok
        op.rollback_failed = not ok

    # Delete

    def _delete_stack_custom_resources(self, stack: Stack) -> bool:
        """Delete a stack's custom resources before moto deletes the rest; False when one failed (DELETE_FAILED)."""
        resource_map = stack.resource_map
        customs = [name for name, value in resource_map._parsed_resources.items()
                   if isinstance(value, CustomResource) and name in resource_map._resource_json_map
                   and not _retained(resource_map._resource_json_map[name])]
        if not customs:
            return True
        with self._operation("DELETE", stack) as op:
            for name in deletion_order(resource_map._resource_json_map, customs):
                resource = resource_map._parsed_resources[name]
                if not self._send_delete(stack, resource, resource.properties, resource.physical_id, op):
                    break
                resource_map._parsed_resources.pop(name)
        if not op.failed:
            return True
        reason = f"The following resource(s) failed to delete: [{', '.join(op.failed)}]. "
        stack._add_stack_event("DELETE_FAILED", resource_status_reason=reason)
        stack.status, stack.status_reason = "DELETE_FAILED", op.reason or reason
        return False

    def _delete_failed_create(self, stack: Stack, resource: CustomResource) -> bool:
        """A rollback deletes a custom resource whose Create failed, if its handler answered (it may exist)."""
        return self._send_delete(stack, resource, resource.properties, resource.physical_id) if resource.answered else True

    def _send_delete(self, stack: Stack, resource: CustomResource, properties: dict[str, Any], physical_id: str,
                     op: _Operation | None = None) -> bool:
        outcome = self.request(resource, "Delete", properties, physical_id=physical_id)
        if not outcome.ok:
            self._resource_event(stack, resource, "DELETE_FAILED", outcome.reason, physical_id)
            if op is not None:
                op.failed.append(resource.logical_id)
                op.reason = op.reason or outcome.reason
        return outcome.ok

    def _delete_resources(self, stack: Stack, resource_map: parsing.ResourceMap, names: list[str],
                          resources_json: dict[str, Any]) -> bool:
        """Delete these resources in this order (moto's own ones retried while that makes progress)."""
        ok, natives = True, []
        for name in names:
            resource = resource_map._parsed_resources.get(name)
            if isinstance(resource, CustomResource):
                ok = self._send_delete(stack, resource, resource.properties, resource.physical_id) and ok
                resource_map._parsed_resources.pop(name, None)
            elif isinstance(resource, CloudFormationModel):
                natives.append(name)
            else:
                resource_map._parsed_resources.pop(name, None)
        errors: dict[str, Exception] = {}
        while natives:
            left = []
            for name in natives:
                try:
                    resource_map._delete_resource(resource_map._parsed_resources[name], resources_json[name])
                except Exception as error:  # noqa: BLE001 - e.g. a dependency not deleted yet: try again
                    errors[name] = error
                    left.append(name)
                else:
                    resource_map._parsed_resources.pop(name, None)
            if len(left) == len(natives):
                for name in left:
                    LOG.warning("could not delete %s: %s", name, errors[name])
                    resource_map._parsed_resources.pop(name, None)
                break
            natives = left
        return ok

    # Events and statuses

    @staticmethod
    def _resource_event(stack: Stack, resource: CustomResource, status: str, reason: str,
                        physical_id: str | None = None) -> None:
        stack.events.append(Event(stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=resource.logical_id,
                                  physical_resource_id=physical_id or resource.physical_id,
                                  resource_type=resource.resource_type, resource_status=status,
                                  resource_status_reason=reason, resource_properties=json.dumps(resource.properties)))

    def _fail(self, stack: Stack, op: _Operation, resource: CustomResource, status: str, reason: str) -> None:
        self._resource_event(stack, resource, status, reason)
        op.failed.append(resource.logical_id)
        op.reason = op.reason or reason

    @staticmethod
    def _finish_failed(stack: Stack, op: _Operation, prefix: str) -> None:
        """The stack's final status after a rollback (moto has just written *_COMPLETE: undo that)."""
        while stack.events and stack.events[-1].logical_resource_id == stack.name and \
                stack.events[-1].resource_status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            stack.events.pop()
        status = f"{prefix}_FAILED" if op.rollback_failed else f"{prefix}_COMPLETE"
        stack._add_stack_event(status)
        stack.status, stack.status_reason = status, op.reason


def _forget_resources(stack: Stack) -> None:
    """A stack without resources (rolled back, deleted) keeps its template, but moto creates resources
    lazily, on any read of them or of the outputs: leave it none to create."""
    stack.resource_map._resource_json_map = {}
    stack.output_map = parsing.OutputMap(stack.resource_map, {}, stack.stack_id)


def _error_of(payload: Any) -> str:
    try:
        error = json.loads(payload)
        return f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
    except (ValueError, TypeError, AttributeError):
        return str(payload)[:500]
