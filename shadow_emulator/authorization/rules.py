"""The one table of authorization rules: which requests AWS authorizes for each call, and on whose behalf.

Each ``Rule`` names a call (botocore's service and operation names) and the authorization requests AWS makes for
it: the IAM action, every resource the Service Authorization Reference lists for that action, and the context
keys AWS sets. ``follows`` names the requests a service then makes WITH THE CALLER'S RIGHTS (``DERIVED``): S3 asking
KMS for a data key for an SSE-KMS object, SNS for an encrypted topic, SageMaker for the endpoint's storage key,
Athena reading the Glue catalog and S3 as the caller. ``SERVICE_ACTS`` are what services do with a role the user
passed them (SageMaker with a model's execution role while it serves).

Every row cites the AWS page it comes from; ``docs/permissions.md`` renders this table (``python -m
shadow_emulator.authorization.rules`` prints it). A call with no row is refused by the emulator (``UnknownCall``),
so a new runtime call cannot slip through unchecked.

Resources and context values are templates over the call: ``{Name}`` is the call's parameter (botocore's member
name), ``{Name|lower}`` the same lower-cased (SageMaker's ARNs are), ``{region}`` / ``{account}`` the request's,
and the lower-case names of ``COMPUTED`` values derived from parameters (``{object}``: the S3 object's ARN).
"""

from __future__ import annotations

from dataclasses import dataclass

SAR = "https://docs.aws.amazon.com/service-authorization/latest/reference/"
SAGEMAKER = SAR + "list_amazonsagemaker.html"
S3 = SAR + "list_amazons3.html"
KMS = SAR + "list_awskeymanagementservice.html"
SNS = SAR + "list_amazonsns.html"
CLOUDWATCH = SAR + "list_amazoncloudwatch.html"
STATES = SAR + "list_awsstepfunctions.html"
STS = SAR + "list_awssecuritytokenservice.html"
CLOUDFORMATION = SAR + "list_awscloudformation.html"
SSM = SAR + "list_awssystemsmanager.html"
LAMBDA = SAR + "list_awslambda.html"
EVENTS = SAR + "list_amazoneventbridge.html"
ATHENA = SAR + "list_amazonathena.html"
GLUE = SAR + "list_awsglue.html"
AUTOSCALING = SAR + "list_applicationautoscaling.html"
LOGS = SAR + "list_amazoncloudwatchlogs.html"
ECR = SAR + "list_amazonelasticcontainerregistry.html"
IAM = SAR + "list_awsidentityandaccessmanagementiam.html"
XRAY = SAR + "list_awsx-ray.html"

ENDPOINT = "arn:aws:sagemaker:{region}:{account}:endpoint/{EndpointName|lower}"
ENDPOINT_CONFIG = "arn:aws:sagemaker:{region}:{account}:endpoint-config/{EndpointConfigName|lower}"
EXPERIMENT = "arn:aws:sagemaker:{region}:{account}:inference-experiment/{Name|lower}"
STACK = "{stack}"
WORKGROUP = "arn:aws:athena:{region}:{account}:workgroup/{WorkGroup}"


@dataclass(frozen=True)
class Check:
    """One authorization request: ``action`` on each of ``resources`` (AWS authorizes every one), with ``context``."""

    action: str
    resources: tuple[str, ...] = ("*",)
    context: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Rule:
    """What AWS authorizes for one call.

    :param call: ``service:Operation`` by botocore's names (``sagemaker:UpdateEndpoint``).
    :param checks: the caller's authorization requests.
    :param follows: names of ``DERIVED`` requests the service then makes with the caller's rights.
    :param source: the AWS page the row comes from.
    :param note: why, when the row is not read straight off the Service Authorization Reference.
    """

    call: str
    checks: tuple[Check, ...]
    source: str
    follows: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Derived:
    """Requests a service makes with the caller's rights when a call needs them (``when``, in words)."""

    name: str
    when: str
    checks: tuple[Check, ...]
    source: str
    quote: str = ""
    error: str = ""  # the error code the service answers the caller with when it is refused (default: the call's)
    #: "" : a refusal refuses the call; "query": the call succeeds and the query it starts ends FAILED with the reason
    #: (Athena checks the caller's rights on the catalog and the data while it runs the query).
    fails: str = ""


