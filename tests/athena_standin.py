"""A DuckDB stand-in for CaptureAnalytics' Glue table, so the shipped Athena SQL can run on fixture capture files.

The view reads each line the way the table's OpenX JSON SerDe does (``ignore.malformed.json``: a line that is not a
JSON object with captureData or eventMetadata is a row of NULLs; keys are case-insensitive, so columns and struct
fields are lower case), and its partition columns come from the key like partition projection's
``storage.location.template`` (``<prefix>/${endpoint}/${variant}/${datehour}/``).
"""

from __future__ import annotations

import sqlglot

VIEW = r"""
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


def create_table(connection, root: str, schema: str, table: str) -> None:
    """Create ``schema.table`` over every capture file under ``root`` (the capture prefix)."""
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    connection.execute(VIEW.format(root=root, schema=schema, table=table))


def run_athena_sql(connection, sql: str, first_hour: str = "0000/00/00/00", last_hour: str = "9999/99/99/99") -> list[dict]:
    """Transpile Athena (Trino) SQL to DuckDB with sqlglot and run it with the two window parameters; rows as dicts."""
    duck = sqlglot.transpile(sql, read="trino", write="duckdb")[0]
    cursor = connection.execute(duck, [first_hour, last_hour])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
