"""Authorization as AWS does it, for every request the emulator serves: the rules table (``rules.py``) says which
authorization requests a call makes, ``policies.py`` finds the policies, iam-simulate (``evaluator.py``) decides.

``Authorizer.check_wsgi(environ)`` is the server's gate: None when the request may be served, else the answer AWS
gives a refused request (status, headers, body in the call's protocol: ``AccessDeniedException``, S3's 403
``AccessDenied``, SNS's ``AuthorizationError`` or, for its key, ``KMSAccessDenied``). ``Authorizer.act(...)`` checks
what a service does with a role passed to it (SageMaker reading a model archive or writing capture files as the
model's execution role). Every decision is logged (principal, action, resource, the evaluator's reason) and counted
in ``usage`` (the least-privilege report's input); every refusal is also kept in ``denials``.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import policies
from .evaluator import Evaluation, PolicyEvaluator
from .principals import ADMINISTRATOR, DEFAULT_ACCOUNT, PARTITION, Principal, RoleSessions, resolve
from .requests import Call, UnknownCall, parse
from .rules import Check, Rule, acts_by_name, derived_by_name, rules_by_call

LOG = logging.getLogger("shadow_emulator.authorization")
_PLACEHOLDER = re.compile(r"\{([^{}|]+)(\|lower)?\}")

#: How each service answers a refused call: (error code, HTTP status). JSON-protocol services answer
#: AccessDeniedException with 400 (each API reference's "Common Errors"), S3 403 AccessDenied, SNS AuthorizationError.
_SERVICE_ERRORS: dict[str, tuple[str, int]] = {
    "s3": ("AccessDenied", 403), "sns": ("AuthorizationError", 403), "sts": ("AccessDenied", 403),
    "iam": ("AccessDenied", 403), "cloudformation": ("AccessDenied", 403), "cloudwatch": ("AccessDenied", 403),
    "lambda": ("AccessDeniedException", 403), "sagemaker-runtime": ("AccessDeniedException", 403),
}
_ERROR_STATUS = {"KMSAccessDenied": 400, "AccessDenied": 403, "AccessDeniedException": 400, "AuthorizationError": 403}


_DEFERRED = threading.local()  # a refusal the service reports later, for the request this thread serves


def take_query_refusal() -> AccessDenied | None:
    """The refusal of the query the request this thread serves starts (Athena fails the query, not the call), once."""
    refusal, _DEFERRED.refusal = getattr(_DEFERRED, "refusal", None), None
    return refusal


class AccessDenied(Exception):
    """A refused authorization request, with what AWS says of it."""

    def __init__(self, principal: Principal, action: str, resource: str, evaluation: Evaluation, code: str = "") -> None:
        self.principal, self.action, self.resource, self.evaluation, self.code = principal, action, resource, evaluation, code
        if evaluation.result == "ExplicitlyDenied":
            where = "an identity-based" if evaluation.identity == "ExplicitlyDenied" else "a resource-based"
            because = f"with an explicit deny in {where} policy"
        elif evaluation.result == "Error":
            because = f"because the emulator's IAM evaluator could not decide ({evaluation.reason})"
        elif evaluation.identity == "Allowed" or principal.kind == "service":
            because = f"because no resource-based policy allows the {action} action"
        else:
            because = f"because no identity-based policy allows the {action} action"
        on = f" on resource: {resource}" if resource != "*" else ""
        super().__init__(f"User: {principal.arn} is not authorized to perform: {action}{on} {because}")


@dataclass(frozen=True)
class Decision:
    """A refused authorization request: who (a role's ARN for its sessions), what, on what, the evaluator's reason
    and the message AWS's refusal carries."""

    principal: str
    action: str
    resource: str
    reason: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"principal": self.principal, "action": self.action, "resource": self.resource, "reason": self.reason,
                "message": self.message}