def _rule(call: str, action: str | None = None, *resources: str, source: str, context: tuple[tuple[str, str], ...] = (),
          follows: tuple[str, ...] = (), note: str = "") -> Rule:
    """A row whose one check is ``action`` (default: the call's own name as an IAM action)."""
    service, _, operation = call.partition(":")
    action = action or f"{service}:{operation}"
    return Rule(call, (Check(action, tuple(resources) or ("*",), context),), source, follows, note)


S3_OBJECT = "arn:aws:s3:::{Bucket}/{Key}"
S3_BUCKET = "arn:aws:s3:::{Bucket}"
SSE = (("s3:x-amz-server-side-encryption", "{header:x-amz-server-side-encryption}"),
       ("s3:x-amz-server-side-encryption-aws-kms-key-id", "{header:x-amz-server-side-encryption-aws-kms-key-id}"))

RULES: tuple[Rule, ...] = (
    # SageMaker control plane
    _rule("sagemaker:DescribeEndpoint", None, ENDPOINT, source=SAGEMAKER),
    _rule("sagemaker:DescribeEndpointConfig", None, ENDPOINT_CONFIG, source=SAGEMAKER),
    _rule("sagemaker:CreateEndpointConfig", None, ENDPOINT_CONFIG, source=SAGEMAKER),
    _rule("sagemaker:DeleteEndpointConfig", None, ENDPOINT_CONFIG, source=SAGEMAKER),
    _rule("sagemaker:ListEndpoints", source=SAGEMAKER, note="no resource type: the action is authorized on *"),
    _rule("sagemaker:ListEndpointConfigs", source=SAGEMAKER, note="no resource type"),
    _rule("sagemaker:ListModels", source=SAGEMAKER, note="no resource type"),
    _rule("sagemaker:DescribeModel", None, "arn:aws:sagemaker:{region}:{account}:model/{ModelName|lower}",
          source=SAGEMAKER),
    _rule("sagemaker:UpdateEndpoint", None, ENDPOINT, ENDPOINT_CONFIG, source=SAGEMAKER, follows=("endpoint-storage-key",),
          note="both resource types are required (aws-cdk #11594 granted the endpoint only)"),
    _rule("sagemaker:CreateEndpoint", None, ENDPOINT, ENDPOINT_CONFIG, source=SAGEMAKER,
          follows=("endpoint-storage-key",)),
    _rule("sagemaker:UpdateEndpointWeightsAndCapacities", None, ENDPOINT, source=SAGEMAKER),
    _rule("sagemaker:CreateInferenceExperiment", None, EXPERIMENT, source=SAGEMAKER, follows=("pass-experiment-role",)),
    _rule("sagemaker:DescribeInferenceExperiment", None, EXPERIMENT, source=SAGEMAKER),
    _rule("sagemaker:StopInferenceExperiment", None, EXPERIMENT, source=SAGEMAKER),
    _rule("sagemaker:ListInferenceExperiments", source=SAGEMAKER, note="no resource type"),
    _rule("sagemaker:ListTags", None, "{ResourceArn}", source=SAGEMAKER),
    # SageMaker runtime
    _rule("sagemaker-runtime:InvokeEndpoint", "sagemaker:InvokeEndpoint", ENDPOINT, source=SAGEMAKER),
    # S3
    _rule("s3:GetObject", None, S3_OBJECT, source=S3, follows=("s3-kms-decrypt",)),
    _rule("s3:HeadObject", "s3:GetObject", S3_OBJECT, source=S3,
          note="HeadObject is authorized as s3:GetObject; it returns metadata only, so S3 asks KMS for nothing"),
    _rule("s3:PutObject", None, S3_OBJECT, source=S3, context=SSE, follows=("s3-kms-encrypt",)),
    _rule("s3:CreateMultipartUpload", "s3:PutObject", S3_OBJECT, source=S3, context=SSE, follows=("s3-kms-encrypt",)),
    _rule("s3:UploadPart", "s3:PutObject", S3_OBJECT, source=S3),
    _rule("s3:CompleteMultipartUpload", "s3:PutObject", S3_OBJECT, source=S3),
    _rule("s3:DeleteObject", None, S3_OBJECT, source=S3),
    _rule("s3:ListObjectsV2", "s3:ListBucket", S3_BUCKET, source=S3, context=(("s3:prefix", "{Prefix}"),)),
    _rule("s3:ListObjects", "s3:ListBucket", S3_BUCKET, source=S3, context=(("s3:prefix", "{Prefix}"),)),
    _rule("s3:HeadBucket", "s3:ListBucket", S3_BUCKET, source=S3),
    _rule("s3:GetBucketLocation", None, S3_BUCKET, source=S3),
    _rule("s3:CreateBucket", None, S3_BUCKET, source=S3),
    _rule("s3:DeleteBucket", None, S3_BUCKET, source=S3),
    _rule("s3:PutBucketEncryption", "s3:PutEncryptionConfiguration", S3_BUCKET, source=S3),
    _rule("s3:PutBucketPolicy", None, S3_BUCKET, source=S3),
    _rule("s3:GetBucketPolicy", None, S3_BUCKET, source=S3),
    _rule("s3:GetBucketEncryption", "s3:GetEncryptionConfiguration", S3_BUCKET, source=S3),
    # CloudWatch
    _rule("cloudwatch:GetMetricData", source=CLOUDWATCH, note="no resource type"),
    _rule("cloudwatch:GetMetricStatistics", source=CLOUDWATCH, note="no resource type"),
    _rule("cloudwatch:ListMetrics", source=CLOUDWATCH, note="no resource type"),
    _rule("cloudwatch:PutMetricData", source=CLOUDWATCH, context=(("cloudwatch:namespace", "{Namespace}"),),
          note="no resource type; the namespace is the cloudwatch:namespace context key"),
    _rule("cloudwatch:DescribeAlarms", source=CLOUDWATCH, note="authorized per alarm; the emulator checks the call on *"),
    # Step Functions
    _rule("stepfunctions:StartExecution", "states:StartExecution", "{stateMachineArn}", source=STATES),
    _rule("stepfunctions:DescribeExecution", "states:DescribeExecution", "{executionArn}", source=STATES),
    _rule("stepfunctions:StopExecution", "states:StopExecution", "{executionArn}", source=STATES),
    _rule("stepfunctions:GetExecutionHistory", "states:GetExecutionHistory", "{executionArn}", source=STATES),
    _rule("stepfunctions:ListExecutions", "states:ListExecutions", "{stateMachineArn}", source=STATES),
    _rule("stepfunctions:SendTaskSuccess", "states:SendTaskSuccess", source=STATES, note="no resource type"),
    _rule("stepfunctions:SendTaskFailure", "states:SendTaskFailure", source=STATES, note="no resource type"),
    _rule("stepfunctions:DescribeStateMachine", "states:DescribeStateMachine", "{stateMachineArn}", source=STATES),
    _rule("stepfunctions:ListStateMachines", "states:ListStateMachines", source=STATES, note="no resource type"),
    _rule("stepfunctions:CreateStateMachine", "states:CreateStateMachine",
          "arn:aws:states:{region}:{account}:stateMachine:{name}", source=STATES, follows=("pass-state-machine-role",)),
    _rule("stepfunctions:DeleteStateMachine", "states:DeleteStateMachine", "{stateMachineArn}", source=STATES),
    # Lambda
    _rule("lambda:Invoke", "lambda:InvokeFunction", "{function}", source=LAMBDA),
    _rule("lambda:GetFunction", None, "{function}", source=LAMBDA),
    _rule("lambda:ListFunctions", source=LAMBDA, note="no resource type"),
    # SNS
    _rule("sns:Publish", None, "{TopicArn}", source=SNS, follows=("sns-kms",)),
    # EventBridge
    _rule("events:PutEvents", None, "{event_bus}", source=EVENTS),
    # Athena (StartQueryExecution then reads the catalog and S3 as the caller)
    _rule("athena:StartQueryExecution", None, WORKGROUP, source=ATHENA, follows=("athena-as-caller",)),
    _rule("athena:GetQueryExecution", None, "{workgroup_of_execution}", source=ATHENA),
    _rule("athena:GetQueryResults", None, "{workgroup_of_execution}", source=ATHENA, follows=("athena-results",)),
    _rule("athena:GetWorkGroup", None, "arn:aws:athena:{region}:{account}:workgroup/{WorkGroup}", source=ATHENA),
    _rule("athena:ListNamedQueries", source=ATHENA, note="authorized on the work group; the emulator checks *"),
    _rule("athena:GetNamedQuery", source=ATHENA, note="authorized on the work group; the emulator checks *"),
    # Application Auto Scaling
    _rule("application-autoscaling:DescribeScalableTargets", source=AUTOSCALING, note="no resource type"),
    _rule("application-autoscaling:DescribeScalingPolicies", source=AUTOSCALING, note="no resource type"),
    _rule("application-autoscaling:RegisterScalableTarget", source=AUTOSCALING, follows=("register-sagemaker-target",),
          note="authorized on the scalable target, which has no ARN before it exists: *"),
    _rule("application-autoscaling:PutScalingPolicy", source=AUTOSCALING, note="see RegisterScalableTarget"),
    _rule("application-autoscaling:DeregisterScalableTarget", source=AUTOSCALING, note="see RegisterScalableTarget"),
    _rule("application-autoscaling:DeleteScalingPolicy", source=AUTOSCALING, note="see RegisterScalableTarget"),
    # The CDK CLI: STS, SSM, CloudFormation (its deploy role passes CloudFormation the execution role)
    _rule("sts:GetCallerIdentity", source=STS, note="needs no permission: always allowed (the emulator still logs it)"),
    _rule("sts:AssumeRole", None, "{RoleArn}", source=STS,
          note="the role's trust policy is the resource policy: it must trust the caller, and the caller's own "
               "policy must allow it unless the trust policy names the caller itself"),
    _rule("ssm:GetParameter", None, "arn:aws:ssm:{region}:{account}:parameter{Name}", source=SSM),
    _rule("ssm:GetParameters", None, "{parameters}", source=SSM),
    _rule("cloudformation:CreateStack", None, STACK, source=CLOUDFORMATION, follows=("pass-stack-role",)),
    _rule("cloudformation:UpdateStack", None, STACK, source=CLOUDFORMATION, follows=("pass-stack-role",)),
    _rule("cloudformation:DeleteStack", None, STACK, source=CLOUDFORMATION, follows=("pass-stack-role",)),
    _rule("cloudformation:CreateChangeSet", None, STACK, source=CLOUDFORMATION, follows=("pass-stack-role",)),
    _rule("cloudformation:DescribeChangeSet", None, STACK, source=CLOUDFORMATION),
    _rule("cloudformation:ExecuteChangeSet", None, STACK, source=CLOUDFORMATION),
    _rule("cloudformation:DeleteChangeSet", None, STACK, source=CLOUDFORMATION),
    _rule("cloudformation:DescribeStacks", None, STACK, source=CLOUDFORMATION),
    _rule("cloudformation:DescribeStackEvents", None, STACK, source=CLOUDFORMATION),
    _rule("cloudformation:DescribeStackResources", None, STACK, source=CLOUDFORMATION),
    _rule("cloudformation:DescribeStackResource", "cloudformation:DescribeStackResources", STACK, source=CLOUDFORMATION,
          note="authorized as DescribeStackResources"),
    _rule("cloudformation:ListStackResources", None, STACK, source=CLOUDFORMATION),
    _rule("cloudformation:GetTemplate", None, STACK, source=CLOUDFORMATION),
    _rule("cloudformation:GetTemplateSummary", None, STACK, source=CLOUDFORMATION),
    _rule("cloudformation:ListStacks", source=CLOUDFORMATION, note="no resource type"),
    # What tests and the demo's set-up do as the administrator
    _rule("sns:CreateTopic", None, "arn:aws:sns:{region}:{account}:{Name}", source=SNS),
    _rule("iam:CreateRole", None, "arn:aws:iam::{account}:role/{RoleName}", source=IAM),
    _rule("iam:PutRolePolicy", None, "arn:aws:iam::{account}:role/{RoleName}", source=IAM),
    _rule("iam:CreateUser", None, "arn:aws:iam::{account}:user/{UserName}", source=IAM),
    _rule("iam:PutUserPolicy", None, "arn:aws:iam::{account}:user/{UserName}", source=IAM),
    _rule("iam:CreateAccessKey", None, "arn:aws:iam::{account}:user/{UserName}", source=IAM),
    _rule("kms:CreateKey", source=KMS, note="no resource type"),
    # KMS called directly (S3, SNS and SageMaker call it through DERIVED)
    _rule("kms:Decrypt", None, "{kms_key}", source=KMS),
    _rule("kms:GenerateDataKey", None, "{kms_key}", source=KMS),
    _rule("kms:DescribeKey", None, "{kms_key}", source=KMS),
)

