"""A test double that fills exactly moto's SageMaker gaps for shadow tests. Never used on AWS.

moto 5.2 accepts ShadowProductionVariants but drops them, and has no UpdateEndpoint and no
InferenceExperiment calls. ``SageMakerDouble`` patches moto's SageMaker responses, while
installed, to:

* keep a config's ShadowProductionVariants and return them from DescribeEndpointConfig and
  (as ShadowProductionVariants with current counts) from DescribeEndpoint;
* UpdateEndpoint: the endpoint goes Updating, then — after ``update_polls`` DescribeEndpoint
  calls — InService with the new config, or (fault injected) back to InService on the OLD
  config with a FailureReason (rollback), or Failed. Like SageMaker it refuses to update an
  endpoint that is not InService, to a config that does not exist, or in a way that removes or
  retypes a variant registered with Application Auto Scaling;
* CreateInferenceExperiment / DescribeInferenceExperiment / StopInferenceExperiment /
  ListInferenceExperiments, with the shadow added to the endpoint while the experiment runs
  and Promote / Remove / Retain applied when it stops; with the emulator's authorization,
  SageMaker deploys the shadow as the experiment's RoleArn (its trust policy, the shadow
  model's image and archive, the KmsKey grant): a refusal cancels the experiment;
* inject throttling: the next N calls of an operation fail with ThrottlingException;
* name SageMaker errors in Step Functions aws-sdk tasks as AWS does (``SageMaker.<Name>``;
  moto's interpreter has no binding for SageMaker and would say ``sagemaker.sagemakerException``);
* in moto's CloudFormation: keep an EndpointConfig's ShadowProductionVariants, give an
  Endpoint the EndpointName its template asks for (moto generates one), and make
  ``AWS::SageMaker::InferenceExperiment`` (moto skipped it) as CreateInferenceExperiment does,
  stopped by a DesiredState of Completed or Cancelled and by the stack's deletion.

Every request these patches handle is validated against botocore's model of the SageMaker API
first, so a malformed request fails here as it would on AWS.

Limits: no real instances, no blue/green traffic shifting or alarm evaluation (an update is a
number of polls), schedules are recorded but not enforced (an experiment runs from its creation),
which calls SageMaker makes as an experiment's role to manage the endpoint is not modeled (only
what it reads to deploy the shadow), a stack rolled back after its experiment was made leaves the
experiment running (the CloudFormation double deletes moto's own model classes only), and only
what the workflow and its tests call is covered.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import re
from collections import defaultdict
from typing import Any

import botocore.session
from botocore.validate import ParamValidator
from moto.core.responses import ActionResult
from moto.sagemaker import models as sm_models
from moto.sagemaker.exceptions import SagemakerClientError, ValidationError
from moto.sagemaker.responses import SageMakerResponse

_MODEL = botocore.session.get_session().get_service_model("sagemaker")
PATCHED = ("create_endpoint_config", "describe_endpoint_config", "describe_endpoint", "update_endpoint",
           "create_inference_experiment", "describe_inference_experiment", "stop_inference_experiment",
           "list_inference_experiments")
#: The service principal SageMaker assumes a passed role as.
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"


class ThrottlingError(SagemakerClientError):
    code = "ThrottlingException"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _parse_timestamps(value: Any, shape) -> Any:
    """JSON carries timestamps as epoch numbers; botocore's validator wants datetimes."""
    if shape.type_name == "timestamp" and isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: _parse_timestamps(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_parse_timestamps(v, shape.member) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: _parse_timestamps(v, shape.value) for k, v in value.items()}
    return value


@functools.cache
def _pattern(expression: str) -> re.Pattern | None:
    try:
        return re.compile(expression)
    except re.error:  # a Java-only construct (e.g. \\p{...}): not checked here
        return None


def _above_maximum(value: Any, shape, path: str) -> list[str]:
    """Maximums and patterns of the model (botocore's client checks only minimums; the service checks all)."""
    limit = shape.metadata.get("max")
    problems = []
    pattern = shape.metadata.get("pattern") if shape.type_name == "string" and isinstance(value, str) else None
    if pattern and _pattern(pattern) is not None and not _pattern(pattern).fullmatch(value):
        problems.append(f"{path} must match {pattern}, got {value!r}")
    if limit is not None:
        if shape.type_name in ("integer", "long", "float", "double") and isinstance(value, (int, float)) and value > limit:
            problems.append(f"{path} must be at most {limit}, got {value}")
        elif shape.type_name in ("string", "list") and isinstance(value, (str, list)) and len(value) > limit:
            problems.append(f"{path} must hold at most {limit} items/characters, got {len(value)}")
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, member in value.items():
            if key in shape.members:
                problems += _above_maximum(member, shape.members[key], f"{path}.{key}")
    elif shape.type_name == "list" and isinstance(value, list):
        for i, member in enumerate(value):
            problems += _above_maximum(member, shape.member, f"{path}[{i}]")
    return problems


