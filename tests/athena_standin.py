"""A DuckDB stand-in for CaptureAnalytics' Glue table, so the shipped Athena SQL can run on fixture capture files.

The view is the emulator's (``shadow_emulator.athena.CAPTURE_VIEW``: each line read the way the table's OpenX
JSON SerDe does, partition columns from the key like partition projection's ``storage.location.template``), so
the SQL the tests prove is run exactly as the emulated Athena runs it for the promotion workflow.
"""

from __future__ import annotations

from shadow_emulator.athena import create_capture_view
from shadow_emulator.athena import run_athena_sql as _run


def create_table(connection, root: str, schema: str, table: str) -> None:
    """Create ``schema.table`` over every capture file under ``root`` (the capture prefix)."""
    create_capture_view(connection, root, schema, table)


def run_athena_sql(connection, sql: str, first_hour: str = "0000/00/00/00", last_hour: str = "9999/99/99/99") -> list[dict]:
    """Transpile Athena (Trino) SQL to DuckDB with sqlglot and run it with the two window parameters; rows as dicts."""
    header, rows = _run(connection, sql, [first_hour, last_hour])
    return [dict(zip(header, row, strict=True)) for row in rows]
