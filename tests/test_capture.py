"""CaptureStore: encrypted, private, TLS-only, retained; grants for readers and writers."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from conftest import actions_of, cfn_lint_findings, new_stack, policy_statements, template_of

from shadow_constructs import CaptureStore


@pytest.fixture(scope="module")
def default_store():
    stack = new_stack()
    store = CaptureStore(stack, "Store")
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    writer = iam.Role(stack, "Writer", assumed_by=iam.AccountRootPrincipal())
    store.grant_read(reader, "datacapture/churn")
    store.grant_write(writer, "datacapture")
    return stack, store, template_of(stack)


def bucket_of(stack, store, template):
    return template.find_resources("AWS::S3::Bucket")[stack.get_logical_id(store.bucket.node.default_child)]


def test_bucket_is_kms_encrypted_with_a_rotating_customer_key(default_store):
    stack, store, template = default_store
    bucket = bucket_of(stack, store, template)
    key_id = stack.get_logical_id(store.encryption_key.node.default_child)
    rule, = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                     "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]}}
    assert rule["BucketKeyEnabled"] is True
    assert template.find_resources("AWS::KMS::Key")[key_id]["Properties"]["EnableKeyRotation"] is True


def test_bucket_blocks_public_access_and_is_versioned(default_store):
    stack, store, template = default_store
    props = bucket_of(stack, store, template)["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_bucket_policy_denies_requests_without_tls(default_store):
    stack, store, template = default_store
    bucket_id = stack.get_logical_id(store.bucket.node.default_child)
    policies = [p["Properties"] for p in template.find_resources("AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
    statement, = policies[0]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_server_access_logs_go_to_their_own_bucket(default_store):
    stack, store, template = default_store
    logging = bucket_of(stack, store, template)["Properties"]["LoggingConfiguration"]
    assert logging["DestinationBucketName"] == {"Ref": stack.get_logical_id(store.access_logs_bucket.node.default_child)}
    assert "AccessControl" not in template.find_resources("AWS::S3::Bucket")[
        stack.get_logical_id(store.access_logs_bucket.node.default_child)]["Properties"]


def test_bucket_key_and_logs_are_retained_by_default(default_store):
    stack, store, template = default_store
    assert store.retained
    for kind in ("AWS::S3::Bucket", "AWS::KMS::Key"):
        assert {r["DeletionPolicy"] for r in template.find_resources(kind).values()} == {"Retain"}
    assert template.find_resources("Custom::S3AutoDeleteObjects") == {}


def test_default_store_never_expires_data(default_store):
    stack, store, template = default_store
    rules = bucket_of(stack, store, template)["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules == [{"Id": "AbortIncompleteUploads", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                      "Status": "Enabled"}]


def test_template_is_cfn_lint_clean_without_app_feature_flags(default_store):
    _, _, template = default_store
    assert cfn_lint_findings(json.dumps(template.to_json())) == []


def test_grant_read_covers_objects_under_the_prefix_and_decrypt(default_store):
    stack, store, template = default_store
    statements = policy_statements(template, "ReaderDefaultPolicy")
    reads = [s for s in statements if "s3:GetObject*" in actions_of(s)]
    assert reads and any(isinstance(r, dict) and r.get("Fn::Join", [None, []])[1][-1:] == ["/datacapture/churn/*"]
                         for s in reads for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]))
    assert any("kms:Decrypt" in actions_of(s) for s in statements)
    assert not any(a.startswith("s3:Delete") or a.startswith("s3:Put") for s in statements for a in actions_of(s))


def test_grant_write_is_put_only(default_store):
    _, _, template = default_store
    statements = policy_statements(template, "WriterDefaultPolicy")
    s3_actions = {a for s in statements for a in actions_of(s) if a.startswith("s3:")}
    assert "s3:PutObject" in s3_actions
    assert not any(a.startswith("s3:Delete") or a.startswith("s3:Get") for a in s3_actions)


def test_destroy_opt_in_deletes_bucket_objects_and_key():
    stack = new_stack()
    CaptureStore(stack, "Demo", removal_policy=cdk.RemovalPolicy.DESTROY)
    template = template_of(stack)
    assert {r["DeletionPolicy"] for r in template.find_resources("AWS::S3::Bucket").values()} == {"Delete"}
    assert {r["DeletionPolicy"] for r in template.find_resources("AWS::KMS::Key").values()} == {"Delete"}
    assert len(template.find_resources("Custom::S3AutoDeleteObjects")) == 2


def test_lifecycle_expiry_and_infrequent_access_are_configurable():
    stack = new_stack()
    store = CaptureStore(stack, "Store", expiration=cdk.Duration.days(365),
                         infrequent_access_after=cdk.Duration.days(60), server_access_logs=False)
    template = template_of(stack)
    rules = bucket_of(stack, store, template)["Properties"]["LifecycleConfiguration"]["Rules"]
    captured = next(r for r in rules if r["Id"] == "CapturedData")
    assert captured["ExpirationInDays"] == 365
    assert captured["Transitions"] == [{"StorageClass": "STANDARD_IA", "TransitionInDays": 60}]
    assert store.access_logs_bucket is None
    assert len(template.find_resources("AWS::S3::Bucket")) == 1


def test_given_key_is_used():
    stack = new_stack()
    key = kms.Key(stack, "Mine")
    store = CaptureStore(stack, "Store", encryption_key=key)
    assert store.encryption_key is key
    assert len(template_of(stack).find_resources("AWS::KMS::Key")) == 1
