"""ServingModel: a SageMaker model (one container, one model archive) and its execution role."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ._nag import acknowledge_wildcard_resource
from .errors import ConfigError, Problems, shown

_ECR_URI = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<repository>[a-z0-9][a-z0-9._/-]*)(?::[\w.-]{1,128}|@sha256:[0-9a-f]{64})?"
)
_S3_URL = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>\S+)")

# Accounts of the SageMaker XGBoost algorithm images (sagemaker-xgboost), by region, as the
# SageMaker Python SDK's image_uri_config/xgboost.json lists them for versions 0.90-1 to 1.7-1.
_XGBOOST_REGISTRIES = {
    "af-south-1": "510948584623", "ap-east-1": "651117190479", "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698", "ap-northeast-3": "867004704886", "ap-south-1": "720646828776",
    "ap-south-2": "628508329040", "ap-southeast-1": "121021644041", "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941", "ap-southeast-4": "106583098589", "ca-central-1": "341280168497",
    "ca-west-1": "190319476487", "cn-north-1": "450853457545", "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770", "eu-central-2": "680994064768", "eu-north-1": "662702820516",
    "eu-south-1": "978288397137", "eu-south-2": "104374241257", "eu-west-1": "141502667606",
    "eu-west-2": "764974769150", "eu-west-3": "659782779980", "il-central-1": "898809789911",
    "me-central-1": "272398656194", "me-south-1": "801668240914", "sa-east-1": "737474898029",
    "us-east-1": "683313688378", "us-east-2": "257758044811", "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902", "us-west-1": "746614075791", "us-west-2": "246618743249",
}
XGBOOST_VERSIONS = ("1.0-1", "1.2-1", "1.2-2", "1.3-1", "1.5-1", "1.7-1")


Grant = Callable[[iam.IGrantable], iam.Grant]
T = TypeVar("T")


class _ModelSource:
    """Something a model is made from: bound to the model, it grants the model's role access
    to exactly itself and returns its URI."""

    def __init__(self, description: str, bind: Callable[[Construct], tuple[str, Grant]]) -> None:
        self.description = description
        self._bind = bind

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description})"

    def bind(self, scope: Construct, grantee: iam.IGrantable) -> str:
        """Grant ``grantee`` access to this source (pull the image, read the object); return its URI."""
        uri, grant = self.bind_with_grant(scope)
        grant(grantee)
        return uri

    def bind_with_grant(self, scope: Construct) -> tuple[str, Grant]:
        """The URI of this source in ``scope``, and a function that grants a principal access to it."""
        return self._bind(scope)


class ModelImage(_ModelSource):
    """The serving container image of a model. Build one with a ``from_*`` factory."""

    @staticmethod
    def from_uri(uri: str) -> ModelImage:
        """An Amazon ECR image by URI: ``<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]``.

        The execution role is granted pull on exactly that repository. A token URI is
        accepted as is; then grant pull yourself (or use ``from_ecr_repository``).
        """
        if not isinstance(uri, str):
            raise ConfigError("ModelImage", [f"uri must be a string, got {shown(uri)}"])
        if cdk.Token.is_unresolved(uri):
            return ModelImage("token uri", lambda scope: (uri, lambda grantee: iam.Grant.drop(grantee, "pull a token image")))
        match = _ECR_URI.fullmatch(uri)
        if not match:
            raise ConfigError("ModelImage", [
                "uri must be an Amazon ECR image "
                f"(<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag|@digest]), got {uri!r}"])

        def bind(scope: Construct) -> tuple[str, Grant]:
            stack = cdk.Stack.of(scope)
            arn = f"arn:{stack.partition}:ecr:{match['region']}:{match['account']}:repository/{match['repository']}"
            return uri, lambda grantee: _grant_pull(grantee, arn)

        return ModelImage(uri, bind)

    @staticmethod
    def from_ecr_repository(repository: ecr.IRepository, tag_or_digest: str = "latest") -> ModelImage:
        """An image in an ECR repository of yours, by tag or by ``sha256:`` digest. Default tag: latest."""
        problems = Problems("ModelImage")
        if not hasattr(repository, "repository_uri_for_tag"):
            problems.add(f"repository must be an aws_ecr.IRepository, got {shown(repository)}")
        problems.check_type("tag_or_digest", tag_or_digest, str, "a string")
        problems.raise_if_any()

        def bind(scope: Construct) -> tuple[str, Grant]:
            if tag_or_digest.startswith("sha256:"):
                return repository.repository_uri_for_digest(tag_or_digest), repository.grant_pull
            return repository.repository_uri_for_tag(tag_or_digest), repository.grant_pull

        return ModelImage(f"ecr repository:{tag_or_digest}", bind)

    @staticmethod
    def sagemaker_xgboost(version: str = "1.7-1") -> ModelImage:
        """SageMaker's built-in XGBoost image in the stack's region. Default version: 1.7-1.

        The registry account is looked up per region with a CloudFormation mapping, so a
        region-agnostic stack works in every region SageMaker publishes the image to.
        """
        if version not in XGBOOST_VERSIONS:
            raise ConfigError("ModelImage", [
                f"version must be one of {', '.join(XGBOOST_VERSIONS)}, got {shown(version)}"])

        def bind(scope: Construct) -> tuple[str, Grant]:
            stack = cdk.Stack.of(scope)
            found = stack.node.try_find_child("SageMakerXGBoostRegistries")
            mapping = found if isinstance(found, cdk.CfnMapping) else cdk.CfnMapping(
                stack, "SageMakerXGBoostRegistries", lazy=True,
                mapping={region: {"account": account} for region, account in _XGBOOST_REGISTRIES.items()})
            account = mapping.find_in_map(stack.region, "account")
            arn = f"arn:{stack.partition}:ecr:{stack.region}:{account}:repository/sagemaker-xgboost"
            uri = f"{account}.dkr.ecr.{stack.region}.{stack.url_suffix}/sagemaker-xgboost:{version}"
            return uri, lambda grantee: _grant_pull(grantee, arn)

        return ModelImage(f"sagemaker-xgboost:{version}", bind)


def service_role(scope: Construct, construct_id: str, service: str, description: str | None = None) -> iam.IRole:
    """A new role that ``service`` (e.g. ``lambda.amazonaws.com``) assumes."""
    # jsii: ServicePrincipal and Role implement IPrincipal and IRole with other parameter names (aws/jsii#4541).
    principal = cast(iam.IPrincipal, iam.ServicePrincipal(service))
    return cast(iam.IRole, iam.Role(scope, construct_id, assumed_by=principal, description=description))


def sagemaker_role(scope: Construct, construct_id: str, description: str) -> iam.IRole:
    """A new role SageMaker assumes (a model's execution role, a managed test's role)."""
    return service_role(scope, construct_id, "sagemaker.amazonaws.com", description)


def _grant_pull(grantee: iam.IGrantable, repository_arn: str) -> iam.Grant:
    pull = iam.Grant.add_to_principal(
        grantee=grantee, resource_arns=[repository_arn],
        actions=["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"])
    # GetAuthorizationToken has no resource-level permissions: "*" is the only resource it takes.
    return pull.combine(iam.Grant.add_to_principal(grantee=grantee, actions=["ecr:GetAuthorizationToken"],
                                                   resource_arns=["*"]))


class ModelData(_ModelSource):
    """Where a model's ``model.tar.gz`` comes from. Build one with a ``from_*`` factory."""

    @staticmethod
    def from_s3_url(url: str, *, encryption_key: kms.IKey | None = None) -> ModelData:
        """An object already in S3, ``s3://bucket/key``.

        :param encryption_key: the KMS key the object is encrypted with, if it is a customer
            managed key. Default: none (SSE-S3 or the AWS managed key, which need no grant).
        """
        if isinstance(url, str) and cdk.Token.is_unresolved(url):
            return ModelData("token url", lambda scope: (url, lambda grantee: iam.Grant.drop(grantee, "read a token url")))
        match = _S3_URL.fullmatch(url) if isinstance(url, str) else None
        if match is None:
            raise ConfigError("ModelData", [f"url must be an S3 URL s3://<bucket>/<key>, got {shown(url)}"])

        def bind(scope: Construct) -> tuple[str, Grant]:
            arn = f"arn:{cdk.Stack.of(scope).partition}:s3:::{match['bucket']}/{match['key']}"
            return url, lambda grantee: _grant_object_read(grantee, arn, encryption_key)

        return ModelData(url, bind)

    @staticmethod
    def from_bucket(bucket: s3.IBucket, key: str) -> ModelData:
        """An object in a bucket of yours; its KMS key (if the bucket has one) is granted too."""
        problems = Problems("ModelData")
        if not hasattr(bucket, "bucket_name"):
            problems.add(f"bucket must be an aws_s3.IBucket, got {shown(bucket)}")
        if problems.check_type("key", key, str, "a string") and (not key or key.endswith("/")):
            problems.add(f"key must name one object (model.tar.gz), got {key!r}")
        problems.raise_if_any()

        def bind(scope: Construct) -> tuple[str, Grant]:
            arn = bucket.arn_for_objects(key)
            return bucket.s3_url_for_object(key), lambda grantee: _grant_object_read(grantee, arn, bucket.encryption_key)

        return ModelData(f"bucket object {key}", bind)

    @staticmethod
    def from_asset(path: str | Path) -> ModelData:
        """A local ``.tar.gz`` file, or a folder packed into one, uploaded as a CDK asset.

        A folder is packed deterministically (sorted names, no timestamps), so the asset
        hash, and with it the model, changes only when the folder's content does.
        """
        source = Path(path) if isinstance(path, (str, Path)) else None
        if source is None:
            raise ConfigError("ModelData", [f"path must be a file or folder path, got {shown(path)}"])
        if not source.exists():
            where = "" if source.is_absolute() else f" (a relative path is read from {Path.cwd()})"
            raise ConfigError("ModelData", [f"path must be an existing .tar.gz archive or folder, got {str(path)!r}: no "
                                            f"such file or folder{where}"])
        if source.is_file() and not source.name.endswith(".tar.gz"):
            raise ConfigError("ModelData", [
                f"path must be a .tar.gz archive or a folder to pack into one, got {str(path)!r}"])

        def bind(scope: Construct) -> tuple[str, Grant]:
            archive = source if source.is_file() else _pack_folder(source)
            asset = s3_assets.Asset(scope, "ModelData", path=str(archive))
            arn = asset.bucket.arn_for_objects(asset.s3_object_key)
            return asset.s3_object_url, lambda grantee: _grant_object_read(grantee, arn, None)

        return ModelData(f"asset {path}", bind)


