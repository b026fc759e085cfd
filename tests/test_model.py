"""ServingModel: images, model data, and an execution role scoped to exactly what it serves."""

from __future__ import annotations

import tarfile
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from conftest import MODELS, XGBOOST_URI, actions_of, new_stack, only, policy_statements, template_of

from shadow_constructs import ConfigError, ModelData, ModelImage, ServingModel


def statements_for(template, action: str) -> list[dict]:
    return [s for s in policy_statements(template, "ModelExecutionRole") if action in actions_of(s)]


@pytest.fixture(scope="module")
def uri_model():
    stack = new_stack()
    model = ServingModel(stack, "Model", image=XGBOOST_URI, model_data="s3://models-bucket/churn/v1/model.tar.gz",
                         environment={"SAGEMAKER_PROGRAM": "inference.py"})
    return model, template_of(stack)


def test_model_is_single_container_with_image_data_and_environment(uri_model):
    _, template = uri_model
    props = only(template, "AWS::SageMaker::Model")["Properties"]
    assert props["PrimaryContainer"] == {
        "Image": XGBOOST_URI, "ModelDataUrl": "s3://models-bucket/churn/v1/model.tar.gz", "Mode": "SingleModel",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}
    assert props["EnableNetworkIsolation"] is False
    assert "ModelName" not in props  # generated: a fixed name would block replacements


def test_role_is_assumed_by_sagemaker_only(uri_model):
    _, template = uri_model
    role = only(template, "AWS::IAM::Role")["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}]
    assert "ManagedPolicyArns" not in role


def test_role_reads_exactly_its_model_object(uri_model):
    _, template = uri_model
    reads = statements_for(template, "s3:GetObject")
    assert len(reads) == 1 and actions_of(reads[0]) == ["s3:GetObject"]
    resource = reads[0]["Resource"]
    assert resource == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                          ":s3:::models-bucket/churn/v1/model.tar.gz"]]}


def test_role_pulls_exactly_its_repository(uri_model):
    _, template = uri_model
    pull, = statements_for(template, "ecr:BatchGetImage")
    assert pull["Resource"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                                  ":ecr:us-east-1:683313688378:repository/sagemaker-xgboost"]]}
    token, = statements_for(template, "ecr:GetAuthorizationToken")
    assert token["Resource"] == "*" and actions_of(token) == ["ecr:GetAuthorizationToken"]


def test_role_writes_only_sagemaker_endpoint_logs_and_metrics(uri_model):
    _, template = uri_model
    logs, = statements_for(template, "logs:PutLogEvents")
    assert logs["Resource"]["Fn::Join"][1][-1] == ":log-group:/aws/sagemaker/Endpoints/*"
    metrics, = statements_for(template, "cloudwatch:PutMetricData")
    assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints*"}}


def test_model_waits_for_its_role_policy(uri_model):
    _, template = uri_model
    model = only(template, "AWS::SageMaker::Model")
    policy_id, = template.find_resources("AWS::IAM::Policy")
    assert model["DependsOn"] == [policy_id]


