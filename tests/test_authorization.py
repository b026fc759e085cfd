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

pytestmark = pytest.mark.outer  # the outer loop (make test-fast skips it): the emulator server

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



def trust_policy(service: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                                                    "Action": "sts:AssumeRole"}]}


def trusting(url: str, name: str, service: str) -> str:
    """A role whose trust policy lets ``service`` (only) assume it, made through the emulated IAM; its ARN."""
    return client(url, "iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(service)))[
        "Role"]["Arn"]


PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
#: Step Functions checks at CreateStateMachine (and UpdateStateMachine with a new roleArn) that it may assume the
#: execution role (https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html: the role's
#: trust policy must let states.amazonaws.com assume it); else AccessDeniedException (HTTP 400) with this message.
STATES_REFUSAL = ("Neither the global service principal states.amazonaws.com, nor the regional one is authorized to "
                  "assume the provided role.")
#: Lambda checks at CreateFunction (and UpdateFunctionConfiguration with a new Role) that it may assume the execution
#: role (https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html: the trust policy must let
#: lambda.amazonaws.com assume it); else InvalidParameterValueException (HTTP 400) with this message.
LAMBDA_REFUSAL = "The role defined for the function cannot be assumed by Lambda."
EMPTY_ZIP = b"PK\x05\x06" + b"\x00" * 18


def wait_for(describe, done, what: str):
    deadline = time.monotonic() + 30
    while not done(described := describe()):
        assert time.monotonic() < deadline, f"{what}: {described}"
        time.sleep(0.1)
    return described


def settled_stack(cfn, name: str) -> dict:
    return wait_for(lambda: cfn.describe_stacks(StackName=name)["Stacks"][0],
                    lambda stack: not stack["StackStatus"].endswith("_IN_PROGRESS"), f"stack {name}")


def ended_execution(sfn, execution: str) -> dict:
    return wait_for(lambda: sfn.describe_execution(executionArn=execution), lambda e: e["status"] != "RUNNING", execution)


def test_create_state_machine_refuses_a_role_step_functions_may_not_assume(emulator):
    sfn = client(emulator, "stepfunctions")
    lambda_only = trusting(emulator, "TrustsLambdaOnly", "lambda.amazonaws.com")
    with pytest.raises(ClientError) as refused:
        sfn.create_state_machine(name="untrusted", definition=PASS, roleArn=lambda_only)
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDeniedException", 400)
    assert error["Error"]["Message"] == STATES_REFUSAL
    assert "untrusted" not in [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    states = trusting(emulator, "TrustsStates", "states.amazonaws.com")
    machine = sfn.create_state_machine(name="trusted", definition=PASS, roleArn=states)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name="first")["executionArn"]
    assert execution == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:trusted:first"
    assert ended_execution(sfn, execution)["status"] == "SUCCEEDED"


def test_an_execution_whose_role_can_no_longer_be_assumed_fails_with_the_refusal(emulator):
    """The role was trusted at CreateStateMachine and is gone since (its stack deleted): StartExecution is answered
    with the execution's ARN, and the execution fails saying why (the emulator used to drop the request)."""
    cfn, sfn = client(emulator, "cloudformation"), client(emulator, "stepfunctions")
    template = {"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "GoneLater", "AssumeRolePolicyDocument": trust_policy("states.amazonaws.com")}}}}
    cfn.create_stack(StackName="gone-later", TemplateBody=json.dumps(template))
    assert settled_stack(cfn, "gone-later")["StackStatus"] == "CREATE_COMPLETE"
    machine = sfn.create_state_machine(name="orphan", definition=PASS,
                                       roleArn=f"arn:aws:iam::{ACCOUNT}:role/GoneLater")["stateMachineArn"]
    cfn.delete_stack(StackName="gone-later")
    execution = sfn.start_execution(stateMachineArn=machine, name="after")["executionArn"]
    assert execution == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:orphan:after"
    ended = ended_execution(sfn, execution)
    assert (ended["status"], ended["error"]) == ("FAILED", "States.Runtime")
    assert ended["cause"].startswith(STATES_REFUSAL) and "sts:AssumeRole" in ended["cause"], ended
    events = [event["type"] for event in sfn.get_execution_history(executionArn=execution)["events"]]
    assert events == ["ExecutionStarted", "ExecutionFailed"]


def stack_with(role_trusts: str, resource: dict) -> str:
    """A template: a role trusting ``role_trusts``, and ``resource`` (logical id Resource) given its ARN where it says
    ``ROLE``."""
    role_arn = {"Fn::GetAtt": ["Role", "Arn"]}
    properties = {key: role_arn if value == "ROLE" else value for key, value in resource["Properties"].items()}
    return json.dumps({"Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust_policy(role_trusts)}},
        "Resource": {**resource, "Properties": properties}}})