class Authorizer:
    """The emulator's authorization.

    :param evaluator: the IAM evaluator. Default: a new ``PolicyEvaluator`` (iam-simulate in a Node process).
    """

    def __init__(self, evaluator: PolicyEvaluator | None = None) -> None:
        self.evaluator = evaluator or PolicyEvaluator()
        self.rules = rules_by_call()
        self.derived = derived_by_name()
        self.acts = acts_by_name()
        self.sessions = RoleSessions(check_trust=self._check_trust)
        #: Allowed requests: (principal, action, resource) -> how many (a role's sessions count as the role).
        self.usage: dict[tuple[str, str, str], int] = {}
        #: Refused requests, in order.
        self.denials: list[Decision] = []
        #: Each role's grants as last read by a least-privilege report (kept after the role is deleted).
        self.granted: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    def start(self) -> Authorizer:
        self.evaluator.start()
        return self

    def stop(self) -> None:
        self.evaluator.stop()

    def recorded(self) -> tuple[dict[tuple[str, str, str], int], list[Decision]]:
        """Copies of ``usage`` and ``denials`` (requests go on being authorized meanwhile)."""
        with self._lock:
            return dict(self.usage), list(self.denials)

    # The server's gate

    def check_wsgi(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """None if the request may be served; else AWS's answer to the refused request."""
        try:
            call = parse(environ)
        except UnknownCall as error:
            LOG.error("authorization: refused an unknown call: %s", error)
            return _answer("InternalFailure", 500, f"shadow_emulator: {error}; add it to "
                                                  "shadow_emulator/authorization/rules.py", "json")
        _DEFERRED.refusal = None
        if call is None:
            return None  # unsigned: CloudFormation's custom-resource answers to their presigned URL, the demo's probes
        try:
            self.authorize(call)
        except UnknownCall as error:
            LOG.error("authorization: %s", error)
            return _answer("InternalFailure", 500, f"shadow_emulator: {error}", _protocol(call.service))
        except AccessDenied as denied:
            code, status = _SERVICE_ERRORS.get(call.service, ("AccessDeniedException", 400))
            if denied.code:
                code, status = denied.code, _ERROR_STATUS.get(denied.code, status)
            return _answer(code, status, str(denied), _protocol(call.service))
        return None

    def authorize(self, call: Call) -> Principal:
        """Authorize ``call`` as its signer: the rule's checks, then the requests the service makes on its behalf.
        Raises ``AccessDenied`` (the first refusal) or ``UnknownCall`` (no rule for the call)."""
        rule: Rule | None = self.rules.get(call.name)
        if rule is None:
            raise UnknownCall(f"no authorization rule for {call.name}: every call the emulator serves needs a row in "
                              "shadow_emulator/authorization/rules.py")
        principal = resolve(call.access_key_id)
        values = _Values(call, principal)
        if call.name == "sts:GetCallerIdentity":
            return principal
        for check in rule.checks:
            self._check(principal, check, values)
        for name in rule.follows:
            derived = self.derived[name]
            try:
                for check in derived.checks:
                    self._check(principal, check, values, code=derived.error)
            except AccessDenied as denied:
                if derived.fails != "query":
                    raise
                _DEFERRED.refusal = denied  # the call is served; the query it starts fails (take_query_refusal)
        return principal

    def act(self, name: str, role_arn: str, service_values: dict[str, Any], region: str = "us-east-1") -> None:
        """What a service does with a role passed to it (``rules.SERVICE_ACTS[name]``), as that role; raises
        ``AccessDenied``. ``service_values`` fill the act's templates (``model_data_object``, ...)."""
        act = self.acts[name]
        credentials = self.sessions.credentials(role_arn, act.service)
        principal = resolve(credentials.access_key_id)
        values = _Values(None, principal, {"region": region, **service_values})
        for check in act.checks:
            self._check(principal, check, values)

    # Decisions

    def _check(self, principal: Principal, check: Check, values: _Values, code: str = "") -> None:
        resources = [r for template in check.resources for r in values.expand(template)]
        if not resources and check.resources != ("*",):
            return  # the request does not apply (no key named, no such parameter)
        context = values.context(principal, check)
        for resource in resources or ["*"]:
            evaluation = self._evaluate(principal, check.action, resource, context)
            self._record(principal, check.action, resource, evaluation, code)

    def _evaluate(self, principal: Principal, action: str, resource: str, context: dict[str, Any]) -> Evaluation:
        account = resource.split(":")[4] if resource.count(":") >= 5 and resource.split(":")[4] else DEFAULT_ACCOUNT
        if resource != "*":  # AWS sets the owner of the resource on every request (a global condition key)
            context = {**context, "aws:ResourceAccount": account}
        simulation: dict[str, Any] = {
            "identityPolicies": policies.identity_policies(principal),
            "serviceControlPolicies": [], "resourceControlPolicies": [],
            "request": {"action": action, "principal": principal.arn,
                        "resource": {"resource": resource, "accountId": account}, "contextVariables": context},
        }
        boundary = policies.permission_boundary(principal)
        if boundary:
            simulation["permissionBoundaryPolicies"] = boundary
        resource_policy = policies.resource_policy(resource, action) if resource != "*" else None
        if resource_policy is not None:
            simulation["resourcePolicy"] = resource_policy
        return self.evaluator.evaluate(simulation)

    def _record(self, principal: Principal, action: str, resource: str, evaluation: Evaluation, code: str = "") -> None:
        """Count an allowed request; keep, log and raise (``AccessDenied``) a refused one."""
        who = principal.role_arn or principal.arn
        if evaluation.allowed:
            with self._lock:
                self.usage[(who, action, resource)] = self.usage.get((who, action, resource), 0) + 1
            if evaluation.ignored_context_keys:
                LOG.warning("authorization: %s on %s: context keys not defined for the action: %s", action, resource,
                            ", ".join(evaluation.ignored_context_keys))
            return
        denied = AccessDenied(principal, action, resource, evaluation, code)
        with self._lock:
            self.denials.append(Decision(who, action, resource, evaluation.reason, str(denied)))
        LOG.warning("authorization: DENIED %s %s on %s (%s: %s)", principal.arn, action, resource, evaluation.result,
                    evaluation.reason)
        raise denied

    def _check_trust(self, role_arn: str, service: str, source_arn: str | None = None) -> None:
        """Raises unless ``role_arn``'s trust policy lets ``service`` assume it (sts:AssumeRole), for ``source_arn``."""
        policy = policies.resource_policy(role_arn, "sts:AssumeRole")
        context = {"aws:SourceArn": source_arn, "aws:SourceAccount": source_arn.split(":")[4]} if source_arn else {}
        simulation = {"identityPolicies": [], "serviceControlPolicies": [], "resourceControlPolicies": [],
                      "request": {"action": "sts:AssumeRole", "principal": service,
                                  "resource": {"resource": role_arn, "accountId": role_arn.split(":")[4]},
                                  "contextVariables": {"aws:SecureTransport": "true", **context}}}
        if policy is not None:
            simulation["resourcePolicy"] = policy
        evaluation = self.evaluator.evaluate(simulation)
        self._record(Principal(service, "service", service), "sts:AssumeRole", role_arn, evaluation)


def _protocol(service: str) -> str:
    from moto.core.utils import get_service_model

    try:
        return str(get_service_model(service).protocol)
    except Exception:  # noqa: BLE001 - an unknown service answers in JSON
        return "json"


def _answer(code: str, status: int, message: str, protocol: str) -> tuple[str, list[tuple[str, str]], bytes]:
    from http import HTTPStatus
    from xml.sax.saxutils import escape

    if protocol == "rest-xml":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message>'
                f"<RequestId>shadow-emulator</RequestId></Error>").encode()
        content_type = "application/xml"
    elif protocol == "query":
        body = (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>shadow-emulator</RequestId></ErrorResponse>").encode()
        content_type = "text/xml"
    else:
        key = "Message" if protocol == "rest-json" else "message"
        body = json.dumps({"__type": code, key: message}).encode()
        content_type = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("x-amzn-ErrorType", code),
               ("x-amzn-RequestId", "shadow-emulator")]
    return f"{status} {HTTPStatus(status).phrase}", headers, body