def validate_request(operation: str, params: dict[str, Any]) -> None:
    """Raise ValidationException unless ``params`` fit botocore's model of ``operation``."""
    shape = _MODEL.operation_model(operation).input_shape
    report = ParamValidator().validate(_parse_timestamps(params, shape), shape)
    if report.has_errors():
        raise ValidationError(message=f"{operation}: {report.generate_report()}")
    too_large = _above_maximum(params, shape, operation)
    if too_large:
        raise ValidationError(message="; ".join(too_large))


class SageMakerDouble:
    """Install with ``with SageMakerDouble():`` (inside moto's ``mock_aws``) or ``install()`` /
    ``uninstall()``. One double serves every account and region of the process.

    :param update_polls: DescribeEndpoint calls an update stays in Updating. Default: 2.
    """

    def __init__(self, update_polls: int = 2, authorizer: Any = None) -> None:
        self.update_polls = update_polls
        #: With the emulator's authorization: SageMaker reads an update's rollback alarms as the serving models' roles.
        self.authorizer = authorizer
        self.shadow_variants: dict[tuple[str, str, str], list[dict]] = {}  # (account, region, config) -> variants
        self.updates: dict[tuple[str, str, str], dict[str, Any]] = {}     # (account, region, endpoint) -> pending
        self.faults: dict[str, str] = {}                                   # endpoint -> "rollback" | "fail"
        self.throttles: dict[str, int] = defaultdict(int)                  # operation -> calls left to throttle
        self.experiments: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, dict]] = []                            # every request handled, in order
        self._saved: dict[str, Any] = {}
        self._saved_error_name: str | None = None

    # Fault injection

    def fail_next_update(self, endpoint_name: str, mode: str = "rollback") -> None:
        """Make the next UpdateEndpoint of ``endpoint_name`` fail: ``rollback`` (old config keeps
        serving, status InService with a FailureReason) or ``fail`` (status Failed)."""
        if mode not in ("rollback", "fail"):
            raise ValueError(f"mode must be 'rollback' or 'fail', got {mode!r}")
        self.faults[endpoint_name] = mode

    def throttle(self, operation: str, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``operation`` (e.g. ``UpdateEndpoint``) with ThrottlingException."""
        self.throttles[operation] += times

    # Installation

    def install(self) -> SageMakerDouble:
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_aws_sdk as sdk_tasks,
        )

        self._saved_error_name = sdk_tasks._SERVICE_ERROR_NAMES.get("sagemaker")
        sdk_tasks._SERVICE_ERROR_NAMES["sagemaker"] = "SageMaker"
        double = self
        self._install_cloudformation()
        for name in PATCHED:
            self._saved[name] = SageMakerResponse.__dict__.get(name)

        def handler(name: str, operation: str, implementation):
            def method(response: SageMakerResponse):
                params = response._get_params()
                double.calls.append((operation, params))
                if double.throttles[operation] > 0:
                    double.throttles[operation] -= 1
                    raise ThrottlingError(f"Rate exceeded for {operation}")
                validate_request(operation, params)
                return implementation(response, params)
            method.__name__ = name
            return method

        implementations = {
            "create_endpoint_config": ("CreateEndpointConfig", self._create_endpoint_config),
            "describe_endpoint_config": ("DescribeEndpointConfig", self._describe_endpoint_config),
            "describe_endpoint": ("DescribeEndpoint", self._describe_endpoint),
            "update_endpoint": ("UpdateEndpoint", self._update_endpoint),
            "create_inference_experiment": ("CreateInferenceExperiment", self._create_experiment),
            "describe_inference_experiment": ("DescribeInferenceExperiment", self._describe_experiment),
            "stop_inference_experiment": ("StopInferenceExperiment", self._stop_experiment),
            "list_inference_experiments": ("ListInferenceExperiments", self._list_experiments),
        }
        for name, (operation, implementation) in implementations.items():
            setattr(SageMakerResponse, name, handler(name, operation, implementation))
        return self

    def _install_cloudformation(self) -> None:
        double = self
        config_create = sm_models.FakeEndpointConfig.__dict__["create_from_cloudformation_json"]
        endpoint_create = sm_models.FakeEndpoint.__dict__["create_from_cloudformation_json"]
        self._saved_cfn = {"config": config_create, "endpoint": endpoint_create}

        def create_config(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            config = config_create.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
            shadows = cloudformation_json["Properties"].get("ShadowProductionVariants") or []
            sagemaker_backends_of = sm_models.sagemaker_backends[account_id][region_name]
            sagemaker_backends_of.validate_production_variants(shadows)
            double.shadow_variants[(account_id, region_name, config.endpoint_config_name)] = copy.deepcopy(shadows)
            return config

        def create_endpoint(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            name = cloudformation_json["Properties"].get("EndpointName") or resource_name
            return endpoint_create.__func__(cls, name, cloudformation_json, account_id, region_name, **kwargs)

        sm_models.FakeEndpointConfig.create_from_cloudformation_json = classmethod(create_config)
        sm_models.FakeEndpoint.create_from_cloudformation_json = classmethod(create_endpoint)
        from moto.cloudformation import parsing

        from .autoscaling import MODELS

        models = {**MODELS, EXPERIMENT_TYPE: _experiment_model(self)}
        original_map = self._saved_cfn["model_map"] = parsing.get_model_map
        parsing.get_model_map = lambda: {**original_map(), **models}

    def uninstall(self) -> None:
        if getattr(self, "_saved_cfn", None):
            sm_models.FakeEndpointConfig.create_from_cloudformation_json = self._saved_cfn["config"]
            sm_models.FakeEndpoint.create_from_cloudformation_json = self._saved_cfn["endpoint"]
            from moto.cloudformation import parsing

            parsing.get_model_map = self._saved_cfn["model_map"]
            self._saved_cfn = None
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_aws_sdk as sdk_tasks,
        )

        if self._saved_error_name is None:
            sdk_tasks._SERVICE_ERROR_NAMES.pop("sagemaker", None)
        else:
            sdk_tasks._SERVICE_ERROR_NAMES["sagemaker"] = self._saved_error_name
        for name, original in self._saved.items():
            if original is None:
                delattr(SageMakerResponse, name)
            else:
                setattr(SageMakerResponse, name, original)
        self._saved.clear()

    def __enter__(self) -> SageMakerDouble:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # Endpoint configs and endpoints

    @staticmethod
    def _key(response: SageMakerResponse, name: str) -> tuple[str, str, str]:
        backend = response.sagemaker_backend
        return backend.account_id, backend.region_name, name

    def _create_endpoint_config(self, response: SageMakerResponse, params: dict) -> ActionResult:
        shadows = params.get("ShadowProductionVariants") or []
        if len(shadows) > 1:
            raise ValidationError(message="ShadowProductionVariants takes at most one variant")
        if shadows and len(params["ProductionVariants"]) != 1:
            raise ValidationError(message="With a shadow variant, ProductionVariants must hold exactly one variant")
        backend = response.sagemaker_backend
        backend.validate_production_variants(shadows)
        config = backend.create_endpoint_config(
            endpoint_config_name=params["EndpointConfigName"], production_variants=params["ProductionVariants"],
            data_capture_config=params.get("DataCaptureConfig"), async_inference_config=params.get("AsyncInferenceConfig"),
            tags=params.get("Tags"), kms_key_id=params.get("KmsKeyId"))
        self.shadow_variants[self._key(response, params["EndpointConfigName"])] = copy.deepcopy(shadows)
        return ActionResult({"EndpointConfigArn": config.endpoint_config_arn})

    def _describe_endpoint_config(self, response: SageMakerResponse, params: dict) -> ActionResult:
        described = response.sagemaker_backend.describe_endpoint_config(params["EndpointConfigName"])
        shadows = self.shadow_variants.get(self._key(response, params["EndpointConfigName"]))
        if shadows:
            described = {**described, "ShadowProductionVariants": copy.deepcopy(shadows)}
        return ActionResult(described)

    def _describe_endpoint(self, response: SageMakerResponse, params: dict) -> ActionResult:
        name = params["EndpointName"]
        backend = response.sagemaker_backend
        endpoint = backend.endpoints.get(name)
        pending = self.updates.get(self._key(response, name))
        if endpoint is not None and pending is not None:
            pending["polls"] -= 1
            if pending["polls"] <= 0:
                self._finish_update(response, endpoint, pending)
                del self.updates[self._key(response, name)]
        described = backend.describe_endpoint(name)
        config_key = self._key(response, described["EndpointConfigName"])
        shadows = self.shadow_variants.get(config_key) or []
        extra = [v for e in self.experiments.values() if e["EndpointName"] == name and e["Status"] == "Running"
                 for v in e["ShadowVariants"]]
        if shadows or extra:
            described = {**described, "ShadowProductionVariants": [
                {"VariantName": v["VariantName"], "CurrentInstanceCount": v.get("InitialInstanceCount", 1),
                 "DesiredInstanceCount": v.get("InitialInstanceCount", 1),
                 "CurrentWeight": v.get("InitialVariantWeight", 1.0), "DesiredWeight": v.get("InitialVariantWeight", 1.0)}
                for v in [*shadows, *extra]]}
        return ActionResult(described)

    def _update_endpoint(self, response: SageMakerResponse, params: dict) -> ActionResult:
        name, config_name = params["EndpointName"], params["EndpointConfigName"]
        backend = response.sagemaker_backend
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise ValidationError(message=f"Could not find endpoint '{name}'.")
        if config_name not in backend.endpoint_configs:
            raise ValidationError(message=f"Could not find endpoint configuration '{config_name}'.")
        if endpoint.endpoint_status != "InService":
            raise ValidationError(message=f"Cannot update in-progress endpoint '{name}' "
                                          f"(status {endpoint.endpoint_status}).")
        self._check_autoscaling(response, endpoint, config_name)
        endpoint.endpoint_status = "Updating"
        endpoint.last_modified_time = _now()
        fault, reason = self.faults.pop(name, None), None
        refused = self._watch_alarms(response, config_name, params.get("DeploymentConfig") or {})
        if refused:
            fault, reason = "fail", refused
        self.updates[self._key(response, name)] = {
            "config": config_name, "polls": self.update_polls, "fault": fault, "reason": reason,
            "deployment": params.get("DeploymentConfig")}
        return ActionResult({"EndpointArn": endpoint.arn})

    def _watch_alarms(self, response: SageMakerResponse, config_name: str, deployment: dict) -> str | None:
        """SageMaker watches an update's auto-rollback alarms with the execution role (cloudwatch:DescribeAlarms,
        ``rules.SERVICE_ACTS`` "rollback-alarms"), here each model role of the new config; the refusal's message,
        which fails the update, or None."""
        alarms = [a["AlarmName"] for a in (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
        if self.authorizer is None or not alarms:
            return None
        from .authorization import AccessDenied

        backend = response.sagemaker_backend
        region, account = backend.region_name, backend.account_id
        roles = {backend._models[v["ModelName"]].execution_role_arn for v in self._variants(response, config_name).values()
                 if v.get("ModelName") in backend._models}
        arns = [f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm}" for alarm in alarms]
        for role in sorted(roles):
            try:
                self.authorizer.act("rollback-alarms", role, {"rollback_alarms": arns}, region)
            except AccessDenied as denied:
                return f"Update failed: SageMaker could not read the auto-rollback alarms: {denied}"
        return None

    def _check_autoscaling(self, response: SageMakerResponse, endpoint, config_name: str) -> None:
        from moto.applicationautoscaling.models import applicationautoscaling_backends

        backend = response.sagemaker_backend
        scaling = applicationautoscaling_backends[backend.account_id][backend.region_name]
        registered = {target.resource_id.split("/variant/")[-1] for target in scaling.targets.get(
            "sagemaker:variant:DesiredInstanceCount", {}).values()
            if target.resource_id.startswith(f"endpoint/{endpoint.endpoint_name}/variant/")}
        old = self._variants(response, endpoint.endpoint_config_name)
        new = self._variants(response, config_name)
        for variant in sorted(registered):
            if variant not in new or old.get(variant, {}).get("InstanceType") != new[variant].get("InstanceType"):
                raise ValidationError(message=f"The variant '{variant}' is registered with Application Auto Scaling; "
                                              "deregister it before removing it or changing its instance type.")

    def _variants(self, response: SageMakerResponse, config_name: str) -> dict[str, dict]:
        config = response.sagemaker_backend.endpoint_configs.get(config_name)
        variants = list(config.production_variants) if config else []
        variants += self.shadow_variants.get(self._key(response, config_name), [])
        return {v["VariantName"]: v for v in variants}

    def _finish_update(self, response: SageMakerResponse, endpoint, pending: dict) -> None:
        endpoint.last_modified_time = _now()
        if pending["fault"] == "rollback":
            endpoint.endpoint_status = "InService"
            endpoint.failure_reason = "Update rolled back: the new fleet failed its health checks."
            return
        if pending["fault"] == "fail":
            endpoint.endpoint_status = "Failed"
            endpoint.failure_reason = pending.get("reason") or "Update failed: the new fleet could not be provisioned."
            return
        config = response.sagemaker_backend.endpoint_configs[pending["config"]]
        endpoint.endpoint_config_name = pending["config"]
        endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
        endpoint.data_capture_config = config.data_capture_config
        endpoint.endpoint_status = "InService"
        endpoint.failure_reason = None

    # Inference experiments

    def _create_experiment(self, response: SageMakerResponse, params: dict) -> ActionResult:
        experiment = self.create_experiment(response.sagemaker_backend, params)
        return ActionResult({"InferenceExperimentArn": experiment["Arn"]})

    def create_experiment(self, backend: Any, params: dict) -> dict[str, Any]:
        """CreateInferenceExperiment, as the API and CloudFormation's ``AWS::SageMaker::InferenceExperiment`` both
        make it: the request checked as SageMaker checks it (ValidationError), the experiment recorded and its shadow
        deployed (``_deploy_experiment``). The experiment, Running (schedules are recorded, not enforced) or, when
        SageMaker could not deploy the shadow, Cancelled."""
        name, endpoint_name = params["Name"], params["EndpointName"]
        if endpoint_name not in backend.endpoints:
            raise ValidationError(message=f"Could not find endpoint '{endpoint_name}'.")
        key = (backend.account_id, backend.region_name, name)
        if key in self.experiments:
            raise ValidationError(message=f"Inference experiment '{name}' already exists.")
        variants = {v["VariantName"]: v for v in params["ModelVariants"]}
        shadow_config = params["ShadowModeConfig"]
        source = shadow_config["SourceModelVariantName"]
        shadows = shadow_config["ShadowModelVariants"]
        if source not in variants or any(s["ShadowModelVariantName"] not in variants for s in shadows):
            raise ValidationError(message="ShadowModeConfig must name variants listed in ModelVariants.")
        for variant in variants.values():
            if variant["ModelName"] not in backend._models:
                raise ValidationError(message=f"Could not find model '{variant['ModelName']}'.")
        # SageMaker's ARNs name the resource in lower case (moto's keep its case: a policy on Fn::GetAtt Arn would not
        # match what SageMaker authorizes, rules.EXPERIMENT).
        arn = sm_models.arn_formatter("inference-experiment", name.lower(), backend.account_id, backend.region_name)
        now = _now()
        experiment = self.experiments[key] = {
            **copy.deepcopy(params), "Arn": arn, "Status": "Running", "CreationTime": now, "LastModifiedTime": now,
            "ShadowVariants": _shadow_variants(params), "VariantStatus": {v: "Deployed" for v in variants}}
        self._deploy_experiment(backend, experiment)
        return experiment

    def _deploy_experiment(self, backend: Any, e: dict[str, Any]) -> None:
        """SageMaker deploys the experiment's shadow AS ITS RoleArn, "the IAM role that Amazon SageMaker can assume to
        access model artifacts and container images, and manage Amazon SageMaker Inference endpoints for model
        deployment" (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateInferenceExperiment.html):
        the role must trust sagemaker.amazonaws.com; as it, SageMaker pulls each shadow model's image and reads its
        archive (``rules.SERVICE_ACTS`` "model-image", "model-archive") and, when KmsKey is given, makes the grant
        that encrypts the shadow instances' storage volume ("experiment-storage-key"). A refusal cancels the
        experiment ("if any operation fails with an unexpected error, it shows as cancelled": DescribeInferenceExperiment's
        Status), the reason in StatusReason: the shadow never serves. Nothing is checked without the authorization."""
        if self.authorizer is None:
            return
        from .authorization import AccessDenied
        from .authorization.policies import kms_key
        from .runtime import model_act_values

        region, account, role = backend.region_name, backend.account_id, e["RoleArn"]
        shadows = [s["ShadowModelVariantName"] for s in e["ShadowModeConfig"]["ShadowModelVariants"]]
        try:
            self.authorizer.sessions.credentials(role, SAGEMAKER_SERVICE)  # the trust policy: sts:AssumeRole
            for variant in e["ModelVariants"]:
                values = model_act_values(backend._models[variant["ModelName"]], account) \
                    if variant["VariantName"] in shadows else None
                if values is not None:
                    self.authorizer.act("model-image", role, values, region)
                    self.authorizer.act("model-archive", role, values, region)
            if e.get("KmsKey"):
                self.authorizer.act("experiment-storage-key", role,
                                    {"experiment_kms_key": kms_key(e["KmsKey"], account, region)}, region)
        except AccessDenied as denied:
            e.update(Status="Cancelled", CompletionTime=_now(), LastModifiedTime=_now(),
                     StatusReason=f"SageMaker could not deploy the shadow variant with the role {role}: {denied}",
                     VariantStatus={**e["VariantStatus"], **{shadow: "NotDeployed" for shadow in shadows}})

    def _experiment(self, response: SageMakerResponse, name: str) -> dict[str, Any]:
        experiment = self.experiments.get(self._key(response, name))
        if experiment is None:
            raise ValidationError(message=f"Could not find inference experiment '{name}'.")
        return experiment

    def _describe_experiment(self, response: SageMakerResponse, params: dict) -> ActionResult:
        e = self._experiment(response, params["Name"])
        endpoint = response.sagemaker_backend.endpoints.get(e["EndpointName"])
        described = {
            "Arn": e["Arn"], "Name": e["Name"], "Type": e["Type"], "Status": e["Status"], "RoleArn": e["RoleArn"],
            "CreationTime": e["CreationTime"], "LastModifiedTime": e["LastModifiedTime"],
            "EndpointMetadata": {"EndpointName": e["EndpointName"],
                                 "EndpointConfigName": endpoint.endpoint_config_name if endpoint else "",
                                 "EndpointStatus": endpoint.endpoint_status if endpoint else "Deleting"},
            "ModelVariants": [{**v, "Status": e["VariantStatus"][v["VariantName"]]} for v in e["ModelVariants"]],
            "ShadowModeConfig": e["ShadowModeConfig"]}
        for optional in ("Schedule", "Description", "DataStorageConfig", "KmsKey", "StatusReason", "CompletionTime"):
            if optional in e:
                described[optional] = e[optional]
        return ActionResult(described)

    def _stop_experiment(self, response: SageMakerResponse, params: dict) -> ActionResult:
        e = self._experiment(response, params["Name"])
        self.stop_experiment(response.sagemaker_backend, e, params["ModelVariantActions"],
                             params.get("DesiredState", "Completed"), params.get("Reason"))
        return ActionResult({"InferenceExperimentArn": e["Arn"]})

    def stop_experiment(self, backend: Any, e: dict[str, Any], actions: dict[str, str], state: str = "Completed",
                        reason: str | None = None) -> None:
        """StopInferenceExperiment (the API's, and CloudFormation's when it stops one): retain production and remove
        the shadow, or promote the shadow into production. ValidationError for anything else."""
        if e["Status"] != "Running":
            raise ValidationError(message=f"Inference experiment '{e['Name']}' is {e['Status']}, not Running.")
        source = e["ShadowModeConfig"]["SourceModelVariantName"]
        shadow = e["ShadowModeConfig"]["ShadowModelVariants"][0]["ShadowModelVariantName"]
        if set(actions) != {source, shadow}:
            raise ValidationError(message=f"ModelVariantActions must give an action for {source!r} and {shadow!r}.")
        allowed = ({source: "Retain", shadow: "Remove"}, {source: "Remove", shadow: "Promote"})
        if actions not in allowed:
            raise ValidationError(message=f"ModelVariantActions {actions} is not a valid outcome: retain production "
                                          "and remove the shadow, or promote the shadow and remove production.")
        if actions[shadow] == "Promote":
            self._promote_experiment_shadow(backend, e, source, shadow)
        e.update(Status=state, CompletionTime=_now(), LastModifiedTime=_now(),
                 VariantStatus={source: "Deployed" if actions[source] == "Retain" else "NotDeployed",
                                shadow: "Deployed" if actions[shadow] == "Promote" else "NotDeployed"})
        if reason is not None:
            e["StatusReason"] = reason

    @staticmethod
    def _promote_experiment_shadow(backend: Any, e: dict, source: str, shadow: str) -> None:
        """The shadow's model and instances take over the production variant (its name is kept)."""
        endpoint = backend.endpoints[e["EndpointName"]]
        config = backend.endpoint_configs[endpoint.endpoint_config_name]
        spec = next(v for v in e["ModelVariants"] if v["VariantName"] == shadow)
        infra = spec["InfrastructureConfig"]["RealTimeInferenceConfig"]
        promoted = [{**v, "ModelName": spec["ModelName"], "InstanceType": infra["InstanceType"],
                     "InitialInstanceCount": infra["InstanceCount"]} if v["VariantName"] == source else v
                    for v in config.production_variants]
        name = f"{e['Name'][:40]}-promoted"
        backend.create_endpoint_config(endpoint_config_name=name, production_variants=promoted,
                                       data_capture_config=config.data_capture_config,
                                       async_inference_config=config.async_inference_config, tags=[],
                                       kms_key_id=config.kms_key_id)
        endpoint.endpoint_config_name = name
        endpoint.production_variants = endpoint._process_production_variants(promoted)

    def _list_experiments(self, response: SageMakerResponse, params: dict) -> ActionResult:
        backend = response.sagemaker_backend
        summaries = [{"Name": e["Name"], "Type": e["Type"], "Status": e["Status"], "CreationTime": e["CreationTime"],
                      "LastModifiedTime": e["LastModifiedTime"], "RoleArn": e["RoleArn"]}
                     for (account, region, _), e in sorted(self.experiments.items())
                     if (account, region) == (backend.account_id, backend.region_name)
                     and params.get("StatusEquals") in (None, e["Status"])]
        return ActionResult({"InferenceExperiments": summaries})