@pytest.mark.parametrize("resource, refusal, service, handler_error", [
    ({"Type": "AWS::StepFunctions::StateMachine", "Properties": {
        "StateMachineName": "stack-machine", "DefinitionString": PASS, "RoleArn": "ROLE"}},
     STATES_REFUSAL, "Sfn", "AccessDenied"),
    ({"Type": "AWS::Lambda::Function", "Properties": {
        "FunctionName": "stack-function", "Runtime": "python3.12", "Handler": "index.handler",
        "Code": {"ZipFile": "def handler(event, context):\n    return event\n"}, "Role": "ROLE"}},
     LAMBDA_REFUSAL, "Lambda", "InvalidRequest"),
], ids=["state-machine", "function"])
def test_a_stack_whose_resource_role_its_service_may_not_assume_rolls_back_with_the_refusal(
        emulator, resource, refusal, service, handler_error):
    """The role of the same stack, created just before, trusts the other service: the resource's create fails with
    what the service answered, as CloudFormation words a resource handler's error, and the stack rolls back."""
    cfn = client(emulator, "cloudformation")
    other = "lambda.amazonaws.com" if service == "Sfn" else "states.amazonaws.com"
    name = f"untrusted-{service.lower()}"
    cfn.create_stack(StackName=name, TemplateBody=stack_with(other, resource))
    stack = settled_stack(cfn, name)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE", stack
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    failed = [(e["LogicalResourceId"], e["ResourceStatusReason"]) for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert [logical for logical, _ in failed] == ["Resource"], events
    reason = failed[0][1]
    assert reason.startswith(f'Resource handler returned message: "{refusal} (Service: {service}, Status Code: 400, ')
    assert reason.endswith(f"HandlerErrorCode: {handler_error})")
    assert refusal in stack["StackStatusReason"]
    assert not cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    assert "stack-machine" not in [m["name"] for m in client(emulator, "stepfunctions").list_state_machines()["stateMachines"]]
    assert "stack-function" not in [f["FunctionName"] for f in client(emulator, "lambda").list_functions()["Functions"]]
    # With a role its service may assume, the same stack is created.
    cfn.create_stack(StackName=f"{name}-trusted", TemplateBody=stack_with(
        "states.amazonaws.com" if service == "Sfn" else "lambda.amazonaws.com", resource))
    assert settled_stack(cfn, f"{name}-trusted")["StackStatus"] == "CREATE_COMPLETE"
    cfn.delete_stack(StackName=f"{name}-trusted")


def test_a_stack_update_giving_its_state_machine_a_role_step_functions_may_not_assume_rolls_back(emulator):
    cfn, sfn = client(emulator, "cloudformation"), client(emulator, "stepfunctions")

    def template(role: str) -> str:
        return json.dumps({"Resources": {
            "Trusted": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust_policy("states.amazonaws.com")}},
            "LambdaOnly": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust_policy("lambda.amazonaws.com")}},
            "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
                "StateMachineName": "updated-machine", "DefinitionString": PASS, "RoleArn": {"Fn::GetAtt": [role, "Arn"]}}}}})

    cfn.create_stack(StackName="machine-update", TemplateBody=template("Trusted"))
    assert settled_stack(cfn, "machine-update")["StackStatus"] == "CREATE_COMPLETE"
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:updated-machine"
    role = sfn.describe_state_machine(stateMachineArn=machine)["roleArn"]
    cfn.update_stack(StackName="machine-update", TemplateBody=template("LambdaOnly"))
    stack = settled_stack(cfn, "machine-update")
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE" and STATES_REFUSAL in stack["StackStatusReason"]
    events = cfn.describe_stack_events(StackName="machine-update")["StackEvents"]
    failed = [(e["LogicalResourceId"], e["ResourceStatusReason"]) for e in events if e["ResourceStatus"] == "UPDATE_FAILED"]
    assert [logical for logical, _ in failed] == ["Machine"] and STATES_REFUSAL in failed[0][1], events
    assert sfn.describe_state_machine(stateMachineArn=machine)["roleArn"] == role
    cfn.delete_stack(StackName="machine-update")