class _Values:
    """The values a rule's templates read: the call's parameters and headers, the request's region and account, the
    principal's context, and values derived from the emulated account (``COMPUTED``)."""

    def __init__(self, call: Call | None, principal: Principal, given: dict[str, Any] | None = None) -> None:
        self.call, self.principal = call, principal
        self.given = dict(given or {})
        self.region = self.given.get("region") or (call.region if call else "us-east-1")
        self.account = principal.account if principal.kind != "service" else DEFAULT_ACCOUNT
        self._cache: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        if name in self._cache:
            return self._cache[name]
        value: Any
        if name in self.given:
            value = self.given[name]
        elif name == "region":
            value = self.region
        elif name == "account":
            value = self.account
        elif name.startswith("header:"):
            value = next((v for k, v in (self.call.headers.items() if self.call else ()) if k.lower() == name[7:]), None)
        elif name in COMPUTED:
            value = COMPUTED[name](self) if self.call is not None or name in self.given else None
        else:
            value = self.call.params.get(name) if self.call is not None else None
            if value is not None and not isinstance(value, (str, list)):
                value = str(value)
        self._cache[name] = value
        return value

    def expand(self, template: str) -> list[str]:
        """Every string ``template`` stands for (none if a value it needs is missing)."""
        names = _PLACEHOLDER.findall(template)
        choices: list[list[str]] = []
        for name, lower in names:
            value = self.get(name)
            if value is None or value == [] or value == "":
                return []
            values = value if isinstance(value, list) else [value]
            choices.append([str(v).lower() if lower else str(v) for v in values])
        found = []
        for combination in itertools.product(*choices):
            found.append(_PLACEHOLDER.sub(lambda _match, parts=iter(combination): next(parts), template))
        return found

    def context(self, principal: Principal, check: Check) -> dict[str, Any]:
        now = datetime.now(UTC)
        context: dict[str, Any] = {"aws:SecureTransport": "true", "aws:RequestedRegion": self.region,
                                   "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "aws:EpochTime": str(int(now.timestamp()))}
        if principal.kind != "service":
            context["aws:PrincipalArn"] = principal.role_arn or principal.arn
            context["aws:PrincipalAccount"] = principal.account
        if check.action.startswith("kms:"):
            context["kms:CallerAccount"] = principal.account
        for key, template in check.context:
            expanded = self.expand(template)
            if expanded:
                context[key] = expanded[0]
        return context


# Values derived from the emulated account

def _stack(values: _Values) -> str | None:
    name = values.get("StackName")
    if not name:
        return f"arn:{PARTITION}:cloudformation:{values.region}:{values.account}:stack/*"
    if name.startswith("arn:"):
        return name
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[values.account][values.region]
    for stack in list(backend.stacks.values()):
        if stack.name == name and stack.status != "DELETE_COMPLETE":
            return stack.stack_id
    return f"arn:{PARTITION}:cloudformation:{values.region}:{values.account}:stack/{name}/new"


def _function(values: _Values) -> str | None:
    name = values.get("FunctionName")
    if not name:
        return None
    if name.startswith("arn:"):
        return ":".join(name.split(":")[:7])
    return f"arn:{PARTITION}:lambda:{values.region}:{values.account}:function:{name}"


def _event_buses(values: _Values) -> list[str]:
    entries = (values.call.params.get("Entries") if values.call else None) or [{}]
    names = {entry.get("EventBusName") or "default" for entry in entries}
    return sorted(name if name.startswith("arn:") else
                  f"arn:{PARTITION}:events:{values.region}:{values.account}:event-bus/{name}" for name in names)


def _kms_key(values: _Values) -> str | None:
    return policies.kms_key(values.get("KeyId"), values.account, values.region)


def _bucket(values: _Values) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT][PARTITION].buckets.get(values.get("Bucket") or "")