def test_sagemaker_xgboost_image_resolves_per_region():
    stack = new_stack()
    ServingModel(stack, "Model", image=ModelImage.sagemaker_xgboost("1.5-1"))
    template = template_of(stack)
    mapping = template.to_json()["Mappings"]["SageMakerXGBoostRegistries"]
    assert mapping["us-east-1"] == {"account": "683313688378"}
    assert mapping["eu-west-1"] == {"account": "141502667606"}
    image = only(template, "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]["Image"]
    assert image["Fn::Join"][1][-1] == "/sagemaker-xgboost:1.5-1"


def test_sagemaker_xgboost_image_is_literal_in_a_known_region():
    stack = new_stack(region="eu-west-1")
    model = ServingModel(stack, "Model", image=ModelImage.sagemaker_xgboost())
    assert stack.resolve(model.image_uri) == {"Fn::Join": [
        "", ["141502667606.dkr.ecr.eu-west-1.", {"Ref": "AWS::URLSuffix"}, "/sagemaker-xgboost:1.7-1"]]}


def test_ecr_repository_image_by_tag_and_digest_grants_pull_on_that_repository():
    stack = new_stack()
    repo = ecr.Repository(stack, "Repo")
    digest = "sha256:" + "a" * 64
    ServingModel(stack, "Tagged", image=ModelImage.from_ecr_repository(repo, "v2"))
    ServingModel(stack, "Pinned", image=ModelImage.from_ecr_repository(repo, digest))
    template = template_of(stack)
    images = [m["Properties"]["PrimaryContainer"]["Image"]["Fn::Join"][1][-1]
              for m in template.find_resources("AWS::SageMaker::Model").values()]
    assert sorted(images) == sorted([":v2", "@" + digest])
    pulls = [s for s in policy_statements(template, "Tagged") if "ecr:BatchGetImage" in actions_of(s)]
    assert pulls[0]["Resource"] == {"Fn::GetAtt": [stack.get_logical_id(repo.node.default_child), "Arn"]}


def test_asset_file_uploads_and_grants_read_of_that_object():
    stack = new_stack()
    ServingModel(stack, "Model", image=XGBOOST_URI, model_data=str(MODELS / "churn-v1" / "model.tar.gz"))
    template = template_of(stack)
    url = only(template, "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]["ModelDataUrl"]["Fn::Sub"]
    assert url.startswith("s3://cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}/")
    read, = [s for s in policy_statements(template, "ModelExecutionRole") if "s3:GetObject" in actions_of(s)]
    assert read["Resource"]["Fn::Join"][1][-1].endswith(url.rsplit("/", 1)[1])


def test_asset_folder_is_packed_deterministically(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "xgboost-model").write_text('{"learner": {}}')
    (folder / "code").mkdir()
    (folder / "code" / "inference.py").write_text("print('hi')\n")
    urls = []
    for _ in range(2):
        stack = new_stack()
        ServingModel(stack, "Model", image=XGBOOST_URI, model_data=ModelData.from_asset(folder))
        urls.append(only(template_of(stack), "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"][
            "ModelDataUrl"]["Fn::Sub"])
    assert urls[0] == urls[1]
    staged = sorted(Path(stack.node.root.outdir).glob("asset.*"))
    archive = next(p for p in staged if p.name.endswith(".tar.gz") or p.name.endswith(".gz"))
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["code/inference.py", "xgboost-model"]
        assert {m.mtime for m in tar.getmembers()} == {0}


def test_bucket_model_data_grants_object_read_and_key_decrypt():
    stack = new_stack()
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Models", encryption_key=key)
    ServingModel(stack, "Model", image=XGBOOST_URI, model_data=ModelData.from_bucket(bucket, "v1/model.tar.gz"))
    statements = policy_statements(template_of(stack), "ModelExecutionRole")
    read, = [s for s in statements if "s3:GetObject" in actions_of(s)]
    assert read["Resource"]["Fn::Join"][1][-1] == "/v1/model.tar.gz"
    assert any("kms:Decrypt" in actions_of(s) for s in statements)


def test_s3_url_with_customer_key_grants_decrypt():
    stack = new_stack()
    key = kms.Key(stack, "Key")
    ServingModel(stack, "Model", image=XGBOOST_URI,
                 model_data=ModelData.from_s3_url("s3://b-1/m.tar.gz", encryption_key=key))
    assert any("kms:Decrypt" in actions_of(s) for s in policy_statements(template_of(stack), "ModelExecutionRole"))


def test_vpc_model_gets_subnets_security_group_and_eni_rights():
    stack = new_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0,
                  subnet_configuration=[ec2.SubnetConfiguration(name="iso", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)])
    model = ServingModel(stack, "Model", image=XGBOOST_URI, vpc=vpc, network_isolation=True)
    template = template_of(stack)
    vpc_config = only(template, "AWS::SageMaker::Model")["Properties"]["VpcConfig"]
    assert len(vpc_config["Subnets"]) == 2 and len(vpc_config["SecurityGroupIds"]) == 1
    assert model.connections is not None
    assert any("ec2:CreateNetworkInterface" in actions_of(s) for s in policy_statements(template, "ModelExecutionRole"))


def test_given_role_is_used_and_granted_to():
    stack = new_stack()
    role = iam.Role(stack, "Mine", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    model = ServingModel(stack, "Model", image=XGBOOST_URI, role=role)
    template = template_of(stack)
    assert len(template.find_resources("AWS::IAM::Role")) == 1
    assert model.grant_principal is role.grant_principal
    assert policy_statements(template, "MineDefaultPolicy")


def test_grant_describe_scopes_to_the_model():
    stack = new_stack()
    model = ServingModel(stack, "Model", image=XGBOOST_URI)
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    model.grant_describe(reader)
    statement, = policy_statements(template_of(stack), "ReaderDefaultPolicy")
    assert statement["Action"] == "sagemaker:DescribeModel"
    assert statement["Resource"]["Fn::Join"][1][-2] == ":model/"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"image": "nginx:latest"}, r"uri must be an Amazon ECR image .*, got 'nginx:latest'"),
    ({"image": 42}, r"image must be a ModelImage or an ECR image URI string, got 42"),
    ({"image": XGBOOST_URI, "model_data": "s3://"}, r"url must be an S3 URL s3://<bucket>/<key>, got 's3://'"),
    ({"image": XGBOOST_URI, "model_data": "/no/such/model.tar.gz"},
     r"model_data must be an s3:// URL or an existing local .tar.gz archive or folder, got '/no/such/model.tar.gz': "
     r"no such file or folder$"),
    ({"image": XGBOOST_URI, "model_data": "models/nope.tar.gz"},
     r"model_data must be .*, got 'models/nope.tar.gz': no such file or folder \(a relative path is read from /"),
    ({"image": XGBOOST_URI, "model_data": "http://models.example.com/churn.tar.gz"},
     r"model_data must be an s3:// URL or an existing local path, got 'http://models.example.com/churn.tar.gz'"),
    ({"image": XGBOOST_URI, "model_data": "https://bucket.s3.amazonaws.com/model.tar.gz"},
     r"model_data must be an s3:// URL or an existing local path, got 'https://bucket.s3"),
    ({"image": XGBOOST_URI, "model_data": 7}, r"model_data must be a ModelData, an s3:// URL or a local path, got 7"),
    ({"image": XGBOOST_URI, "environment": {"A": 1}}, r"environment must map strings to strings, got non-strings"),
    ({"image": XGBOOST_URI, "network_isolation": "yes"}, r"network_isolation must be a bool, got 'yes'"),
    ({"image": XGBOOST_URI, "role": "arn:aws:iam::1:role/x"}, r"role must be an aws_iam.IRole, got 'arn:aws:iam::1:role/x'"),
])
def test_bad_model_input_is_rejected_with_the_parameter_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ServingModel(new_stack(), "Model", **kwargs)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        ServingModel(new_stack(), "Model", image="nginx", model_data=7, network_isolation="no")
    assert len(error.value.problems) == 3
    assert str(error.value).startswith("ServingModel 'Test/Model': 3 problems:")


