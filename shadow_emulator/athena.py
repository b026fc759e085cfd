"""A test double for Athena over captured data: the Glue table and workgroup deploy, queries really run.

moto's CloudFormation does not know ``AWS::Glue::Database``, ``AWS::Glue::Table``,
``AWS::Athena::WorkGroup`` or ``AWS::Athena::NamedQuery`` (they deploy as untyped placeholders),
and moto's Athena answers every query with canned rows. While installed, ``AthenaDouble``

* creates and deletes those four types in moto's Glue and Athena backends from a template;
* runs each StartQueryExecution for real: the Glue table the query names is read from the
  emulated S3 (every ``*.jsonl`` under its location, partition columns from the key like
  partition projection's ``storage.location.template`` ``.../${endpoint}/${variant}/${datehour}/``),
  the Athena (Trino) SQL is transpiled to DuckDB by sqlglot, the ``?`` placeholders take the
  ExecutionParameters (SQL literals, e.g. ``'2026/11/25/14'``), and the rows become the
  execution's GetQueryResults (a header row, then every value as text, as Athena returns them).
  A query that fails ends FAILED, its reason in Status.StateChangeReason (and in ``failures``).

Limits: capture tables only (the OpenX JSON SerDe reading of SageMaker capture records, as
``CAPTURE_VIEW`` spells it), whole tables read per query (no scan limit), results not written
to the workgroup's output location, DDL not executed.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any

from moto.athena.models import QueryResults, athena_backends
from moto.cloudformation import parsing
from moto.glue.models import glue_backends
from moto.s3.models import s3_backends

#: The Glue capture table as DuckDB sees it: how the OpenX JSON SerDe (``ignore.malformed.json``,
#: case-insensitive keys) reads SageMaker capture lines — a line that is not a JSON object with
#: captureData or eventMetadata is a row of NULLs — plus the partition columns taken from the key.
CAPTURE_VIEW = r"""
CREATE VIEW {schema}.{table} AS
WITH lines AS (
    SELECT filename, line FROM read_csv('{root}/**/*.jsonl', columns = {{'line': 'VARCHAR'}}, delim = '\x01', quote = '',
                                        escape = '', header = false, auto_detect = false, strict_mode = false, filename = true)
    WHERE line IS NOT NULL AND trim(line) <> ''
), parsed AS (
    SELECT filename, CASE WHEN json_valid(line) AND json_type(line) = 'OBJECT' THEN line::JSON END AS j FROM lines
), rows AS (
    SELECT filename, CASE WHEN (j -> '$.captureData') IS NOT NULL OR (j -> '$.eventMetadata') IS NOT NULL THEN j END AS j FROM parsed
)
SELECT
    CASE WHEN (j -> '$.captureData') IS NOT NULL THEN struct_pack(
        endpointinput := CASE WHEN (j -> '$.captureData.endpointInput') IS NOT NULL THEN struct_pack(
            observedcontenttype := j ->> '$.captureData.endpointInput.observedContentType',
            mode := j ->> '$.captureData.endpointInput.mode', data := j ->> '$.captureData.endpointInput.data',
            encoding := j ->> '$.captureData.endpointInput.encoding') END,
        endpointoutput := CASE WHEN (j -> '$.captureData.endpointOutput') IS NOT NULL THEN struct_pack(
            observedcontenttype := j ->> '$.captureData.endpointOutput.observedContentType',
            mode := j ->> '$.captureData.endpointOutput.mode', data := j ->> '$.captureData.endpointOutput.data',
            encoding := j ->> '$.captureData.endpointOutput.encoding') END) END AS capturedata,
    CASE WHEN (j -> '$.eventMetadata') IS NOT NULL THEN struct_pack(
        eventid := j ->> '$.eventMetadata.eventId', inferencetime := j ->> '$.eventMetadata.inferenceTime',
        inferenceid := j ->> '$.eventMetadata.inferenceId') END AS eventmetadata,
    j ->> '$.eventVersion' AS eventversion,
    regexp_extract(filename, '([^/]+)/([^/]+)/(\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}})/[^/]+\.jsonl$', 1) AS endpoint,
    regexp_extract(filename, '([^/]+)/([^/]+)/(\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}})/[^/]+\.jsonl$', 2) AS variant,
    regexp_extract(filename, '([^/]+)/([^/]+)/(\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}})/[^/]+\.jsonl$', 3) AS datehour