def _bucket_default_key(bucket: Any) -> tuple[str | None, bool]:
    rules = (getattr(bucket, "encryption", None) or {}).get("Rule")
    rules = rules if isinstance(rules, list) else [rules] if rules else []
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") == "aws:kms":
            return default.get("KMSMasterKeyID") or "alias/aws/s3", str(rule.get("BucketKeyEnabled")).lower() == "true"
    return None, False


def _object_kms_key(values: _Values) -> str | None:
    """The key S3 encrypts (PutObject) or decrypts (GetObject) the object with, if SSE-KMS."""
    bucket = _bucket(values)
    reference: str | None = None
    if values.call is not None and values.call.operation in ("PutObject", "CreateMultipartUpload", "CopyObject"):
        if values.get("header:x-amz-server-side-encryption") == "aws:kms":
            reference = values.get("header:x-amz-server-side-encryption-aws-kms-key-id") or "alias/aws/s3"
        elif values.get("header:x-amz-server-side-encryption") is None:
            reference = _bucket_default_key(bucket)[0]
    elif bucket is not None:
        key = bucket.keys.get(values.get("Key") or "") if hasattr(bucket, "keys") else None
        if key is not None and getattr(key, "encryption", None) == "aws:kms":
            reference = key.kms_key_id or "alias/aws/s3"
        elif key is not None and getattr(key, "encryption", None) is None:
            reference = _bucket_default_key(bucket)[0]
    return policies.kms_key(reference, values.account, values.region)