def test_create_function_and_the_updates_refuse_a_role_their_service_may_not_assume():
    """The API answers, in-process (the emulator's server has no rules-table row for CreateFunction,
    UpdateFunctionConfiguration or UpdateStateMachine yet: it refuses them as unknown calls before they reach moto)."""
    from moto import mock_aws

    from shadow_emulator.authorization import AuthorizationDouble

    with mock_aws(), AuthorizationDouble():
        iam = boto3.client("iam", region_name=REGION)

        def role(name: str, service: str) -> str:
            return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(service)))["Role"]["Arn"]

        states_only, lambda_only = role("StatesOnly", "states.amazonaws.com"), role("LambdaOnly", "lambda.amazonaws.com")
        lam = boto3.client("lambda", region_name=REGION)
        function = {"FunctionName": "f", "Runtime": "python3.12", "Handler": "index.handler", "Code": {"ZipFile": EMPTY_ZIP}}
        with pytest.raises(ClientError) as refused:
            lam.create_function(Role=states_only, **function)
        error = refused.value.response
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Message"]) == \
            ("InvalidParameterValueException", 400, LAMBDA_REFUSAL)
        lam.create_function(Role=lambda_only, **function)
        with pytest.raises(ClientError, match="cannot be assumed by Lambda") as refused:
            lam.update_function_configuration(FunctionName="f", Role=states_only)
        assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
        assert lam.get_function_configuration(FunctionName="f")["Role"] == lambda_only

        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(name="m", definition=PASS, roleArn=states_only)["stateMachineArn"]
        with pytest.raises(ClientError) as refused:
            sfn.update_state_machine(stateMachineArn=machine, roleArn=lambda_only)
        error = refused.value.response
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Message"]) == \
            ("AccessDeniedException", 400, STATES_REFUSAL)
        assert sfn.describe_state_machine(stateMachineArn=machine)["roleArn"] == states_only


def test_a_key_cloudformation_made_is_described_and_its_policy_decides(emulator):
    """moto's KMS read a CloudFormation-made key's policy (a dict there) as a string and answered DescribeKey 500;
    the key policy decides in the authorization: DescribeKey works for the account, and a role the policy does not
    name (and no identity policy allows) is refused as KMS refuses."""
    cfn = client(emulator, "cloudformation")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*",
                                                      "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]}
    cfn.create_stack(StackName="key-policy-dict", TemplateBody=json.dumps({"Resources": {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": policy}}}}))
    assert settled_stack(cfn, "key-policy-dict")["StackStatus"] == "CREATE_COMPLETE"
    key = cfn.describe_stack_resource(StackName="key-policy-dict", LogicalResourceId="Key")[
        "StackResourceDetail"]["PhysicalResourceId"]
    assert client(emulator, "kms").describe_key(KeyId=key)["KeyMetadata"]["KeyId"] == key
    nobody = role_session(emulator, "key-describer-without-rights", [
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}])
    with pytest.raises(ClientError) as refused:
        client(emulator, "kms", nobody).describe_key(KeyId=key)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "is not authorized to perform: kms:DescribeKey" in str(refused.value)
