"""Reading shadow-constructs' resources out of a CloudFormation template and its deployed stack.

The constructs mark their resources with a resource-level ``Metadata`` entry ``"shadow-constructs"``:
``{"role": "promotion-workflow", "endpoint": <construct path>}`` on the workflow's state machine,
``{"role": "endpoint", "phase": ..., "production_variant": ..., "shadow_variant": ...}`` on the
endpoint, ``{"role": "test-end"}`` on the self-ending timer and ``{"role": "dashboard", "endpoint": ...,
"comparing": bool}`` on the dashboard. The helpers here work on any
template (a deployed one from GetTemplate, or a synthesized one from ``cdk.out``); ``DeployedStack``
adds what only the deployed stack knows: physical ids.
"""

from __future__ import annotations

import json
from typing import Any

from .aws import Aws, CliError, error_message, name_from_arn, same_name

MARK = "shadow-constructs"
WORKFLOW_ROLE, ENDPOINT_ROLE, TEST_END_ROLE, DASHBOARD_ROLE = "promotion-workflow", "endpoint", "test-end", "dashboard"
STATE_MACHINE_TYPE = "AWS::StepFunctions::StateMachine"
ENDPOINT_TYPE, CONFIG_TYPE, MODEL_TYPE = "AWS::SageMaker::Endpoint", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Model"
#: Properties of AWS::SageMaker::Model whose change CloudFormation applies without replacing the model.
MODEL_PROPERTIES_UPDATED_IN_PLACE = frozenset({"Tags"})


def resources_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    resources = template.get("Resources") or {}
    return {logical: resource for logical, resource in resources.items() if isinstance(resource, dict)}


def mark_of(resource: dict[str, Any]) -> dict[str, Any] | None:
    metadata = resource.get("Metadata")
    mark = metadata.get(MARK) if isinstance(metadata, dict) else None
    return mark if isinstance(mark, dict) else None


