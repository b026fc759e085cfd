"""ManagedShadowTest: SageMaker's managed shadow test (InferenceExperiment, ShadowMode) on an existing endpoint."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ._nag import acknowledge_wildcard_resource
from .capture import CaptureLocation, CaptureStore, DataCapture
from .endpoint_base import IShadowEndpoint, endpoint_arn
from .errors import Problems, check_removal_policy, shown
from .model import ServingModel, sagemaker_role
from .variant import (
    DEFAULT_SHADOW_NAME,
    ENDPOINT_NAME_PATTERN,
    IMPORTED_PRODUCTION_NAME,
    INSTANCE_TYPE_PATTERN,
    Variant,
    check_realtime_instance_type,
    check_shadow_instance_type,
    check_variant_name,
    has_local_storage,
)

DEFAULT_DURATION = timedelta(days=7)
MIN_DURATION = timedelta(hours=1)
MAX_DURATION = timedelta(days=30)


class ExperimentOutcome(enum.Enum):
    """Where the managed test should be: running, or ended one of three ways.

    CloudFormation's handler stops a running experiment when DesiredState becomes Completed;
    it promotes the shadow (and removes production) when the template no longer lists the
    production variant, and otherwise retains production.
    """

    #: Run (or keep running) the test on its schedule.
    RUNNING = "Running"
    #: Stop the test; production stays, the shadow is removed.
    COMPLETE_KEEP_PRODUCTION = "Completed"
    #: Stop the test and promote the shadow: it replaces the production variant.
    COMPLETE_PROMOTE_SHADOW = "Completed+Promote"
    #: Cancel the test; production stays.
    CANCEL = "Cancelled"


class ManagedShadowTest(Construct):
    """A managed shadow test on an EXISTING endpoint (``AWS::SageMaker::InferenceExperiment``).

    SageMaker adds the shadow to the endpoint for the test's schedule and takes it away at the
    end, unless you promote it. End, promote or cancel the test by changing ``outcome`` and
    deploying again (see ``ExperimentOutcome``).

    :param endpoint: the existing endpoint: an ``IShadowEndpoint`` such as ``ShadowEndpoint.from_endpoint_name(...)``
        (its production variant name is used) or the endpoint name. Required.
    :param production_model: the model the production variant serves: a ServingModel or the
        model name. Required.
    :param shadow: the shadow ``Variant`` (model, instance type and count, name). Required.
    :param production_instance_type: Default: ``ml.m5.xlarge``.
    :param production_instance_count: Default: 1.
    :param production_variant_name: Default: the imported endpoint's, else ``AllTraffic``.
    :param sampling_percent: share of production requests copied to the shadow, 1-100. Default: 100.
    :param duration: how long the test runs, 1 hour to 30 days. Default: 7 days (SageMaker's;
        it then starts on creation). Any other duration needs ``start``: CloudFormation has no
        deploy-time clock.
    :param start: when the test starts (timezone-aware or UTC). Default: on creation.
    :param end: when it ends; give ``duration`` or ``end``, not both. Default: start + duration.
    :param data_storage: a ``DataCapture`` saying where captured requests and responses go
        (its store or bucket, prefix, content types). Default: no capture.
    :param encryption_key: KMS key for the shadow's ML storage volume. Default: a new key
        (none for instance types with local NVMe storage).
    :param outcome: an ``ExperimentOutcome``. Default: RUNNING.
    :param experiment_name: 1-120 characters. Default: a name unique to this construct.
    :param role: role SageMaker assumes to run the test. Default: a new least-privilege role.
    :param description: Default: none.
    :param removal_policy: what happens to the storage key this test creates when the stack deletes it.
        Default: ``cdk.RemovalPolicy.DESTROY`` (it encrypts only the shadow's instance volume).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: IShadowEndpoint | str,
        production_model: ServingModel | str,
        shadow: Variant,
        production_instance_type: str = "ml.m5.xlarge",
        production_instance_count: int = 1,
        production_variant_name: str | None = None,
        sampling_percent: int = 100,
        duration: cdk.Duration | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        data_storage: DataCapture | None = None,
        encryption_key: kms.IKey | None = None,
        outcome: ExperimentOutcome = ExperimentOutcome.RUNNING,
        experiment_name: str | None = None,
        role: iam.IRole | None = None,
        description: str | None = None,
        removal_policy: cdk.RemovalPolicy | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        endpoint_name, production_variant_name, shadow_name, schedule, removal_policy = self._check(
            endpoint, production_model, shadow, production_instance_type, production_instance_count,
            production_variant_name, sampling_percent, duration, start, end, data_storage, encryption_key, outcome,
            experiment_name, role, description, removal_policy)

        self.endpoint_name = endpoint_name
        self.production_variant_name = production_variant_name
        self.shadow_variant_name = shadow_name
        #: Share of production requests copied to the shadow.
        self.sampling_percent = sampling_percent
        self.outcome = outcome
        self.schedule = schedule
        stack = cdk.Stack.of(self)
        self.role: iam.IRole = role or sagemaker_role(self, "Role", f"Runs the managed shadow test {self.node.path}")
        production_model_name = production_model.model_name if isinstance(production_model, ServingModel) \
            else production_model
        self._grant_experiment(stack, endpoint_name, [production_model, shadow.model])

        self._storage_key(encryption_key, shadow, removal_policy)
        storage = self._capture(data_storage)
        self._experiment(endpoint_name, production_model_name, production_variant_name, production_instance_type,
                         production_instance_count, shadow, shadow_name, sampling_percent, schedule, storage, outcome,
                         experiment_name, description)

    def _check(self, endpoint: Any, production_model: Any, shadow: Any, production_instance_type: Any,
               production_instance_count: Any, production_variant_name: Any, sampling_percent: Any, duration: Any,
               start: Any, end: Any, data_storage: Any, encryption_key: Any, outcome: Any, experiment_name: Any,
               role: Any, description: Any, removal_policy: Any,
               ) -> tuple[str, str, str, tuple[str, str] | None, cdk.RemovalPolicy]:
        """Every prop checked (all problems at once, a ConfigError); the endpoint's name, the variant names, the
        schedule and the removal policy to build with."""
        problems = Problems(f"ManagedShadowTest {self.node.path!r}")
        endpoint_name, own_production_name = self._endpoint_name(problems, endpoint)
        production_variant_name = production_variant_name or own_production_name
        if problems.check_type("production_variant_name", production_variant_name, str, "a string"):
            check_variant_name(problems, "production_variant_name", production_variant_name)
        if not isinstance(production_model, (ServingModel, str)) or production_model == "":
            problems.add(f"production_model must be a ServingModel or a model name, got {shown(production_model)}")
        problems.check_pattern("production_instance_type", production_instance_type, INSTANCE_TYPE_PATTERN,
                               "must be a SageMaker instance type like 'ml.m5.xlarge'")
        problems.check_int_range("production_instance_count", production_instance_count, 1)
        shadow_name = None
        if not isinstance(shadow, Variant):
            problems.add(f"shadow must be a Variant, got {shown(shadow)}")
        else:
            shadow_name = shadow.variant_name or DEFAULT_SHADOW_NAME
            if shadow_name == production_variant_name:
                problems.add(f"shadow variant_name must differ from production_variant_name, got {shadow_name!r} for both")
            if shadow.autoscaling is not None:
                problems.add("shadow autoscaling is not supported by managed shadow tests; leave Variant(autoscaling=...) unset")
            for role_name, instance_type in (("production_instance_type", production_instance_type),
                                             ("shadow instance_type", shadow.instance_type)):
                if isinstance(instance_type, str) and check_realtime_instance_type(problems, role_name, instance_type):
                    check_shadow_instance_type(problems, role_name, instance_type)
        problems.check_int_range("sampling_percent", sampling_percent, 1, 100)
        schedule = self._schedule(problems, duration, start, end)
        if data_storage is not None:
            if not isinstance(data_storage, DataCapture):
                problems.add(f"data_storage must be a DataCapture, got {shown(data_storage)}")
            elif data_storage.sampling_percent != 100 or not (data_storage.capture_input and data_storage.capture_output):
                problems.add("data_storage captures every request's input and output in a managed test; leave "
                             "DataCapture(sampling_percent, capture_input, capture_output) at their defaults")
        if encryption_key is not None and not hasattr(encryption_key, "key_arn"):
            problems.add(f"encryption_key must be an aws_kms.IKey, got {shown(encryption_key)}")
        elif encryption_key is not None and isinstance(shadow, Variant) and has_local_storage(shadow.instance_type):
            problems.add(f"encryption_key cannot be used with instance types that have local NVMe storage, "
                         f"got {shadow.instance_type}")
        if not isinstance(outcome, ExperimentOutcome):
            problems.add(f"outcome must be an ExperimentOutcome, got {shown(outcome)}")
        if experiment_name is not None:
            problems.check_pattern("experiment_name", experiment_name, r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}",
                                   "must be 1-120 letters, digits and inner hyphens")
        if role is not None and not hasattr(role, "role_arn"):
            problems.add(f"role must be an aws_iam.IRole, got {shown(role)}")
        if description is not None:
            problems.check_type("description", description, str, "a string")
        removal_policy = check_removal_policy(problems, removal_policy, cdk.RemovalPolicy.DESTROY)
        problems.raise_if_any()
        assert endpoint_name is not None and shadow_name is not None, "each None added a problem"
        return endpoint_name, production_variant_name, shadow_name, schedule, removal_policy

    def _storage_key(self, encryption_key: kms.IKey | None, shadow: Variant, removal_policy: cdk.RemovalPolicy) -> None:
        """The shadow's storage key (a new rotated one unless given; none for local-NVMe types) and the role's grant."""
        self.encryption_key = encryption_key
        if encryption_key is None and not has_local_storage(shadow.instance_type):
            self.encryption_key = kms.Key(self, "StorageKey", enable_key_rotation=True, removal_policy=removal_policy,
                                          description=f"Shadow ML storage of the managed test {self.node.path}")
        if self.encryption_key is not None:
            # SageMaker creates a grant on the storage key for the shadow's volumes, as the experiment's role (as for
            # an endpoint's KmsKeyId); the grant carries the encrypt/decrypt rights, the role needs none of them.
            self.role.add_to_principal_policy(iam.PolicyStatement(
                actions=["kms:CreateGrant"], resources=[self.encryption_key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}))
            self.role.add_to_principal_policy(iam.PolicyStatement(actions=["kms:DescribeKey"],
                                                                  resources=[self.encryption_key.key_arn]))


    def _capture(self, data_storage: DataCapture | None) -> Any:
        """Capture into the store, bucket or new store of ``data_storage``: the experiment's DataStorageConfig."""
        bound = data_storage.bind(self, [self.role]) if data_storage else None
        #: The CaptureStore this test created for its data (None when given one, a bucket, or no capture).
        self.capture_store: CaptureStore | None = bound.created_store if bound else None
        #: Where the test's captured data lands (None without capture).
        self.capture_location: CaptureLocation | None = bound.location if bound else None
        self.capture_destination = bound.destination if bound else None
        return _data_storage(data_storage, bound.location) if data_storage is not None and bound is not None else None

    def _experiment(self, endpoint_name: str, production_model_name: str, production_variant_name: str,
                    production_instance_type: str, production_instance_count: int, shadow: Variant, shadow_name: str,
                    sampling_percent: int, schedule: tuple[str, str] | None, storage: Any, outcome: ExperimentOutcome,
                    experiment_name: str | None, description: str | None) -> None:
        """The AWS::SageMaker::InferenceExperiment, after the role's policy."""
        def variant(model_name: str, name: str, instance_type: str, count: int):
            return sagemaker.CfnInferenceExperiment.ModelVariantConfigProperty(
                model_name=model_name, variant_name=name,
                infrastructure_config=sagemaker.CfnInferenceExperiment.ModelInfrastructureConfigProperty(
                    infrastructure_type="RealTimeInference",
                    real_time_inference_config=sagemaker.CfnInferenceExperiment.RealTimeInferenceConfigProperty(
                        instance_type=instance_type, instance_count=count)))

        variants = [variant(shadow.model.model_name, shadow_name, shadow.instance_type, shadow.instance_count)]
        if outcome is not ExperimentOutcome.COMPLETE_PROMOTE_SHADOW:
            # Listing production keeps it; leaving it out is how CloudFormation is told to promote the shadow.
            variants.insert(0, variant(production_model_name, production_variant_name, production_instance_type,
                                       production_instance_count))
        self.experiment_name = experiment_name or cdk.Names.unique_resource_name(self, max_length=120, separator="-")
        self.resource = sagemaker.CfnInferenceExperiment(
            self, "Resource",
            name=self.experiment_name, type="ShadowMode", role_arn=self.role.role_arn, endpoint_name=endpoint_name,
            model_variants=variants,
            shadow_mode_config=sagemaker.CfnInferenceExperiment.ShadowModeConfigProperty(
                source_model_variant_name=production_variant_name,
                shadow_model_variants=[sagemaker.CfnInferenceExperiment.ShadowModelVariantConfigProperty(
                    shadow_model_variant_name=shadow_name, sampling_percentage=sampling_percent)]),
            schedule=sagemaker.CfnInferenceExperiment.InferenceExperimentScheduleProperty(
                start_time=schedule[0], end_time=schedule[1]) if schedule else None,
            data_storage_config=storage,
            kms_key=self.encryption_key.key_arn if self.encryption_key else None,
            desired_state="Completed" if outcome is ExperimentOutcome.COMPLETE_PROMOTE_SHADOW else outcome.value,
            description=description,
        )
        policy = self.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            self.resource.node.add_dependency(policy)
        self.experiment_arn = self.resource.attr_arn

    @staticmethod
    def _endpoint_name(problems: Problems, endpoint: Any) -> tuple[str | None, str]:
        """The endpoint's name and production variant name (``AllTraffic`` for a bare name)."""
        if isinstance(endpoint, str):
            problems.check_pattern("endpoint", endpoint, ENDPOINT_NAME_PATTERN,
                                   "must be an endpoint name (1-63 letters, digits and inner hyphens)")
            return endpoint, IMPORTED_PRODUCTION_NAME
        if isinstance(endpoint, IShadowEndpoint):
            return endpoint.endpoint_name, endpoint.production_variant_name
        problems.add(f"endpoint must be an IShadowEndpoint (such as an imported ShadowEndpoint) or an endpoint name, "
                     f"got {shown(endpoint)}")
        return None, IMPORTED_PRODUCTION_NAME

    @staticmethod
    def _schedule(problems: Problems, duration, start, end) -> tuple[str, str] | None:
        for name, value in (("start", start), ("end", end)):
            if value is not None:
                problems.check_type(name, value, datetime, "a datetime")
        if duration is not None:
            problems.check_seconds("duration", duration, int(MIN_DURATION.total_seconds()),
                                   int(MAX_DURATION.total_seconds()))
        if problems.found:
            return None
        if duration is not None and end is not None:
            problems.add("give duration or end, not both")
            return None
        if start is None:
            if end is not None:
                problems.add("end needs start: CloudFormation has no deploy-time clock")
            elif duration is not None and duration.to_seconds() != DEFAULT_DURATION.total_seconds():
                problems.add(f"a duration other than 7 days needs start (CloudFormation has no deploy-time clock), "
                             f"got {duration.to_human_string()} without start")
            return None
        utc = (start if start.tzinfo else start.replace(tzinfo=UTC)).astimezone(UTC)
        if end is not None:
            finish = (end if end.tzinfo else end.replace(tzinfo=UTC)).astimezone(UTC)
        else:
            finish = utc + (timedelta(seconds=duration.to_seconds()) if duration else DEFAULT_DURATION)
        length = finish - utc
        if not MIN_DURATION <= length <= MAX_DURATION:
            problems.add(f"the test must last from 1 hour to 30 days, got {length} from {utc.isoformat()} "
                         f"to {finish.isoformat()}")
            return None
        iso = "%Y-%m-%dT%H:%M:%SZ"
        return utc.strftime(iso), finish.strftime(iso)

    def _grant_experiment(self, stack: cdk.Stack, endpoint_name: str, models: list) -> None:
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint"],
            resources=[endpoint_arn(self, endpoint_name)]))
        configs = stack.format_arn(service="sagemaker", resource="endpoint-config", resource_name="*")
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig",
                     "sagemaker:DeleteEndpointConfig"], resources=[configs]))
        acknowledge_wildcard_resource(self, configs, "SageMaker names the endpoint configs of a managed test itself.")
        model_arns = []
        for model in models:
            if isinstance(model, ServingModel):
                model_arns.append(model.model_arn)
                model.grant_artifacts(self.role)  # SageMaker deploys the test's models with this role
                acknowledge_wildcard_resource(self, "*", "ecr:GetAuthorizationToken (image pull) takes no resource ARN.")
            else:
                model_arns.append(stack.format_arn(service="sagemaker", resource="model", resource_name=model.lower()))
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=["sagemaker:DescribeModel"], resources=model_arns))


def _data_storage(capture: DataCapture, location: CaptureLocation) -> sagemaker.CfnInferenceExperiment.DataStorageConfigProperty:
    return sagemaker.CfnInferenceExperiment.DataStorageConfigProperty(
        destination=location.destination,
        kms_key=location.encryption_key.key_arn if location.encryption_key is not None else None,
        content_type=sagemaker.CfnInferenceExperiment.CaptureContentTypeHeaderProperty(
            csv_content_types=capture.csv_content_types, json_content_types=capture.json_content_types))
