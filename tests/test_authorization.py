"""The emulator's authorization: iam-simulate decides, the rules table says what AWS authorizes for each call, and a
refused request fails as AWS fails it (issue 20)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from shadow_emulator.authorization.evaluator import PolicyEvaluator
from shadow_emulator.authorization.least_privilege import render_justifications
from shadow_emulator.authorization.rules import DERIVED, RULES, SERVICE_ACTS, render_markdown
from shadow_emulator.ports import free_port, port_in_use

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT, REGION = "123456789012", "us-east-1"
IAM_DATA = ROOT / "node_modules" / "@cloud-copilot" / "iam-data" / "data" / "actions"
ROOT_DELEGATION = {"Version": "2012-10-17", "Statement": [{"Sid": "EnableIAM", "Effect": "Allow",
                                                             "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                             "Action": "kms:*", "Resource": "*"}]}


def simulation(action: str, resource: str, identity: list[dict], resource_policy: dict | None = None,
               context: dict | None = None) -> dict:
    found = {"identityPolicies": [{"name": f"p{i}", "policy": {"Version": "2012-10-17", "Statement": s}}
                                  for i, s in enumerate(identity)],
             "serviceControlPolicies": [], "resourceControlPolicies": [],
             "request": {"action": action, "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/Workflow/states",
                         "resource": {"resource": resource, "accountId": ACCOUNT}, "contextVariables": context or {}}}
    if resource_policy is not None:
        found["resourcePolicy"] = resource_policy
    return found


@pytest.fixture(scope="module")
def evaluator():
    with PolicyEvaluator() as running:
        yield running


def test_the_evaluator_decides_identity_and_key_policies_together(evaluator):
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"
    grant = [{"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key}]
    assert evaluator.evaluate(simulation("kms:Decrypt", key, [grant], ROOT_DELEGATION)).allowed
    # The publish bug of issue 20: sns:Publish alone gives nothing on the topic's key.
    publish_only = [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]
    refused = evaluator.evaluate(simulation("kms:GenerateDataKey", key, [publish_only], ROOT_DELEGATION))
    assert (refused.result, refused.identity) == ("ImplicitlyDenied", "ImplicitlyDenied")
    # A key policy without the account's delegation makes IAM policies count for nothing (aws-cdk #12810's class).
    other = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Other"},
                                                     "Action": "kms:*", "Resource": "*"}]}
    assert not evaluator.evaluate(simulation("kms:Decrypt", key, [grant], other)).allowed
    deny = [{"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}]
    assert evaluator.evaluate(simulation("kms:Decrypt", key, [grant, deny], ROOT_DELEGATION)).result == "ExplicitlyDenied"


def test_an_encryption_context_condition_is_evaluated_not_dropped(evaluator):
    # iam-simulate 0.1.173 drops kms:EncryptionContext:aws:s3:arn from its checked path; evaluator.mjs puts it back.
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"
    scoped = [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key,
               "Condition": {"StringEquals": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::capture"}}}]
    for value, allowed in (("arn:aws:s3:::capture", True), ("arn:aws:s3:::other", False)):
        decided = evaluator.evaluate(simulation("kms:Decrypt", key, [scoped], ROOT_DELEGATION,
                                                {"kms:EncryptionContext:aws:s3:arn": value}))
        assert decided.allowed is allowed, value
        assert decided.ignored_context_keys == ()


def test_a_tls_only_bucket_policy_allows_what_the_emulator_stands_for_https(evaluator):
    tls_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                                       "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
                                                       "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
    put = [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}]
    assert evaluator.evaluate(simulation("s3:PutObject", "arn:aws:s3:::b/k", [put], tls_only,
                                         {"aws:SecureTransport": "true"})).allowed
    assert evaluator.evaluate(simulation("s3:PutObject", "arn:aws:s3:::b/k", [put], tls_only,
                                         {"aws:SecureTransport": "false"})).result == "ExplicitlyDenied"


def _resource_types(action: str) -> list[str]:
    service, _, name = action.partition(":")
    return [r["name"] for r in json.loads((IAM_DATA / f"{service}.json").read_text())[name.lower()]["resourceTypes"]]


def _required_resource_types(action: str) -> list[str]:
    service, _, name = action.partition(":")
    actions = json.loads((IAM_DATA / f"{service}.json").read_text())
    assert name.lower() in actions, f"{action} is not in the Service Authorization Reference"
    return [r["name"] for r in actions[name.lower()]["resourceTypes"] if r.get("required")]


def test_every_rule_names_an_action_of_the_authorization_reference_on_its_resources():
    checks = [(rule.call, check, rule.note) for rule in RULES for check in rule.checks]
    checks += [(d.name, check, "") for d in DERIVED for check in d.checks]
    checks += [(a.name, check, "") for a in SERVICE_ACTS for check in a.checks]
    for name, check, note in checks:
        required = _required_resource_types(check.action)
        if check.resources == ("*",):
            assert not required or note, f"{name}: {check.action} is authorized on {required}, not on * (say why)"
        else:
            assert _resource_types(check.action), f"{name}: {check.action} has no resource type: authorize it on *"
    # Both resource types are required (and both are checked) where the reference says so.
    for call in ("sagemaker:UpdateEndpoint", "sagemaker:CreateEndpoint"):
        rule = next(rule for rule in RULES if rule.call == call)
        assert _required_resource_types(rule.checks[0].action) == ["endpoint", "endpoint-config"]
        assert [r.split(":")[-1].split("/")[0] for r in rule.checks[0].resources] == ["endpoint", "endpoint-config"]


def test_every_row_cites_an_aws_page_and_the_docs_render_the_table():
    for row in (*RULES, *DERIVED, *SERVICE_ACTS):
        assert row.source.startswith("https://docs.aws.amazon.com/"), row
    assert len({rule.call for rule in RULES}) == len(RULES), "one row per call"
    page = (ROOT / "docs" / "permissions.md").read_text()
    assert render_markdown() in page, "docs/permissions.md is out of date: python -m shadow_emulator.authorization.rules"
    assert render_justifications() in page, "docs/permissions.md's unused grants are out of date: " \
        "least_privilege.render_justifications()"


@pytest.fixture(scope="module")
def emulator():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "shadow_emulator", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not port_in_use("localhost", port):
        assert process.poll() is None and time.monotonic() < deadline, "the emulator did not start"
        time.sleep(0.1)
    yield f"http://localhost:{port}"
    process.terminate()
    process.wait(timeout=15)


def client(url: str, service: str, credentials: dict | None = None):
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"} if credentials is None else {
        "aws_access_key_id": credentials["AccessKeyId"], "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"]}
    return boto3.client(service, endpoint_url=url, region_name=REGION, **keys)


def role_session(url: str, name: str, statements: list[dict]) -> dict:
    iam = client(url, "iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                     "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="grants",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return client(url, "sts").assume_role(RoleArn=arn, RoleSessionName="test")["Credentials"]


def test_publishing_to_an_encrypted_topic_needs_the_key_as_sns_asks_for_it(emulator):
    key = client(emulator, "kms").create_key(Policy=json.dumps(ROOT_DELEGATION))["KeyMetadata"]["Arn"]
    topic = client(emulator, "sns").create_topic(Name="verdicts", Attributes={"KmsMasterKeyId": key})["TopicArn"]
    publish_only = role_session(emulator, "PublishOnly", [{"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}])
    with pytest.raises(ClientError) as refused:
        client(emulator, "sns", publish_only).publish(TopicArn=topic, Message="PROMOTE")
    error = refused.value.response["Error"]
    assert error["Code"] == "KMSAccessDenied"
    assert error["Message"] == (f"User: arn:aws:sts::{ACCOUNT}:assumed-role/PublishOnly/test is not authorized to perform: "
                                f"kms:GenerateDataKey on resource: {key} because no identity-based policy allows the "
                                "kms:GenerateDataKey action")
    granted = role_session(emulator, "PublishWithKey", [
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic},
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key}])
    assert client(emulator, "sns", granted).publish(TopicArn=topic, Message="PROMOTE")["MessageId"]


def test_update_endpoint_is_authorized_on_the_endpoint_and_its_new_config(emulator):
    endpoint = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/churn"
    endpoint_only = role_session(emulator, "EndpointOnly", [
        {"Effect": "Allow", "Action": "sagemaker:UpdateEndpoint", "Resource": endpoint}])
    with pytest.raises(ClientError) as refused:  # aws-cdk #11594
        client(emulator, "sagemaker", endpoint_only).update_endpoint(EndpointName="churn", EndpointConfigName="churn-v2")
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDeniedException", 400)
    assert f"sagemaker:UpdateEndpoint on resource: arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/churn-v2" \
        in error["Error"]["Message"]


def test_s3_refuses_as_s3_does_and_a_call_without_a_rule_fails_loudly(emulator):
    admin = client(emulator, "s3")
    admin.create_bucket(Bucket="capture-bucket")
    admin.put_bucket_policy(Bucket="capture-bucket", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::capture-bucket/*"}]}))
    reader = role_session(emulator, "Reader", [{"Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"],
                                                "Resource": "arn:aws:s3:::capture-bucket/*"}])
    s3 = client(emulator, "s3", reader)
    s3.put_object(Bucket="capture-bucket", Key="a.jsonl", Body=b"{}")
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket="capture-bucket", Key="a.jsonl")
    assert (refused.value.response["Error"]["Code"], refused.value.response["ResponseMetadata"]["HTTPStatusCode"]) == \
        ("AccessDenied", 403)
    assert "with an explicit deny in a resource-based policy" in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError, match="no authorization rule for sagemaker:ListTrainingJobs"):
        client(emulator, "sagemaker").list_training_jobs()