DERIVED: tuple[Derived, ...] = (
    Derived("s3-kms-encrypt", "S3 stores the object with SSE-KMS (the request's header, else the bucket's default)",
            (Check("kms:GenerateDataKey", ("{object_kms_key}",),
                   (("kms:ViaService", "s3.{region}.amazonaws.com"),
                    ("kms:EncryptionContext:aws:s3:arn", "{s3_encryption_context}"))),),
            "https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html",
            "To upload an object encrypted with an AWS KMS key to Amazon S3, you need kms:GenerateDataKey permissions on "
            "the key.", error="AccessDenied"),
    Derived("s3-kms-decrypt", "the object is stored with SSE-KMS",
            (Check("kms:Decrypt", ("{object_kms_key}",),
                   (("kms:ViaService", "s3.{region}.amazonaws.com"),
                    ("kms:EncryptionContext:aws:s3:arn", "{s3_encryption_context}"))),),
            "https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html",
            "To download an object encrypted with an AWS KMS key, you need kms:Decrypt permissions on the key.",
            error="AccessDenied"),
    Derived("sns-kms", "the topic is encrypted (KmsMasterKeyId)",
            (Check("kms:GenerateDataKey", ("{topic_kms_key}",),
                   (("kms:ViaService", "sns.{region}.amazonaws.com"),
                    ("kms:EncryptionContext:aws:sns:topicArn", "{TopicArn}"))),
             Check("kms:Decrypt", ("{topic_kms_key}",),
                   (("kms:ViaService", "sns.{region}.amazonaws.com"),
                    ("kms:EncryptionContext:aws:sns:topicArn", "{TopicArn}")))),
            "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html",
            "publishers need kms:GenerateDataKey* and kms:Decrypt on the topic's key", error="KMSAccessDenied"),
    Derived("endpoint-storage-key", "the endpoint config names a KmsKeyId (instance storage encryption)",
            (Check("kms:CreateGrant", ("{config_kms_key}",),
                   (("kms:ViaService", "sagemaker.{region}.amazonaws.com"), ("kms:GrantIsForAWSResource", "true"))),
             Check("kms:DescribeKey", ("{config_kms_key}",),
                   (("kms:ViaService", "sagemaker.{region}.amazonaws.com"),))),
            "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html",
            "The KMS key policy must grant permission to the IAM role that you specify in your CreateEndpoint, "
            "UpdateEndpoint requests.", error="AccessDeniedException"),
    Derived("pass-experiment-role", "CreateInferenceExperiment passes RoleArn to SageMaker",
            (Check("iam:PassRole", ("{RoleArn}",), (("iam:PassedToService", "sagemaker.amazonaws.com"),)),),
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html",
            "To pass a role (and its permissions) to an AWS service, a user must have permissions to pass the role to "
            "the service.", error="AccessDeniedException"),
    Derived("pass-state-machine-role", "CreateStateMachine passes roleArn to Step Functions",
            (Check("iam:PassRole", ("{roleArn}",), (("iam:PassedToService", "states.amazonaws.com"),)),),
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html",
            "To pass a role (and its permissions) to an AWS service, a user must have permissions to pass the role to "
            "the service.", error="AccessDeniedException"),
    Derived("pass-stack-role", "the request names a service role (RoleARN) for CloudFormation",
            (Check("iam:PassRole", ("{RoleARN}",), (("iam:PassedToService", "cloudformation.amazonaws.com"),)),),
            "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html",
            "To pass a role (and its permissions) to an AWS service, a user must have permissions to pass the role to "
            "the service.", error="AccessDenied"),
    Derived("register-sagemaker-target", "RegisterScalableTarget of a SageMaker variant: Application Auto Scaling "
            "reads and resizes the variant with the caller's rights, and creates its service-linked role if missing",
            (Check("sagemaker:DescribeEndpoint", ("{scaled_endpoint}",)),
             Check("sagemaker:UpdateEndpointWeightsAndCapacities", ("{scaled_endpoint}",)),
             Check("iam:CreateServiceLinkedRole", ("{missing_scaling_role}",),
                   (("iam:AWSServiceName", "sagemaker.application-autoscaling.amazonaws.com"),))),
            "https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_id-based-policy-examples.html",
            "Permissions required for Application Auto Scaling API actions on SageMaker: sagemaker:DescribeEndpoint, "
            "sagemaker:UpdateEndpointWeightsAndCapacities (and iam:CreateServiceLinkedRole for the first registration)",
            error="AccessDeniedException"),
    Derived("athena-as-caller", "Athena runs the query: it reads the Glue catalog and the table's S3 data with the "
            "caller's rights and writes the results to the work group's location (refused: the query ends FAILED)",
            (Check("glue:GetDatabase", ("arn:aws:glue:{region}:{account}:catalog", "{query_databases}")),
             Check("glue:GetTable", ("arn:aws:glue:{region}:{account}:catalog", "{query_databases}", "{query_tables}")),
             Check("s3:GetBucketLocation", ("{query_source_bucket}",)),
             Check("s3:ListBucket", ("{query_source_bucket}",)),
             Check("s3:GetObject", ("{query_source_objects}",)),
             Check("kms:Decrypt", ("{query_source_kms_key}",), (("kms:ViaService", "s3.{region}.amazonaws.com"),)),
             Check("s3:GetBucketLocation", ("{query_results_bucket}",)),
             Check("s3:PutObject", ("{query_results_objects}",)),
             Check("kms:GenerateDataKey", ("{query_results_kms_key}",),
                   (("kms:ViaService", "s3.{region}.amazonaws.com"),))),
            "https://docs.aws.amazon.com/athena/latest/ug/security-iam-athena.html",
            "Athena reads the Data Catalog and the data in Amazon S3 with the permissions of the principal that runs the "
            "query.", error="AccessDeniedException", fails="query"),
    Derived("athena-results", "the caller reads the results, which Athena fetches from S3 with the caller's rights",
            (Check("s3:GetObject", ("{query_results_objects}",)),
             Check("kms:Decrypt", ("{query_results_kms_key}",), (("kms:ViaService", "s3.{region}.amazonaws.com"),))),
            "https://docs.aws.amazon.com/athena/latest/ug/encryption.html",
            "To read encrypted query results, the principal needs access to the key.", error="AccessDeniedException"),
)