def _shadow_variants(experiment: dict[str, Any]) -> list[dict[str, Any]]:
    """The experiment's shadows as the endpoint shows them (instances, and the sampling share as the weight)."""
    variants = {v["VariantName"]: v for v in experiment["ModelVariants"]}
    return [{"VariantName": s["ShadowModelVariantName"],
             "InitialInstanceCount": variants[s["ShadowModelVariantName"]]["InfrastructureConfig"][
                 "RealTimeInferenceConfig"]["InstanceCount"],
             "InitialVariantWeight": s["SamplingPercentage"] / 100}
            for s in experiment["ShadowModeConfig"]["ShadowModelVariants"]]


EXPERIMENT_TYPE = "AWS::SageMaker::InferenceExperiment"
#: Its properties that CreateInferenceExperiment does not take: the handler acts on them itself.
_CFN_ONLY = ("DesiredState", "StatusReason")


def _experiment_model(double: SageMakerDouble) -> type:
    """``AWS::SageMaker::InferenceExperiment`` for moto's CloudFormation, which does not know the type (it warned and
    skipped it: a stack's managed shadow test never existed, and its ``Fn::GetAtt Arn`` resolved to nothing). As
    CloudFormation's handler (aws-cloudformation-resource-providers-sagemaker, aws-sagemaker-inferenceexperiment):

    * create: CreateInferenceExperiment with the template's properties (``SageMakerDouble.create_experiment``: the
      same checks, and the shadow deployed as RoleArn); an experiment that is not Created or Running after it
      (Cancelled: SageMaker could not deploy the shadow) fails the resource: CREATE_FAILED with the reason, rollback;
    * ``Ref`` is the experiment's name; ``Fn::GetAtt`` gives Arn, CreationTime, LastModifiedTime, Status and
      EndpointMetadata(.EndpointName, .EndpointConfigName, .EndpointStatus);
    * update: a Running experiment whose DesiredState becomes Completed or Cancelled is stopped; production is kept
      when ModelVariants still lists it, else the shadow is promoted (``ExperimentOutcome``); other changes are
      recorded (UpdateInferenceExperiment);
    * delete: a Running experiment is stopped (the emulator keeps production and removes the shadow: its
      StopInferenceExperiment takes no other outcome; CloudFormation's handler asks to Retain every variant), then the
      experiment is deleted.
    """

    class InferenceExperiment:
        def __init__(self, key: tuple[str, str, str]) -> None:
            self.key = key

        @property
        def experiment(self) -> dict[str, Any]:
            return double.experiments[self.key]

        @property
        def physical_resource_id(self) -> str:
            return self.key[2]

        @staticmethod
        def cloudformation_type() -> str:
            return EXPERIMENT_TYPE

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("Arn", "CreationTime", "LastModifiedTime", "Status", "EndpointMetadata",
                            "EndpointMetadata.EndpointName", "EndpointMetadata.EndpointConfigName",
                            "EndpointMetadata.EndpointStatus")

        def get_cfn_attribute(self, attribute_name: str) -> Any:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            e = self.experiment
            account, region, _ = self.key
            endpoint = sm_models.sagemaker_backends[account][region].endpoints.get(e["EndpointName"])
            metadata = {"EndpointName": e["EndpointName"],
                        "EndpointConfigName": endpoint.endpoint_config_name if endpoint else "",
                        "EndpointStatus": endpoint.endpoint_status if endpoint else "Deleting"}
            values = {"Arn": e["Arn"], "Status": e["Status"], "EndpointMetadata": metadata,
                      "CreationTime": e["CreationTime"].isoformat(), "LastModifiedTime": e["LastModifiedTime"].isoformat(),
                      **{f"EndpointMetadata.{k}": v for k, v in metadata.items()}}
            if attribute_name not in values:
                raise UnformattedGetAttTemplateException()
            return values[attribute_name]

        def is_created(self) -> bool:
            return True

        @classmethod
        def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict, account_id: str,
                                            region_name: str, **kwargs: Any) -> InferenceExperiment:
            properties = cloudformation_json.get("Properties") or {}
            params = {k: v for k, v in properties.items() if k not in _CFN_ONLY}
            params.setdefault("Name", resource_name)
            backend = sm_models.sagemaker_backends[account_id][region_name]
            try:
                validate_request("CreateInferenceExperiment", params)
                experiment = double.create_experiment(backend, params)
            except SagemakerClientError as error:
                raise _resource_failed(f"Failure reason: {error.message}") from None
            if experiment["Status"] not in ("Created", "Running"):
                double.experiments.pop((account_id, region_name, params["Name"]), None)
                raise _resource_failed(f"Stabilizing of {params['Name']}: the experiment is {experiment['Status']}: "
                                       f"{experiment.get('StatusReason', '')}")
            return cls((account_id, region_name, params["Name"]))

        @classmethod
        def update_from_cloudformation_json(cls, original_resource: InferenceExperiment, new_resource_name: str,
                                            cloudformation_json: dict, account_id: str,
                                            region_name: str) -> InferenceExperiment:
            properties = cloudformation_json.get("Properties") or {}
            e = original_resource.experiment
            backend = sm_models.sagemaker_backends[account_id][region_name]
            desired = properties.get("DesiredState")
            if e["Status"] == "Running" and desired in ("Completed", "Cancelled"):
                source = e["ShadowModeConfig"]["SourceModelVariantName"]
                shadow = e["ShadowModeConfig"]["ShadowModelVariants"][0]["ShadowModelVariantName"]
                listed = {v["VariantName"] for v in properties.get("ModelVariants") or []}
                actions = {source: "Retain", shadow: "Remove"} if source in listed else \
                    {source: "Remove", shadow: "Promote"}
                try:
                    double.stop_experiment(backend, e, actions, desired, properties.get("StatusReason"))
                except SagemakerClientError as error:
                    raise _resource_failed(f"Failure reason: {error.message}") from None
            elif e["Status"] == "Running":  # UpdateInferenceExperiment: what a running experiment may change
                for field in ("Description", "Schedule", "ShadowModeConfig"):
                    if field in properties:
                        e[field] = copy.deepcopy(properties[field])
                e.update(ShadowVariants=_shadow_variants(e), LastModifiedTime=_now())
            return original_resource

        def delete(self, account_id: str, region_name: str) -> None:
            e = double.experiments.get(self.key)
            if e is None:
                return
            if e["Status"] == "Running":
                source = e["ShadowModeConfig"]["SourceModelVariantName"]
                shadow = e["ShadowModeConfig"]["ShadowModelVariants"][0]["ShadowModelVariantName"]
                double.stop_experiment(sm_models.sagemaker_backends[account_id][region_name], e,
                                       {source: "Retain", shadow: "Remove"}, "Completed")
            double.experiments.pop(self.key, None)

    return InferenceExperiment


def _resource_failed(message: str) -> Exception:
    """The error that fails a resource's create or update in the emulator's CloudFormation (CREATE_FAILED with
    CloudFormation's wording of the handler's message; the stack rolls back), as the authorization installs it."""
    from .authorization import _role_not_assumable

    return _role_not_assumable()("ValidationException", message, "SageMaker", "InvalidRequest")


__all__ = ["SageMakerDouble", "ThrottlingError", "validate_request"]