FROM rows
"""

_log = logging.getLogger("shadow_emulator.athena")
TABLE_REFERENCE = re.compile(r'\bFROM\s+"([^"]+)"\."([^"]+)"', re.IGNORECASE)


def create_capture_view(connection, root: str, schema: str, table: str) -> None:
    """Create ``schema.table`` in DuckDB over every capture file under ``root`` (the capture prefix)."""
    connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    connection.execute(CAPTURE_VIEW.format(root=root, schema=f'"{schema}"', table=f'"{table}"'))


def run_athena_sql(connection, sql: str, parameters: list[Any]) -> tuple[list[str], list[tuple]]:
    """Athena (Trino) SQL transpiled to DuckDB by sqlglot and run with ``parameters`` for its ``?``."""
    import sqlglot

    cursor = connection.execute(sqlglot.transpile(sql, read="trino", write="duckdb")[0], parameters)
    return [d[0] for d in cursor.description], cursor.fetchall()


def sql_literal(text: str) -> Any:
    """An ExecutionParameters value: ``'text'`` (quotes doubled inside) is a string, else a number."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    try:
        return int(text)
    except ValueError:
        return float(text)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


class _Resource:
    def __init__(self, physical_resource_id: str) -> None:
        self.physical_resource_id = physical_resource_id

    def is_created(self) -> bool:
        return True


def _cfn_model(resource_type: str, create, delete):
    """A duck-typed CloudFormation model class (not registered with moto: installed while the double is)."""

    class Model:
        @staticmethod
        def cloudformation_type() -> str:
            return resource_type

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return False

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            return _Resource(create(cloudformation_json.get("Properties", {}), resource_name, account_id, region_name))

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            delete(cloudformation_json.get("Properties", {}), resource_name, account_id, region_name)

    Model.update_from_cloudformation_json = _abstract  # moto then replaces the resource
    return Model


def _abstract(*args: Any, **kwargs: Any) -> None:
    raise NotImplementedError


_abstract.__isabstractmethod__ = True


def _create_database(properties, name, account, region):
    database = properties.get("DatabaseInput", {})
    glue_backends[account][region].create_database(database.get("Name", name), database)
    return database.get("Name", name)


def _delete_database(properties, name, account, region):
    glue_backends[account][region].databases.pop(properties.get("DatabaseInput", {}).get("Name", name), None)


def _create_table(properties, name, account, region):
    table = properties.get("TableInput", {})
    glue_backends[account][region].create_table(properties["DatabaseName"], table.get("Name", name), table)
    return table.get("Name", name)


def _delete_table(properties, name, account, region):
    database = glue_backends[account][region].databases.get(properties.get("DatabaseName"))
    if database is not None:
        database.tables.pop(properties.get("TableInput", {}).get("Name", name), None)


def _create_workgroup(properties, name, account, region):
    workgroup = properties.get("Name", name)
    athena_backends[account][region].create_work_group(
        workgroup, properties.get("WorkGroupConfiguration", {}), properties.get("Description", ""), [])
    return workgroup


def _delete_workgroup(properties, name, account, region):
    athena_backends[account][region].work_groups.pop(properties.get("Name", name), None)


def _create_named_query(properties, name, account, region):
    backend = athena_backends[account][region]
    workgroup = properties.get("WorkGroup", "primary")
    if workgroup not in backend.work_groups:
        backend.create_work_group(workgroup, {}, "", [])
    return backend.create_named_query(properties.get("Name", name), properties.get("Description", ""),
                                      properties["Database"], properties["QueryString"], workgroup)


def _delete_named_query(properties, name, account, region):
    athena_backends[account][region].named_queries.pop(name, None)


MODELS = {
    "AWS::Glue::Database": _cfn_model("AWS::Glue::Database", _create_database, _delete_database),
    "AWS::Glue::Table": _cfn_model("AWS::Glue::Table", _create_table, _delete_table),
    "AWS::Athena::WorkGroup": _cfn_model("AWS::Athena::WorkGroup", _create_workgroup, _delete_workgroup),
    "AWS::Athena::NamedQuery": _cfn_model("AWS::Athena::NamedQuery", _create_named_query, _delete_named_query),
}


def _refusal_reason(refusal: Any) -> str:
    """A query's StateChangeReason when Athena, running it as the caller, is refused: S3's as Athena words it."""
    if refusal.action.startswith("s3:") and refusal.resource.startswith("arn:aws:s3:::"):
        return f"Permission denied on S3 path: s3://{refusal.resource.removeprefix('arn:aws:s3:::')} ({refusal})"
    return f"AccessDeniedException: {refusal}"