@dataclass(frozen=True)
class ServiceAct:
    """What a service does with a role the user passed it, as that role (``service`` assumes it)."""

    name: str
    service: str
    checks: tuple[Check, ...]
    source: str
    quote: str = ""
    consequence: str = ""


SERVICE_ACTS: tuple[ServiceAct, ...] = (
    ServiceAct("model-archive", "sagemaker.amazonaws.com",
               (Check("s3:GetObject", ("{model_data_object}",)),
                Check("kms:Decrypt", ("{model_data_kms_key}",), (("kms:ViaService", "s3.{region}.amazonaws.com"),))),
               "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
               "SageMaker uses the execution role to download the model artifacts from Amazon S3.",
               "the variant fails to start: the endpoint creation or update fails"),
    ServiceAct("model-image", "sagemaker.amazonaws.com",
               (Check("ecr:GetAuthorizationToken"),
                Check("ecr:BatchGetImage", ("{image_repository}",)),
                Check("ecr:GetDownloadUrlForLayer", ("{image_repository}",))),
               "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
               "SageMaker uses the execution role to pull the inference image from Amazon ECR.",
               "the variant fails to start: the endpoint creation or update fails"),
    ServiceAct("capture-write", "sagemaker.amazonaws.com",
               (Check("s3:PutObject", ("{capture_object}",)),
                Check("kms:GenerateDataKey", ("{capture_kms_key}",),
                      (("kms:ViaService", "s3.{region}.amazonaws.com"),))),
               "https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html",
               "SageMaker writes the captured requests and responses to the S3 destination with the model's execution role.",
               "captured data is lost: no capture file is written"),
    ServiceAct("endpoint-metrics", "sagemaker.amazonaws.com",
               (Check("cloudwatch:PutMetricData", ("*",), (("cloudwatch:namespace", "/aws/sagemaker/Endpoints"),)),),
               "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
               "The execution role publishes the instance metrics (CPU, memory, disk) to CloudWatch.",
               "the instance metrics are missing"),
    ServiceAct("endpoint-logs", "sagemaker.amazonaws.com",
               (Check("logs:CreateLogGroup", ("{endpoint_log_group}",)),
                Check("logs:CreateLogStream", ("{endpoint_log_stream}",)),
                Check("logs:PutLogEvents", ("{endpoint_log_stream}",))),
               "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
               "The execution role writes the container's logs to /aws/sagemaker/Endpoints/ENDPOINT.",
               "the container's logs are missing"),
    ServiceAct("rollback-alarms", "sagemaker.amazonaws.com",
               (Check("cloudwatch:DescribeAlarms", ("{rollback_alarms}",)),),
               "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html",
               "Ensure that your IAM execution role has permission to perform the cloudwatch:DescribeAlarms action on "
               "the auto-rollback alarms you specify.",
               "the update fails (the emulator's reading: the page makes the permission a prerequisite)"),
    ServiceAct("experiment-storage-key", "sagemaker.amazonaws.com",
               (Check("kms:CreateGrant", ("{experiment_kms_key}",),
                      (("kms:ViaService", "sagemaker.{region}.amazonaws.com"), ("kms:GrantIsForAWSResource", "true"))),
                Check("kms:DescribeKey", ("{experiment_kms_key}",),
                      (("kms:ViaService", "sagemaker.{region}.amazonaws.com"),))),
               "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateInferenceExperiment.html",
               "KmsKey: the key that Amazon SageMaker uses to encrypt data on the storage volume attached to the ML "
               "compute instance that hosts the endpoint; RoleArn: the role Amazon SageMaker can assume to access model "
               "artifacts and container images, and manage Amazon SageMaker Inference endpoints for model deployment.",
               "the shadow variant is not deployed: the experiment is Cancelled (in CloudFormation: CREATE_FAILED)"),
    ServiceAct("function-logs", "lambda.amazonaws.com",
               (Check("logs:CreateLogStream", ("{function_log_stream}",)),
                Check("logs:PutLogEvents", ("{function_log_stream}",))),
               "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html",
               "Lambda sends the function's logs to its log group with the execution role's permissions.",
               "the function's logs are missing (it still runs)"),
)