def object_kms_key(account: str, region: str, bucket_name: str, key: str, writing: bool) -> str | None:
    """The KMS key S3 uses for an object written now with no encryption header (``writing``: the bucket's default)
    or for a stored object (its own key, else the bucket's default); None when not SSE-KMS."""
    from moto.s3.models import s3_backends

    bucket = s3_backends[account][PARTITION].buckets.get(bucket_name)
    reference = None
    stored = None if writing or bucket is None else bucket.keys.get(key)
    if stored is not None and getattr(stored, "encryption", None) == "aws:kms":
        reference = stored.kms_key_id or "alias/aws/s3"
    elif stored is None or getattr(stored, "encryption", None) is None:
        reference = _bucket_default_key(bucket)[0]
    return policies.kms_key(reference, account, region)


def _s3_encryption_context(values: _Values) -> str | None:
    bucket_arn = f"arn:{PARTITION}:s3:::{values.get('Bucket')}"
    if _bucket_default_key(_bucket(values))[1]:
        return bucket_arn
    return f"{bucket_arn}/{values.get('Key')}"


def _topic_kms_key(values: _Values) -> str | None:
    from moto.sns.models import sns_backends

    arn = values.get("TopicArn") or ""
    topic = sns_backends[values.account][values.region].topics.get(arn)
    return policies.kms_key(getattr(topic, "kms_master_key_id", None), values.account, values.region)


def _config_kms_key(values: _Values) -> str | None:
    from moto.sagemaker.models import sagemaker_backends

    config = sagemaker_backends[values.account][values.region].endpoint_configs.get(values.get("EndpointConfigName") or "")
    return policies.kms_key(getattr(config, "kms_key_id", None), values.account, values.region)


def _athena_execution(values: _Values) -> Any:
    from moto.athena.models import athena_backends

    return athena_backends[values.account][values.region].executions.get(values.get("QueryExecutionId") or "")


def _workgroup_of_execution(values: _Values) -> str | None:
    execution = _athena_execution(values)
    if execution is None:
        return None
    name = getattr(execution, "workgroup", None)
    name = getattr(name, "name", name) or "primary"
    return f"arn:{PARTITION}:athena:{values.region}:{values.account}:workgroup/{name}"


def _workgroup(values: _Values) -> Any:
    from moto.athena.models import athena_backends

    name = values.get("WorkGroup")
    execution = _athena_execution(values)
    if not name and execution is not None:
        name = getattr(getattr(execution, "workgroup", None), "name", None)
    return athena_backends[values.account][values.region].work_groups.get(name or "primary")


def _query_tables(values: _Values) -> list[Any]:
    """The Glue tables the query reads: those it names ``"database"."table"`` (as the Athena double finds them), and
    the execution context's database's tables it names bare."""
    from moto.glue.models import glue_backends

    from ..athena import TABLE_REFERENCE

    glue = glue_backends[values.account][values.region]
    query = (values.call.params.get("QueryString") or "") if values.call else ""
    tables = []
    for database_name, table_name in sorted(set(TABLE_REFERENCE.findall(query))):
        table = getattr(glue.databases.get(database_name), "tables", {}).get(table_name)
        if table is not None:
            tables.append(table)
    context = (values.call.params.get("QueryExecutionContext") or {}).get("Database") if values.call else None
    database = glue.databases.get(context or "default")
    for name, table in (database.tables.items() if database is not None else []):
        if table not in tables and re.search(rf'(?<![".])\b{re.escape(name)}\b(?!")', query):
            tables.append(table)
    return tables


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


def _source_locations(values: _Values) -> list[tuple[str, str]]:
    locations = []
    for table in _query_tables(values):
        descriptor = table.as_dict().get("StorageDescriptor", {})
        if descriptor.get("Location"):
            locations.append(_split_s3(descriptor["Location"]))
    return locations


def _query_source_objects(values: _Values) -> list[str]:
    from moto.s3.models import s3_backends

    found = []
    for bucket_name, prefix in _source_locations(values):
        bucket = s3_backends[DEFAULT_ACCOUNT][PARTITION].buckets.get(bucket_name)
        keys = [k for k in (bucket.keys.keys() if bucket is not None else []) if k.startswith(prefix)]
        found += [f"arn:{PARTITION}:s3:::{bucket_name}/{key}" for key in keys[:1] + keys[-1:]]
    return sorted(set(found))