def test_vpc_options_need_a_vpc():
    stack = new_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0)
    group = ec2.SecurityGroup(stack, "Sg", vpc=vpc)
    with pytest.raises(ConfigError, match=r"vpc_subnets and security_groups need vpc"):
        ServingModel(stack, "Model", image=XGBOOST_URI, security_groups=[group])


@pytest.mark.parametrize(("factory", "message"), [
    (lambda: ModelImage.sagemaker_xgboost("2.0-1"), r"version must be one of 1.0-1, .*1.7-1, got '2.0-1'"),
    (lambda: ModelData.from_asset(MODELS / ".." / "pyproject.toml"),
     r"path must be a .tar.gz archive or a folder to pack into one, got '.*pyproject.toml'"),
    (lambda: ModelData.from_bucket(s3.Bucket.from_bucket_name(new_stack(), "B", "b-1"), "prefix/"),
     r"key must name one object \(model.tar.gz\), got 'prefix/'"),
    (lambda: ModelImage.from_ecr_repository("repo"), r"repository must be an aws_ecr.IRepository, got 'repo'"),
])
def test_bad_image_and_data_factories_are_rejected(factory, message):
    with pytest.raises(ConfigError, match=message):
        factory()


def test_token_uris_pass_through():
    stack = new_stack()
    uri = cdk.Fn.import_value("ImageUri")
    model = ServingModel(stack, "Model", image=uri, model_data=ModelData.from_s3_url(cdk.Fn.import_value("Data")))
    assert stack.resolve(model.image_uri) == {"Fn::ImportValue": "ImageUri"}


def test_a_missing_asset_path_says_where_a_relative_one_was_read_from():
    with pytest.raises(ConfigError, match=r"ModelData: path must be an existing \.tar\.gz archive or folder, got "
                                          r"'no/such\.tar\.gz': no such file or folder \(a relative path is read from /"):
        ModelData.from_asset("no/such.tar.gz")