def rules_by_call() -> dict[str, Rule]:
    return {rule.call: rule for rule in RULES}


def derived_by_name() -> dict[str, Derived]:
    return {derived.name: derived for derived in DERIVED}


def acts_by_name() -> dict[str, ServiceAct]:
    return {act.name: act for act in SERVICE_ACTS}


def _cells(check: Check) -> str:
    """A check's action, resources and context keys as three table cells."""
    resources = ", ".join(f"`{r}`" for r in check.resources)
    return f"`{check.action}` | {resources} | {', '.join(f'`{key}`' for key, _ in check.context)}"


def render_markdown() -> str:
    """The table as docs/permissions.md renders it."""
    lines = ["| call | IAM action | resources | context keys | then, as the caller | source |",
             "|---|---|---|---|---|---|"]
    for rule in RULES:
        for index, check in enumerate(rule.checks):
            lines.append(f"| `{rule.call}` | {_cells(check)} | {', '.join(rule.follows) if index == 0 else ''} | "
                         f"[page]({rule.source}) |")
    lines += ["", "| requests a service makes with the caller's rights | when | IAM action | resources | context keys | "
              "source |", "|---|---|---|---|---|---|"]
    for derived in DERIVED:
        for check in derived.checks:
            lines.append(f"| {derived.name} | {derived.when} | {_cells(check)} | [page]({derived.source}) |")
    lines += ["", "| what a service does with a role passed to it | assumed by | IAM action | resources | context keys | "
              "when refused | source |", "|---|---|---|---|---|---|---|"]
    for act in SERVICE_ACTS:
        for check in act.checks:
            lines.append(f"| {act.name} | `{act.service}` | {_cells(check)} | {act.consequence} | [page]({act.source}) |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