class AthenaDouble:
    """``with AthenaDouble():`` inside ``mock_aws`` (or installed by the emulator server)."""

    def __init__(self) -> None:
        self.failures: dict[str, str] = {}  # query execution id -> why it failed
        self._saved: dict[str, Any] = {}

    def install(self) -> AthenaDouble:
        from moto.athena.models import AthenaBackend
        from moto.athena.responses import AthenaResponse

        self._saved = {"model_map": parsing.get_model_map, "start": AthenaBackend.start_query_execution,
                       "get": AthenaResponse.get_query_execution}
        original_map, original_start, double = parsing.get_model_map, AthenaBackend.start_query_execution, self
        original_get = AthenaResponse.get_query_execution

        def get_model_map():
            return {**original_map(), **MODELS}

        def start_query_execution(backend, query, context, config, workgroup, execution_parameters):
            execution_id = original_start(backend, query, context, config, workgroup, execution_parameters)
            from .authorization.enforcer import take_query_refusal

            refusal = take_query_refusal()
            if refusal is not None:  # Athena read the catalog or the data with the caller's rights, and was refused
                double._fail(backend, execution_id, _refusal_reason(refusal))
            else:
                double._execute(backend, execution_id, query, execution_parameters or [])
            return execution_id

        def get_query_execution(response):
            # moto leaves out Status.StateChangeReason; Athena gives a failed query's reason there.
            body = json.loads(original_get(response))
            reason = double.failures.get(body["QueryExecution"]["QueryExecutionId"])
            if reason:
                body["QueryExecution"]["Status"]["StateChangeReason"] = reason
            return json.dumps(body)

        parsing.get_model_map = get_model_map
        AthenaBackend.start_query_execution = start_query_execution
        AthenaResponse.get_query_execution = get_query_execution
        return self

    def uninstall(self) -> None:
        if self._saved:
            from moto.athena.models import AthenaBackend
            from moto.athena.responses import AthenaResponse

            parsing.get_model_map = self._saved.pop("model_map")
            AthenaBackend.start_query_execution = self._saved.pop("start")
            AthenaResponse.get_query_execution = self._saved.pop("get")

    def __enter__(self) -> AthenaDouble:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def _fail(self, backend, execution_id: str, reason: str) -> None:
        self.failures[execution_id] = reason
        backend.executions[execution_id].status = "FAILED"
        _log.warning("query %s FAILED: %s", execution_id, reason)

    def _execute(self, backend, execution_id: str, query: str, parameters: list[str]) -> None:
        if re.match(r"\s*(CREATE|DROP|ALTER|MSCK)\b", query, re.IGNORECASE):
            return  # DDL: moto's own handling (databases) is kept
        try:
            import duckdb

            with tempfile.TemporaryDirectory(prefix="athena-double-") as folder, duckdb.connect() as connection:
                for database, table in set(TABLE_REFERENCE.findall(query)):
                    self._materialize(backend, connection, Path(folder), database, table)
                header, rows = run_athena_sql(connection, query, [sql_literal(p) for p in parameters])
        except Exception as error:  # noqa: BLE001 - a failing query ends FAILED, as on Athena
            # sqlglot underlines the offending token with terminal colour codes: plain text, as Athena's
            self._fail(backend, execution_id, re.sub(r"\x1b\[[0-9;]*m", "", f"{type(error).__name__}: {error}"))
            return
        result_rows = [{"Data": [{"VarCharValue": name} for name in header]}]
        result_rows += [{"Data": [{"VarCharValue": _text(v)} if v is not None else {} for v in row]} for row in rows]
        backend.query_results[execution_id] = QueryResults(
            rows=result_rows, column_info=[{"Name": name, "Type": "varchar"} for name in header])

    @staticmethod
    def _materialize(backend, connection, folder: Path, database: str, table: str) -> None:
        glue = glue_backends[backend.account_id][backend.region_name]
        location = glue.get_table(database, table).as_dict()["StorageDescriptor"]["Location"]
        bucket, _, prefix = location[5:].partition("/")
        root = folder / database / table
        s3 = s3_backends[backend.account_id]["aws"]
        for name, key in list(s3.get_bucket(bucket).keys.items()):
            if name.startswith(prefix) and name.endswith(".jsonl"):
                target = root / name[len(prefix):].lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(key.value)
        root.mkdir(parents=True, exist_ok=True)
        (root / "empty.jsonl").touch()  # an empty table has no files; Athena then returns no rows, DuckDB an error
        create_capture_view(connection, str(root), database, table)
