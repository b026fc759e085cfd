"""CaptureAnalytics: Athena over an endpoint's captured requests and responses, with named queries that compare
production's and the shadow's answers at any scale."""

from __future__ import annotations

import math
import re
from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ._nag import acknowledge, acknowledge_wildcard_resource
from .capture import _PREFIX, CaptureLocation, CaptureStore, check_capture_location
from .capture_queries import QUERY_NAMES, capture_queries
from .endpoint_base import IShadowEndpoint, check_endpoint
from .errors import Problems, check_removal_policy
from .variant import VARIANT_NAME_PATTERN

DEFAULT_BYTES_SCANNED_CUTOFF = 10 * 1024 ** 3
MIN_BYTES_SCANNED_CUTOFF = 10_000_000  # Athena's minimum per-query limit (10 MB)
_STRING = "struct<observedcontenttype:string,mode:string,data:string,encoding:string>"
CAPTURE_COLUMNS = {
    "capturedata": f"struct<endpointinput:{_STRING},endpointoutput:{_STRING}>",
    "eventmetadata": "struct<eventid:string,inferencetime:string,inferenceid:string>",
    "eventversion": "string",
}
PARTITION_KEYS = ("endpoint", "variant", "datehour")


class CaptureAnalytics(Construct):
    """Athena over a shadow test's captured data: a Glue table, an Athena workgroup and named queries that
    compute shadow-report's measures (counts, pairing by inferenceId, differences, KS, PSI, agreement, confusion
    matrix, overall and per hour) without moving the data.

    The table reads ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`` with the OpenX JSON SerDe (malformed
    lines become NULL rows, counted as malformed); partition projection on ``endpoint`` and ``variant`` (the
    endpoint's two variants) and ``datehour`` (``yyyy/MM/dd/HH``) needs no crawler and no partition loading. Each
    named query takes two execution parameters: the first and the last hour of the window, ``yyyy/MM/dd/HH``.

    :param endpoint: the endpoint whose capture is analysed, an ``IShadowEndpoint``: its ``capture_location`` is
        used unless ``store`` or ``bucket`` is given (an imported endpoint has one when imported with
        ``from_endpoint_attributes(capture_store=... or capture_bucket=...)``).
    :param store: the CaptureStore holding the capture files. Default: the endpoint's capture destination.
    :param bucket: an existing bucket holding the capture files, instead of a store. Default: none.
    :param encryption_key: the KMS key of ``bucket``'s objects (readers need kms:Decrypt). Default: the bucket's
        own key if CDK knows it.
    :param prefix: the capture prefix, with ``store`` or ``bucket``. Default: ``datacapture``.
    :param production_variant_name: production's variant name. Default: the endpoint's.
    :param shadow_variant_name: the shadow's variant name. Default: the endpoint's.
    :param database_name: Glue database name, lower case letters, digits and ``_``. Default: derived from the
        construct's path.
    :param table_name: Glue table name. Default: ``captured_records``.
    :param workgroup_name: Athena workgroup name. Default: derived from the construct's path.
    :param bytes_scanned_cutoff_per_query: Athena cancels a query that would scan more, in bytes, at least
        10,000,000. Default: 10 GiB.
    :param tolerance: absolute difference counted as the same answer. Default: 0.01.
    :param threshold: numeric predictions at or above it are label "1". Default: 0.5.
    :param results_expiration: query results are deleted this long after they were written (1–3650 days).
        Default: 30 days.
    :param projection_start: first hour partition projection knows, ``yyyy/MM/dd/HH``. Default: ``2022/12/01/00``
        (shadow variants did not exist before).
    :param removal_policy: what happens to the query results bucket and its key when the stack deletes them.
        Default: ``cdk.RemovalPolicy.RETAIN``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: IShadowEndpoint,
        store: CaptureStore | None = None,
        bucket: s3.IBucket | None = None,
        encryption_key: kms.IKey | None = None,
        prefix: str | None = None,
        production_variant_name: str | None = None,
        shadow_variant_name: str | None = None,
        database_name: str | None = None,
        table_name: str = "captured_records",
        workgroup_name: str | None = None,
        bytes_scanned_cutoff_per_query: int = DEFAULT_BYTES_SCANNED_CUTOFF,
        tolerance: float = 0.01,
        threshold: float = 0.5,
        results_expiration: cdk.Duration | None = None,
        projection_start: str = "2022/12/01/00",
        removal_policy: cdk.RemovalPolicy | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        results_expiration = results_expiration or cdk.Duration.days(30)
        source, production, shadow, database_name, workgroup_name, removal_policy = self._check(
            endpoint, store, bucket, encryption_key, prefix, production_variant_name, shadow_variant_name, database_name,
            table_name, workgroup_name, bytes_scanned_cutoff_per_query, tolerance, threshold, results_expiration,
            projection_start, removal_policy)

        self.endpoint = endpoint
        self.production_variant_name = production
        self.shadow_variant_name = shadow
        #: Where the analysed capture lies.
        self.capture_location = source
        self.capture_bucket = source.bucket
        self.capture_key = source.encryption_key
        self.capture_prefix = source.prefix
        self.database_name = database_name
        self.table_name = table_name
        self.workgroup_name = workgroup_name
        self.bytes_scanned_cutoff_per_query = bytes_scanned_cutoff_per_query

        self._catalog(source, production, shadow, projection_start)
        self._results(results_expiration, removal_policy)
        self._workgroup()
        self._queries(tolerance, threshold)

    def _check(self, endpoint: IShadowEndpoint, store: CaptureStore | None, bucket: s3.IBucket | None,
               encryption_key: kms.IKey | None, prefix: str | None, production_variant_name: str | None,
               shadow_variant_name: str | None, database_name: str | None, table_name: str, workgroup_name: str | None,
               bytes_scanned_cutoff_per_query: int, tolerance: float, threshold: float,
               results_expiration: cdk.Duration, projection_start: str, removal_policy: cdk.RemovalPolicy | None,
               ) -> tuple[CaptureLocation, str, str, str, str, cdk.RemovalPolicy]:
        """Every prop checked (all problems at once, a ConfigError); the capture source, the variant names, the
        database and workgroup names and the removal policy to build with."""
        problems = Problems(f"CaptureAnalytics {self.node.path!r}")
        if not check_endpoint(problems, endpoint):
            problems.raise_if_any()
        source = self._capture_source(problems, endpoint, store, bucket, encryption_key, prefix)
        production = production_variant_name or endpoint.production_variant_name
        shadow = shadow_variant_name or endpoint.shadow_variant_name
        for name, value in (("production_variant_name", production), ("shadow_variant_name", shadow)):
            if value is None:
                problems.add(f"{name} is needed: the endpoint has no {name.split('_')[0]} variant")
            else:
                problems.check_pattern(name, value, VARIANT_NAME_PATTERN,
                                       "must be a SageMaker variant name (1-63 letters, digits, hyphens)")
        if production is not None and production == shadow:
            problems.add(f"production_variant_name and shadow_variant_name are both {production!r}")
        default_name = re.sub(r"[^a-z0-9_]", "_", cdk.Names.unique_id(self).lower())
        database_name = database_name if database_name is not None else default_name[:255]
        problems.check_pattern("database_name", database_name, r"[a-z0-9_]{1,255}",
                               "must be 1-255 lower case letters, digits or underscores")
        problems.check_pattern("table_name", table_name, r"[a-z0-9_]{1,255}",
                               "must be 1-255 lower case letters, digits or underscores")
        workgroup_name = workgroup_name if workgroup_name is not None else cdk.Names.unique_id(self)[-128:]
        problems.check_pattern("workgroup_name", workgroup_name, r"[a-zA-Z0-9._-]{1,128}",
                               "must be 1-128 letters, digits, '.', '_' or '-'")
        if problems.check_type("bytes_scanned_cutoff_per_query", bytes_scanned_cutoff_per_query, int, "an integer") \
                and bytes_scanned_cutoff_per_query < MIN_BYTES_SCANNED_CUTOFF:
            problems.add(f"bytes_scanned_cutoff_per_query must be at least {MIN_BYTES_SCANNED_CUTOFF:,} (Athena's minimum), "
                         f"got {bytes_scanned_cutoff_per_query:,}")
        if problems.check_type("tolerance", tolerance, (int, float), "a number") and not 0 <= tolerance < math.inf:
            problems.add(f"tolerance must be a finite number >= 0, got {tolerance!r}")
        if problems.check_type("threshold", threshold, (int, float), "a number") and not -math.inf < threshold < math.inf:
            problems.add(f"threshold must be a finite number, got {threshold!r}")
        problems.check_seconds("results_expiration", results_expiration, 86400, 3650 * 86400)
        problems.check_pattern("projection_start", projection_start, r"20\d\d/(0[1-9]|1[0-2])/(0[1-9]|[12]\d|3[01])/([01]\d|2[0-3])",
                               "must be an hour as yyyy/MM/dd/HH")
        removal_policy = check_removal_policy(problems, removal_policy, cdk.RemovalPolicy.RETAIN)
        problems.raise_if_any()
        assert source is not None and production is not None and shadow is not None, "each None added a problem"
        return source, production, shadow, database_name, workgroup_name, removal_policy

    def _catalog(self, source: CaptureLocation, production: str, shadow: str, projection_start: str) -> None:
        """The Glue database and the table over the capture, partitions projected (no crawler, no MSCK REPAIR)."""
        stack, endpoint = cdk.Stack.of(self), self.endpoint
        database_name, table_name = self.database_name, self.table_name
        location = f"{source.destination}/"
        self.database = glue.CfnDatabase(
            self, "Database", catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name, description=f"Captured shadow-test data of endpoint {endpoint.endpoint_name}"))
        self.table = glue.CfnTable(
            self, "Table", catalog_id=stack.account, database_name=database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=table_name, table_type="EXTERNAL_TABLE",
                description="SageMaker data-capture records, one JSON line each",
                parameters={
                    "classification": "json",
                    "projection.enabled": "true",
                    "projection.endpoint.type": "enum",
                    "projection.endpoint.values": endpoint.endpoint_name,
                    "projection.variant.type": "enum",
                    "projection.variant.values": f"{production},{shadow}",
                    "projection.datehour.type": "date",
                    "projection.datehour.format": "yyyy/MM/dd/HH",
                    "projection.datehour.range": f"{projection_start},NOW",
                    "projection.datehour.interval": "1",
                    "projection.datehour.interval.unit": "HOURS",
                    "storage.location.template": location + "${endpoint}/${variant}/${datehour}/",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name=k, type="string") for k in PARTITION_KEYS],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    columns=[glue.CfnTable.ColumnProperty(name=k, type=v) for k, v in CAPTURE_COLUMNS.items()],
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.openx.data.jsonserde.JsonSerDe",
                        parameters={"ignore.malformed.json": "true", "case.insensitive": "true"}))))
        self.table.node.add_dependency(self.database)


    def _results(self, results_expiration: cdk.Duration, removal_policy: cdk.RemovalPolicy) -> None:
        """The query results' bucket and key: KMS, TLS only, expiring."""
        self.results_key = kms.Key(self, "ResultsKey", enable_key_rotation=True, removal_policy=removal_policy,
                                   description=f"Athena query results of {self.node.path}")
        self.results_bucket = s3.Bucket(
            self, "Results", encryption=s3.BucketEncryption.KMS, bucket_key_enabled=True,
            # jsii: Key implements IKey with other parameter names (aws/jsii#4541).
            encryption_key=cast(kms.IKey, self.results_key),
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireResults", expiration=results_expiration,
                                              abort_incomplete_multipart_upload_after=cdk.Duration.days(1))],
            removal_policy=removal_policy, auto_delete_objects=removal_policy is cdk.RemovalPolicy.DESTROY)
        acknowledge(self.results_bucket, "AwsSolutions-S1",
                    "Query results are derived and expire; Athena keeps the history of every query in the workgroup.")

    def _workgroup(self) -> None:
        """The Athena workgroup: engine 3, its settings enforced, results encrypted with the results key."""
        endpoint = self.endpoint
        self.workgroup = athena.CfnWorkGroup(
            self, "WorkGroup", name=self.workgroup_name, state="ENABLED", recursive_delete_option=True,
            description=f"Shadow-test comparisons of endpoint {endpoint.endpoint_name}",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True, publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=self.bytes_scanned_cutoff_per_query,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version="Athena engine version 3"),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.results_bucket.bucket_name}/results/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=self.results_key.key_arn))))


    def _queries(self, tolerance: float, threshold: float) -> None:
        """The comparison queries, as named queries of the workgroup."""
        endpoint, database_name, table_name = self.endpoint, self.database_name, self.table_name
        production, shadow = self.production_variant_name, self.shadow_variant_name
        self.query_strings: dict[str, str] = capture_queries(
            table=f'"{database_name}"."{table_name}"', endpoint=endpoint.endpoint_name,
            production_variant=production, shadow_variant=shadow, tolerance=tolerance, threshold=threshold)
        self.named_queries: dict[str, athena.CfnNamedQuery] = {}
        for name in QUERY_NAMES:
            query = athena.CfnNamedQuery(
                self, "".join(part.capitalize() for part in name.split("-")),
                database=database_name, work_group=self.workgroup.ref, name=f"shadow-{name}",
                description=f"{_DESCRIPTIONS[name]} Parameters: first and last hour, yyyy/MM/dd/HH.",
                query_string=self.query_strings[name])
            query.node.add_dependency(self.table)
            self.named_queries[name] = query

    @staticmethod
    def _capture_source(problems: Problems, endpoint: IShadowEndpoint, store: CaptureStore | None,
                        bucket: s3.IBucket | None, encryption_key: kms.IKey | None,
                        prefix: str | None) -> CaptureLocation | None:
        check_capture_location(problems, store, bucket, encryption_key)
        if prefix is not None and problems.check_type("prefix", prefix, str, "a string") and not _PREFIX.fullmatch(prefix):
            problems.add(f"prefix must be S3 key segments without leading or trailing '/', got {prefix!r}")
        if problems.found:
            return None
        if store is not None or bucket is not None:
            return CaptureLocation.of(store, bucket, encryption_key, prefix)
        location = endpoint.capture_location
        if location is None:
            problems.add("the endpoint captures no data here: give store or bucket (and prefix) where its capture lands")
        elif prefix is not None:
            problems.add(f"prefix goes with store or bucket; the endpoint captures under {location.prefix!r}")
        return location

    @property
    def workgroup_arn(self) -> str:
        return cdk.Stack.of(self).format_arn(service="athena", resource="workgroup", resource_name=self.workgroup_name)

    def grant_query(self, grantee: iam.IGrantable, named_queries: bool = True) -> iam.Grant:
        """Run the named queries (or any query) in this workgroup and read their results: Athena on this workgroup
        only, Glue reads of this database and table, read-only access to the capture prefix (and decrypt with its
        key), and results written and read under the results bucket's ``results/`` prefix. Never delete.

        No glue:GetPartitions: the table's partitions are projected, so Athena does not look them up
        (https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html).

        :param named_queries: also list and read the workgroup's named queries (and the workgroup), as a person or
            tool choosing one does. Default: True; False for a principal that runs a query it already holds.
        """
        stack = cdk.Stack.of(self)
        athena_actions = ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
                          "athena:StopQueryExecution"]
        if named_queries:
            athena_actions += ["athena:GetWorkGroup", "athena:GetNamedQuery", "athena:BatchGetNamedQuery",
                               "athena:ListNamedQueries"]
        grant = iam.Grant.add_to_principal(grantee=grantee, resource_arns=[self.workgroup_arn], actions=athena_actions)
        catalog = stack.format_arn(service="glue", resource="catalog")
        database = stack.format_arn(service="glue", resource="database", resource_name=self.database_name)
        table = stack.format_arn(service="glue", resource="table", resource_name=f"{self.database_name}/{self.table_name}")
        grant = grant.combine(iam.Grant.add_to_principal(
            grantee=grantee, resource_arns=[catalog, database], actions=["glue:GetDatabase"]))
        grant = grant.combine(iam.Grant.add_to_principal(
            grantee=grantee, resource_arns=[catalog, database, table], actions=["glue:GetTable"]))
        capture_objects = self.capture_bucket.arn_for_objects(f"{self.capture_prefix}/*")
        results_objects = self.results_bucket.arn_for_objects("results/*")
        statements = [
            (["s3:ListBucket", "s3:GetBucketLocation"], [self.capture_bucket.bucket_arn, self.results_bucket.bucket_arn]),
            (["s3:GetObject"], [capture_objects, results_objects]),
            (["s3:PutObject", "s3:AbortMultipartUpload"], [results_objects]),
            (["kms:GenerateDataKey", "kms:Decrypt"], [self.results_key.key_arn]),
        ]
        if self.capture_key is not None:
            statements.append((["kms:Decrypt"], [self.capture_key.key_arn]))
        for actions, resources in statements:
            grant = grant.combine(iam.Grant.add_to_principal(grantee=grantee, actions=actions, resource_arns=resources))
        principal = grantee.grant_principal
        if isinstance(principal, Construct):
            acknowledge_wildcard_resource(principal, capture_objects, "Capture files are named by SageMaker; reads stay under the prefix.")
            acknowledge_wildcard_resource(principal, results_objects, "Athena names each query's result files under results/.")
        return grant


_DESCRIPTIONS = {
    "record-counts": "Records per variant, usable, and each problem (malformed, missing inferenceId, no output, unknown "
                     "encoding, undecodable, duplicate), overall and per hour.",
    "pairing": "Pairs by inferenceId, unmatched on each side, pairs compared as numbers or labels, mismatches.",
    "numeric-measures": "Differences shadow - production: mean, mean/median/p99/max absolute, share within tolerance, "
                        "correlation, Kolmogorov-Smirnov, PSI; overall and per hour.",
    "label-agreement": "Label agreement rate, overall and per hour.",
    "confusion-matrix": "Production label x shadow label counts, overall and per hour.",
}


__all__ = ["CaptureAnalytics"]