def marked(template: dict[str, Any], role: str, resource_type: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The resources whose mark has this role (and type), in template order."""
    return [(logical, resource) for logical, resource in resources_of(template).items()
            if (mark_of(resource) or {}).get("role") == role
            and (resource_type is None or resource.get("Type") == resource_type)]


def endpoints_in(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The marked endpoints; without marks, the template's only AWS::SageMaker::Endpoint (if just one)."""
    found = marked(template, ENDPOINT_ROLE, ENDPOINT_TYPE)
    if found:
        return found
    unmarked = [(logical, r) for logical, r in resources_of(template).items() if r.get("Type") == ENDPOINT_TYPE]
    return unmarked if len(unmarked) == 1 else []


def reference(value: Any, attribute: str | None = None) -> str | None:
    """The logical id ``value`` points to: ``{"Fn::GetAtt": [id, attribute]}``, ``"id.attribute"`` or ``{"Ref": id}``."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    if "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        if isinstance(target, str):
            target = target.split(".", 1)
        if isinstance(target, list) and len(target) == 2 and isinstance(target[0], str) \
                and (attribute is None or target[1] == attribute):
            return target[0]
        return None
    if "Ref" in value and isinstance(value["Ref"], str):
        return value["Ref"]
    return None


def show(value: Any) -> str:
    """A template value as text: literals as they are, references short, other intrinsics as compact JSON."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value:
            return f"Ref {value['Ref']}"
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return ".".join(map(str, target)) if isinstance(target, list) else str(target)
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= 80 else text[:79] + "…"


def config_of(template: dict[str, Any], endpoint: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The AWS::SageMaker::EndpointConfig of this template the endpoint resource refers to."""
    logical = reference((endpoint.get("Properties") or {}).get("EndpointConfigName"))
    if logical is None:
        return None
    resource = resources_of(template).get(logical)
    return (logical, resource) if resource and resource.get("Type") == CONFIG_TYPE else None


def declared_variants(template: dict[str, Any], endpoint: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """(production variants, shadow variants) of the config the endpoint resource declares."""
    config = config_of(template, endpoint)
    if config is None:
        return [], []
    properties = config[1].get("Properties") or {}
    return list(properties.get("ProductionVariants") or []), list(properties.get("ShadowProductionVariants") or [])


def production_variant(template: dict[str, Any], endpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The variant the mark names as production, else the config's first production variant."""
    production, _ = declared_variants(template, endpoint)
    wanted = (mark_of(endpoint) or {}).get("production_variant")
    for variant in production:
        if isinstance(variant, dict) and wanted and variant.get("VariantName") == wanted:
            return variant
    return production[0] if production and isinstance(production[0], dict) else None


def model_properties(resource: dict[str, Any]) -> dict[str, Any]:
    """A model's properties that, when changed, make CloudFormation create a new model."""
    return {key: value for key, value in (resource.get("Properties") or {}).items()
            if key not in MODEL_PROPERTIES_UPDATED_IN_PLACE}


def parse_template(body: Any, what: str) -> dict[str, Any]:
    if isinstance(body, dict):
        return body
    try:
        template = json.loads(body)
    except (TypeError, ValueError):
        raise CliError(f"the template of {what} is not JSON (YAML templates are not supported)") from None
    if not isinstance(template, dict):
        raise CliError(f"the template of {what} is not a JSON object")
    return template


class StackNotFound(CliError):
    pass


class DeployedStack:
    """A deployed stack: its description, deployed (original) template and resources' physical ids."""

    def __init__(self, aws: Aws, name: str) -> None:
        from botocore.exceptions import ClientError

        self.aws, self.name = aws, name
        try:
            stacks = aws.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            if "does not exist" in error_message(error):
                raise StackNotFound(f"stack {name} not found in {aws.region}") from None
            raise
        if not stacks:
            raise StackNotFound(f"stack {name} not found in {aws.region}")
        self.description = stacks[0]
        self.status = self.description.get("StackStatus", "")
        self._template: dict[str, Any] | None = None
        self._resources: dict[str, dict[str, Any]] | None = None

    @property
    def template(self) -> dict[str, Any]:
        if self._template is None:
            body = self.aws.client("cloudformation").get_template(StackName=self.name, TemplateStage="Original")
            self._template = parse_template(body.get("TemplateBody"), f"stack {self.name}")
        return self._template

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """Logical id → ListStackResources summary (type, physical id, status)."""
        if self._resources is None:
            paginator = self.aws.client("cloudformation").get_paginator("list_stack_resources")
            self._resources = {summary["LogicalResourceId"]: summary
                               for page in paginator.paginate(StackName=self.name)
                               for summary in page.get("StackResourceSummaries", [])}
        return self._resources

    def physical_id(self, logical: str) -> str | None:
        return (self.resources.get(logical) or {}).get("PhysicalResourceId") or None

    def workflows(self) -> list[tuple[str, str]]:
        """(logical id, state machine ARN) of every promotion workflow deployed in the stack."""
        found = []
        for logical, _ in marked(self.template, WORKFLOW_ROLE, STATE_MACHINE_TYPE):
            arn = self.physical_id(logical)
            if arn:
                found.append((logical, arn))
        return found

    def workflow(self) -> tuple[str, str]:
        """The stack's one promotion workflow (CliError, exit 2, for none or several)."""
        workflows = self.workflows()
        if not workflows:
            raise CliError(f"stack {self.name} has no promotion workflow (no {STATE_MACHINE_TYPE} marked by "
                           f"shadow-constructs); pass --state-machine ARN to run another state machine")
        if len(workflows) > 1:
            names = ", ".join(f"{logical} ({arn})" for logical, arn in workflows)
            raise CliError(f"stack {self.name} has {len(workflows)} promotion workflows: {names}; "
                           f"choose one with --state-machine ARN")
        return workflows[0]

    def endpoint_name(self, logical: str, resource: dict[str, Any]) -> str | None:
        """The endpoint's exact name: the template's literal EndpointName, else recovered from its physical ARN."""
        literal = (resource.get("Properties") or {}).get("EndpointName")
        if isinstance(literal, str):
            return literal
        physical = self.physical_id(logical)
        return recover_endpoint_name(self.aws, name_from_arn(physical, "endpoint")) if physical else None

    def model_name(self, value: Any) -> str | None:
        """A ModelName in the DEPLOYED template as the model's physical name (ARN names are lower-case)."""
        if isinstance(value, str):
            return value
        logical = reference(value, "ModelName")
        physical = self.physical_id(logical) if logical else None
        return name_from_arn(physical, "model") if physical else None


def recover_endpoint_name(aws: Aws, lowered: str) -> str:
    """The exact-case name of an endpoint known from its ARN (lower-case): ListEndpoints, compared case-insensitively."""
    sagemaker = aws.client("sagemaker")
    paginator = sagemaker.get_paginator("list_endpoints")
    for filters in ({"NameContains": lowered}, {}):
        for page in paginator.paginate(**filters):
            for endpoint in page.get("Endpoints", []):
                if same_name(endpoint.get("EndpointName"), lowered):
                    return endpoint["EndpointName"]
    return lowered