def _grant_object_read(grantee: iam.IGrantable, object_arn: str, key: kms.IKey | None) -> iam.Grant:
    grant = iam.Grant.add_to_principal(grantee=grantee, actions=["s3:GetObject"], resource_arns=[object_arn])
    return grant.combine(key.grant_decrypt(grantee)) if key is not None else grant


def _pack_folder(folder: Path) -> Path:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(folder).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    target = Path(tempfile.gettempdir()) / "shadow-constructs" / f"model-{digest.hexdigest()[:32]}.tar.gz"
    if target.exists():
        return target
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for file in files:
            data = file.read_bytes()
            info = tarfile.TarInfo(file.relative_to(folder).as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{id(raw)}.part")
    with gzip.GzipFile(partial, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    partial.replace(target)
    return target


@jsii.implements(iam.IGrantable)
class ServingModel(Construct):
    """A SageMaker model: one serving container and its model archive, ready to be a variant.

    Creates a least-privilege execution role unless ``role`` is given: it reads exactly its
    model data, pulls exactly its image, writes its logs to the SageMaker endpoint log groups
    and publishes endpoint instance metrics.

    :param image: the serving container, a ``ModelImage`` or an ECR image URI string.
    :param model_data: the model archive, a ``ModelData``, an ``s3://`` URL or a local path
        (``.tar.gz`` file or folder). Default: none (the image carries its model).
    :param environment: environment variables of the container. Default: none.
    :param role: execution role to use. Default: a new role with least privilege.
    :param vpc: run the model's containers in this VPC. Default: no VPC.
    :param vpc_subnets: subnets when ``vpc`` is given. Default: the VPC's private subnets.
    :param security_groups: security groups when ``vpc`` is given. Default: one new group
        allowing all outbound traffic and no inbound.
    :param network_isolation: block the container's outbound network calls. Default: False
        (SageMaker's default; the built-in algorithm images work with True).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ModelImage | str,
        model_data: ModelData | str | Path | None = None,
        environment: Mapping[str, str] | None = None,
        role: iam.IRole | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        network_isolation: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        problems = Problems(f"ServingModel {self.node.path!r}")
        source: ModelImage | None = None
        if isinstance(image, str):
            source = _collect(problems, ModelImage.from_uri, image)
        elif isinstance(image, ModelImage):
            source = image
        else:
            problems.add(f"image must be a ModelImage or an ECR image URI string, got {shown(image)}")
        if isinstance(model_data, str) and re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", model_data) \
                and not model_data.startswith("s3://"):
            problems.add(f"model_data must be an s3:// URL or an existing local path, got {model_data!r}")
            model_data = None
        elif isinstance(model_data, (str, Path)) and not str(model_data).startswith("s3://") \
                and not Path(model_data).exists():
            where = "" if Path(model_data).is_absolute() else f" (a relative path is read from {Path.cwd()})"
            problems.add(f"model_data must be an s3:// URL or an existing local .tar.gz archive or folder, got "
                         f"{str(model_data)!r}: no such file or folder{where}")
            model_data = None
        elif isinstance(model_data, (str, Path)):
            model_data = _collect(problems, ModelData.from_s3_url if str(model_data).startswith("s3://")
                                  else ModelData.from_asset, model_data)
        elif model_data is not None and not isinstance(model_data, ModelData):
            problems.add(f"model_data must be a ModelData, an s3:// URL or a local path, got {shown(model_data)}")
        if environment is not None:
            if not isinstance(environment, Mapping):
                problems.add(f"environment must be a mapping of strings, got {shown(environment)}")
            else:
                bad = [k for k, v in environment.items() if not isinstance(k, str) or not isinstance(v, str)]
                if bad:
                    problems.add(f"environment must map strings to strings, got non-strings at {bad!r}")
        if role is not None and not hasattr(role, "role_arn"):
            problems.add(f"role must be an aws_iam.IRole, got {shown(role)}")
        if vpc is None and (vpc_subnets is not None or security_groups):
            problems.add("vpc_subnets and security_groups need vpc; got them without a vpc")
        problems.check_type("network_isolation", network_isolation, bool, "a bool")
        problems.raise_if_any()
        assert source is not None, "a None image added a problem"

        self.role: iam.IRole = role or sagemaker_role(self, "ExecutionRole",
                                                      f"Execution role of the SageMaker model {self.node.path}")
        self._grant_runtime_basics()

        self.image_uri, grant_image = source.bind_with_grant(self)
        self._artifact_grants = [grant_image]
        self.model_data_url = None
        if model_data is not None:
            self.model_data_url, grant_data = model_data.bind_with_grant(self)
            self._artifact_grants.append(grant_data)
        self.grant_artifacts(self.role)

        self.connections: ec2.Connections | None = None
        vpc_config = None
        if vpc is not None:
            groups = list(security_groups or [ec2.SecurityGroup(
                self, "SecurityGroup", vpc=vpc, allow_all_outbound=True,
                description=f"SageMaker model {self.node.path}")])
            self.connections = ec2.Connections(security_groups=groups)
            subnets = vpc.select_subnets(**(_subnet_kwargs(vpc_subnets)))
            vpc_config = sagemaker.CfnModel.VpcConfigProperty(
                security_group_ids=[g.security_group_id for g in groups], subnets=subnets.subnet_ids)
            self._grant_vpc_access()

        self._resource = sagemaker.CfnModel(
            self, "Resource",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=self.image_uri, model_data_url=self.model_data_url,
                environment=dict(environment) if environment else None, mode="SingleModel"),
            vpc_config=vpc_config,
            enable_network_isolation=network_isolation,
        )
        # SageMaker checks the role when the model is created: its policy must exist first.
        policy = self.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            self._resource.node.add_dependency(policy)
        self.model_name: str = self._resource.attr_model_name
        self.model_arn: str = cdk.Stack.of(self).format_arn(
            service="sagemaker", resource="model", resource_name=self.model_name)
        self.description = source.description

    @property
    def grant_principal(self) -> iam.IPrincipal:
        """The execution role: grants to the model are grants to its role."""
        return self.role.grant_principal

    def _grant_runtime_basics(self) -> None:
        log_groups = cdk.Stack.of(self).format_arn(
            service="logs", resource="log-group", resource_name="/aws/sagemaker/Endpoints/*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resource_arns=[log_groups])
        acknowledge_wildcard_resource(
            self, log_groups, "One model serves endpoints named later; its logs go to SageMaker's endpoint groups.")
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints*"}}))
        acknowledge_wildcard_resource(
            self, "*", "PutMetricData (namespace-conditioned) and ecr:GetAuthorizationToken take no resource ARN.")

    def _grant_vpc_access(self) -> None:
        # The ENI calls SageMaker makes for a VPC model have no resource-level scoping.
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
                     "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission",
                     "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions",
                     "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"],
            resources=["*"]))

    def grant_artifacts(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` pull exactly this model's image and read exactly its model data."""
        grants = [grant(grantee) for grant in self._artifact_grants]
        combined = grants[0]
        for grant in grants[1:]:
            combined = combined.combine(grant)
        return combined

    def grant_describe(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read this model's definition (sagemaker:DescribeModel)."""
        return iam.Grant.add_to_principal(grantee=grantee, actions=["sagemaker:DescribeModel"],
                                          resource_arns=[self.model_arn])


def _subnet_kwargs(selection: ec2.SubnetSelection | None) -> dict:
    if selection is None:
        return {}
    return {k: v for k, v in {
        "availability_zones": selection.availability_zones, "one_per_az": selection.one_per_az,
        "subnet_filters": selection.subnet_filters, "subnet_group_name": selection.subnet_group_name,
        "subnets": selection.subnets, "subnet_type": selection.subnet_type}.items() if v is not None}


def _collect(problems: Problems, factory: Callable[[Any], T], value: Any) -> T | None:
    try:
        return factory(value)
    except ConfigError as error:
        problems.extend(error.problems)
        return None