def _query_source_kms_key(values: _Values) -> list[str]:
    from moto.s3.models import s3_backends

    keys = []
    for bucket_name, _prefix in _source_locations(values):
        reference = _bucket_default_key(s3_backends[DEFAULT_ACCOUNT][PARTITION].buckets.get(bucket_name))[0]
        key = policies.kms_key(reference, values.account, values.region)
        if key:
            keys.append(key)
    return sorted(set(keys))


def _results_location(values: _Values) -> str | None:
    configured = ((values.call.params.get("ResultConfiguration") or {}).get("OutputLocation") if values.call else None)
    workgroup = _workgroup(values)
    configuration = getattr(workgroup, "configuration", None) or {}
    return configured or (configuration.get("ResultConfiguration") or {}).get("OutputLocation")


def _results_bucket(values: _Values) -> str | None:
    location = _results_location(values)
    return f"arn:{PARTITION}:s3:::{_split_s3(location)[0]}" if location else None


def _results_objects(values: _Values) -> str | None:
    location = _results_location(values)
    if not location:
        return None
    bucket, prefix = _split_s3(location)
    name = values.get("QueryExecutionId") or "query"
    return f"arn:{PARTITION}:s3:::{bucket}/{prefix.rstrip('/') + '/' if prefix else ''}{name}.csv"


def _results_kms_key(values: _Values) -> str | None:
    workgroup = _workgroup(values)
    configuration = getattr(workgroup, "configuration", None) or {}
    encryption = (configuration.get("ResultConfiguration") or {}).get("EncryptionConfiguration") or {}
    if encryption.get("EncryptionOption") not in ("SSE_KMS", "CSE_KMS"):
        return None
    return policies.kms_key(encryption.get("KmsKey"), values.account, values.region)


def _query_databases(values: _Values) -> list[str]:
    return sorted({f"arn:{PARTITION}:glue:{values.region}:{values.account}:database/{table.database_name}"
                   for table in _query_tables(values)})


def _query_table_arns(values: _Values) -> list[str]:
    return sorted({f"arn:{PARTITION}:glue:{values.region}:{values.account}:table/{table.database_name}/{table.name}"
                   for table in _query_tables(values)})


def _parameters(values: _Values) -> list[str]:
    names = (values.call.params.get("Names") if values.call else None) or []
    return [f"arn:{PARTITION}:ssm:{values.region}:{values.account}:parameter{name}" for name in names]


def _scaled_endpoint(values: _Values) -> str | None:
    """The endpoint of a SageMaker variant's scalable target (ResourceId ``endpoint/NAME/variant/VARIANT``)."""
    resource = values.get("ResourceId") or ""
    if values.get("ServiceNamespace") != "sagemaker" or not resource.startswith("endpoint/"):
        return None
    return f"arn:{PARTITION}:sagemaker:{values.region}:{values.account}:endpoint/{resource.split('/')[1].lower()}"


def _missing_scaling_role(values: _Values) -> str | None:
    """Application Auto Scaling's service-linked role for SageMaker, if the account does not have it yet (the first
    registration creates it, as the caller)."""
    if values.get("ServiceNamespace") != "sagemaker":
        return None
    name = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
    if any(role.name == name for role in policies._iam(values.account).roles.values()):
        return None
    return (f"arn:{PARTITION}:iam::{values.account}:role/aws-service-role/"
            f"sagemaker.application-autoscaling.amazonaws.com/{name}")


COMPUTED: dict[str, Callable[[_Values], Any]] = {
    "scaled_endpoint": _scaled_endpoint, "missing_scaling_role": _missing_scaling_role,
    "stack": _stack, "function": _function, "event_bus": _event_buses, "kms_key": _kms_key,
    "object_kms_key": _object_kms_key, "s3_encryption_context": _s3_encryption_context, "topic_kms_key": _topic_kms_key,
    "config_kms_key": _config_kms_key, "workgroup_of_execution": _workgroup_of_execution,
    "query_databases": _query_databases, "query_tables": _query_table_arns,
    "query_source_bucket": lambda v: sorted({f"arn:{PARTITION}:s3:::{b}" for b, _ in _source_locations(v)}),
    "query_source_objects": _query_source_objects, "query_source_kms_key": _query_source_kms_key,
    "query_results_bucket": _results_bucket, "query_results_objects": _results_objects,
    "query_results_kms_key": _results_kms_key, "parameters": _parameters,
}

__all__ = ["ADMINISTRATOR", "AccessDenied", "Authorizer", "Decision", "take_query_refusal"]
