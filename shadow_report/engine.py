"""The report engine: DuckDB reads capture files, pairs production and shadow records, computes the measures.

Everything runs inside DuckDB over the files, in batches, into a disk-backed scratch database with a
memory limit: Python never holds the records, only the aggregated answers, so memory does not grow
with the number of records.

Definitions (the Athena named queries of ``CaptureAnalytics`` compute the same ones):

- a *record* is one non-blank line of a capture file; its endpoint, variant and hour come from the key
  ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``;
- a record is *usable* when it is a JSON object with an ``eventMetadata.inferenceId`` and an
  ``endpointOutput`` whose ``data`` decodes under its ``encoding`` (CSV, JSON or BASE64). Otherwise it is
  counted under the first problem that applies, in this order: ``malformed`` (not UTF-8, or not a JSON object
  with captureData or eventMetadata), ``missing_inference_id``, ``no_output``, ``unknown_encoding``,
  ``undecodable_output``; a second record with the same inferenceId in a variant is a
  ``duplicate_inference_id`` (the earliest by inferenceTime, then eventId, is kept). Well-formed records whose
  inferenceTime (or, without one, file hour) lies outside ``start``/``end`` are counted as ``outside_window``
  and left out of everything else;
- an output decodes to a list of *predictions*: CSV text split on commas and line breaks; JSON a number,
  a string, a list of them, or ``{"predictions": [...]}``; BASE64 decoded, then read as JSON when the
  observed content type says JSON, else as CSV. All numbers → a *numeric* output, else a *label* output;
- a *pair* is a usable production record and a usable shadow record with the same inferenceId; its
  predictions are compared position by position (pairs whose outputs differ in kind or length are
  counted, not compared). Numeric predictions also become labels: ``"1"`` if ≥ ``threshold``, else ``"0"``;
- measures over the compared predictions: mean (signed) and mean / median / p99 / max absolute difference
  (shadow − production; quantiles interpolate linearly), share with absolute difference ≤ ``tolerance``,
  Pearson correlation (None when a side is constant), two-sample Kolmogorov-Smirnov statistic (exact supremum distance of the two
  empirical distributions), PSI over ten bins cut at production's deciles (a value equal to a cut goes
  to the lower bin; empty shares count as 0.0001), label agreement rate and confusion matrix
  (production label × shadow label); overall and per hour (the production record's hour).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .sources import CaptureFile, ReportError

PROBLEMS = ("malformed", "missing_inference_id", "no_output", "unknown_encoding", "undecodable_output",
            "duplicate_inference_id")
PSI_EPSILON = 0.0001
DECILES = [round(0.1 * i, 1) for i in range(1, 10)]
BATCH_BYTES = 256 * 1024 * 1024
BATCH_FILES = 2000


@dataclass
class ReportSettings:
    """What to compare and how.

    :param endpoint: the endpoint to report on. Default: the only endpoint found (several → error).
    :param production_variant: production's variant name. Default: inferred (see ``choose_variants``).
    :param shadow_variant: the shadow's variant name. Default: inferred.
    :param tolerance: absolute difference counted as "the same answer". Default: 0.01.
    :param threshold: probability at or above which a numeric prediction is label "1". Default: 0.5.
    :param start: first inference time included (UTC if naive). Default: no lower bound.
    :param end: first inference time excluded (UTC if naive). Default: no upper bound.
    :param memory_limit: DuckDB's memory limit; beyond it DuckDB spills to a scratch folder. Default: ``256MB``.
    :param samples: examples kept per problem kind. Default: 5.
    :param threads: DuckDB worker threads. Default: DuckDB's (one per core).
    """

    endpoint: str | None = None
    production_variant: str | None = None
    shadow_variant: str | None = None
    tolerance: float = 0.01
    threshold: float = 0.5
    start: datetime | None = None
    end: datetime | None = None
    memory_limit: str = "256MB"
    samples: int = 5
    threads: int | None = None

    def check(self) -> None:
        for name, value in (("tolerance", self.tolerance), ("threshold", self.threshold)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
                raise ReportError(f"--{name} must be a number >= 0, got {value!r}")
        if not isinstance(self.memory_limit, str) or not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", self.memory_limit):
            raise ReportError(f"--memory-limit must be a size like 256MB or 2GB, got {self.memory_limit!r}")
        self.start = _utc(self.start)
        self.end = _utc(self.end)
        if self.start and self.end and self.start >= self.end:
            raise ReportError(f"--start must be before --end, got {self.start.isoformat()} >= {self.end.isoformat()}")


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def choose_endpoint(files: Sequence[CaptureFile], endpoint: str | None) -> str:
    """The endpoint to report on: the one asked for, or the only one present."""
    endpoints = sorted({f.endpoint for f in files})
    if endpoint is not None:
        if endpoint not in endpoints:
            raise ReportError(f"--endpoint {endpoint!r} has no capture files; found: {', '.join(endpoints)}")
        return endpoint
    if len(endpoints) > 1:
        raise ReportError(f"capture files of {len(endpoints)} endpoints ({', '.join(endpoints)}): choose one with --endpoint")
    return endpoints[0]


def choose_variants(variants: Sequence[str], production: str | None, shadow: str | None) -> tuple[str, str]:
    """Which variant is production and which the shadow.

    Both given: used as they are. One given: the other is the only other variant. None given: with
    exactly two variants, the one whose name contains "shadow" (and only it) is the shadow.
    """
    present = sorted(set(variants))
    for option, name in (("--production-variant", production), ("--shadow-variant", shadow)):
        if name is not None and name not in present:
            raise ReportError(f"{option} {name!r} has no capture files; variants found: {', '.join(present)}")
    if production is not None and production == shadow:
        raise ReportError(f"--production-variant and --shadow-variant are both {production!r}")
    if production is not None and shadow is not None:
        return production, shadow
    if production is not None or shadow is not None:
        others = [v for v in present if v not in (production, shadow)]
        if len(others) != 1:
            given = "--production-variant" if production is not None else "--shadow-variant"
            raise ReportError(f"cannot tell the other variant from {given} alone among {len(present)} variants "
                              f"({', '.join(present)}): give both --production-variant and --shadow-variant")
        return (production, others[0]) if production is not None else (others[0], shadow)
    if len(present) != 2:
        raise ReportError(f"found {len(present)} variant(s) ({', '.join(present)}): give --production-variant and --shadow-variant")
    shadows = [v for v in present if "shadow" in v.lower()]
    if len(shadows) != 1:
        raise ReportError(f"cannot tell production from shadow among variants {', '.join(present)}: "
                          "give --production-variant and --shadow-variant")
    return next(v for v in present if v != shadows[0]), shadows[0]


_RECORDS_DDL = """
CREATE TABLE records (
    variant VARCHAR, hour TIMESTAMPTZ, filename VARCHAR, status VARCHAR, inference_id VARCHAR,
    event_id VARCHAR, ts TIMESTAMPTZ, kind VARCHAR, vals DOUBLE[], tokens VARCHAR[], excerpt VARCHAR)
"""

# One pass over a batch of files: each line becomes one row of `records` with its status.
_LOAD = r"""
INSERT INTO records
WITH raw AS (
    SELECT filename, line
    FROM read_csv($files, columns = {'line': 'VARCHAR'}, delim = '\x01', quote = '', escape = '', header = false,
                  auto_detect = false, strict_mode = false, filename = true, max_line_size = 67108864,
                  ignore_errors = true, store_rejects = true)  -- lines that are not UTF-8: counted below, not lost
    WHERE line IS NOT NULL AND trim(line) <> ''
), parsed AS (
    -- One JSON parse per line: try() gives NULL for lines that are not JSON.
    SELECT f.variant, f.hour, r.filename, r.line, try(json_extract_string(r.line, [
        '$.eventMetadata.inferenceId', '$.eventMetadata.eventId', '$.eventMetadata.inferenceTime',
        '$.captureData.endpointOutput.encoding', '$.captureData.endpointOutput.data',
        '$.captureData.endpointOutput.observedContentType'])) AS f
    FROM raw r JOIN files f ON f.path = r.filename
), fields AS (
    -- A record is a JSON object with captureData or eventMetadata (what a JSON SerDe reads as a row). Any field
    -- above proves one of them; only lines with none are looked at again (CASE evaluates branches lazily).
    SELECT *, CASE WHEN f IS NULL OR NOT starts_with(ltrim(line), '{') THEN false
                   WHEN f[1] IS NOT NULL OR f[2] IS NOT NULL OR f[3] IS NOT NULL OR f[4] IS NOT NULL OR f[5] IS NOT NULL
                        OR f[6] IS NOT NULL THEN true
                   ELSE json_exists(line, '$.captureData') OR json_exists(line, '$.eventMetadata') END AS ok
    FROM parsed
), decoded AS (
    SELECT variant, hour, filename, line, ok, f[1] AS inference_id, f[2] AS event_id,
           coalesce(try_cast(f[3] AS TIMESTAMPTZ), hour) AS ts, upper(f[4]) AS encoding, f[5] AS data,
           CASE upper(f[4]) WHEN 'CSV' THEN f[5] WHEN 'JSON' THEN f[5]
                            WHEN 'BASE64' THEN try(decode(from_base64(f[5]))) END AS text,
           upper(f[4]) = 'JSON' OR (upper(f[4]) = 'BASE64' AND lower(coalesce(f[6], '')) LIKE '%json%') AS is_json
    FROM fields
), arrays AS (
    SELECT *, CASE WHEN is_json AND json_valid(text) THEN
                  CASE json_type(text) WHEN 'ARRAY' THEN text::JSON
                                       WHEN 'OBJECT' THEN json_extract(text, '$.predictions') END END AS arr
    FROM decoded
), tokenised AS (
    SELECT *, CASE
        WHEN text IS NULL THEN NULL
        WHEN NOT is_json AND NOT regexp_matches(text, '[,\r\n"]') THEN CASE WHEN trim(text) <> '' THEN [trim(text)] END
        WHEN NOT is_json THEN list_filter(list_transform(string_split_regex(trim(text), '\s*[,\r\n]+\s*'),
                                                         lambda t: trim(t, '"')), lambda t: t <> '')
        WHEN NOT json_valid(text) THEN NULL
        WHEN json_type(text) NOT IN ('ARRAY', 'OBJECT', 'NULL') THEN [json_extract_string(text, '$')]
        WHEN json_type(arr) = 'ARRAY'
             AND coalesce(list_bool_and(list_transform(json_extract(arr, '$[*]'),
                                                       lambda e: json_type(e) NOT IN ('ARRAY', 'OBJECT', 'NULL'))), true)
             THEN json_extract_string(arr, '$[*]')
        END AS tokens
    FROM arrays
), numbered AS (
    SELECT *, list_transform(tokens, lambda t: try_cast(t AS DOUBLE)) AS nums FROM tokenised
), typed AS (
    SELECT *, list_bool_and(list_transform(nums, lambda v: v IS NOT NULL AND isfinite(v))) AS all_numbers,
        CASE WHEN NOT ok THEN 'malformed'
             WHEN ($start IS NOT NULL AND ts < $start) OR ($end IS NOT NULL AND ts >= $end) THEN 'outside_window'
             WHEN coalesce(inference_id, '') = '' THEN 'missing_inference_id'
             WHEN data IS NULL THEN 'no_output'
             WHEN encoding IS NULL OR encoding NOT IN ('CSV', 'JSON', 'BASE64') THEN 'unknown_encoding'
             WHEN tokens IS NULL OR len(tokens) = 0 THEN 'undecodable_output'
             ELSE 'ok' END AS status
    FROM numbered
)
SELECT variant, hour, filename, status, inference_id, event_id, ts,
       CASE WHEN status <> 'ok' THEN NULL WHEN all_numbers THEN 'numeric' ELSE 'label' END,
       CASE WHEN status = 'ok' AND all_numbers THEN nums END,
       CASE WHEN status = 'ok' AND NOT all_numbers THEN tokens END,
       CASE WHEN status NOT IN ('ok', 'outside_window') THEN left(line, 300) END
FROM typed
"""

# Lines the reader rejected (not UTF-8, longer than 64 MiB) are malformed records of their file.
_REJECTED = """
INSERT INTO records
SELECT f.variant, f.hour, s.file_path, 'malformed', NULL, NULL, f.hour, NULL, NULL, NULL, left(coalesce(e.csv_line, ''), 300)
FROM reject_errors e JOIN reject_scans s ON s.scan_id = e.scan_id AND s.file_id = e.file_id JOIN files f ON f.path = s.file_path
"""

_DUPLICATES = """
UPDATE records SET status = 'duplicate_inference_id', excerpt = 'inferenceId ' || inference_id
WHERE rowid IN (
    SELECT rowid FROM (
        SELECT rowid, row_number() OVER (PARTITION BY variant, inference_id ORDER BY ts, event_id, filename, rowid) AS n
        FROM records WHERE status = 'ok')
    WHERE n > 1)
"""

_PAIRS = """
CREATE TABLE pairs AS
SELECT p.hour, p.inference_id, p.kind AS pk, s.kind AS sk, p.vals AS pv, s.vals AS sv, p.tokens AS pt, s.tokens AS st
FROM records p JOIN records s ON p.inference_id = s.inference_id
WHERE p.variant = $production AND s.variant = $shadow AND p.status = 'ok' AND s.status = 'ok'
"""

_PREDICTIONS = """
CREATE TABLE predictions AS
SELECT hour, unnest(pv) AS p, unnest(sv) AS s,
       unnest(list_transform(pv, lambda v: CASE WHEN v >= $threshold THEN '1' ELSE '0' END)) AS pl,
       unnest(list_transform(sv, lambda v: CASE WHEN v >= $threshold THEN '1' ELSE '0' END)) AS sl
FROM pairs WHERE pk = 'numeric' AND sk = 'numeric' AND len(pv) = len(sv)
UNION ALL
SELECT hour, NULL, NULL, unnest(pt), unnest(st)
FROM pairs WHERE pk = 'label' AND sk = 'label' AND len(pt) = len(st)
"""

# Every measure, overall (scope 'all') and per hour, from the compared predictions.
_SCOPED = """
CREATE TABLE scoped AS
SELECT 'all' AS scope, p, s, pl, sl FROM predictions
UNION ALL
SELECT strftime(hour, '%Y-%m-%dT%H:00:00Z'), p, s, pl, sl FROM predictions
"""

_MEASURES = """
SELECT scope,
       count(p) AS numeric_predictions,
       avg(s - p) AS mean_diff,
       avg(abs(s - p)) AS mean_abs_diff,
       quantile_cont(abs(s - p), 0.5) AS median_abs_diff,
       quantile_cont(abs(s - p), 0.99) AS p99_abs_diff,
       max(abs(s - p)) AS max_abs_diff,
       avg(CASE WHEN abs(s - p) <= $tolerance THEN 1.0 ELSE 0.0 END) AS within_tolerance,
       corr(p, s) AS correlation,
       count(*) AS label_predictions,
       avg(CASE WHEN pl = sl THEN 1.0 ELSE 0.0 END) AS agreement
FROM scoped GROUP BY scope
"""

# Both samples of a scope have the same size n (predictions are paired), so the gap between the two empirical
# distribution functions at x is (#production ≤ x − #shadow ≤ x) / n: a running sum of +1 / −1, ties included by
# the RANGE frame. Every scope sums to 0, so one running sum ordered by (scope, x) restarts at 0 for each scope:
# no PARTITION BY, which DuckDB runs three times slower here.
_KS = """
WITH v AS (
    SELECT scope, p AS x, 1 AS side FROM scoped WHERE p IS NOT NULL
    UNION ALL SELECT scope, s, -1 FROM scoped WHERE s IS NOT NULL
), c AS (
    SELECT scope, sum(side) OVER (ORDER BY scope, x RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS gap FROM v
)
SELECT scope, max(abs(gap)) / (count(*) / 2) AS ks FROM c GROUP BY scope
"""

_PSI = """
WITH edges AS (
    SELECT scope, quantile_cont(p, $deciles) AS cuts FROM scoped WHERE p IS NOT NULL GROUP BY scope
), binned AS (
    SELECT e.scope, len(list_filter(e.cuts, lambda q: q < v.p)) AS bin, 1 AS is_p FROM scoped v JOIN edges e USING (scope)
    WHERE v.p IS NOT NULL
    UNION ALL
    SELECT e.scope, len(list_filter(e.cuts, lambda q: q < v.s)), 0 FROM scoped v JOIN edges e USING (scope) WHERE v.s IS NOT NULL
), counts AS (
    SELECT scope, bin, sum(is_p) AS np, sum(1 - is_p) AS ns FROM binned GROUP BY scope, bin
), totals AS (
    SELECT scope, sum(np) AS tp, sum(ns) AS ts FROM counts GROUP BY scope
), shares AS (
    SELECT t.scope, greatest(coalesce(c.np, 0) / t.tp, $eps) AS ps, greatest(coalesce(c.ns, 0) / t.ts, $eps) AS ss
    FROM totals t CROSS JOIN range(10) AS b(bin) LEFT JOIN counts c ON c.scope = t.scope AND c.bin = b.bin
)
SELECT scope, sum((ss - ps) * ln(ss / ps)) AS psi FROM shares GROUP BY scope
"""

_CONFUSION = "SELECT scope, pl, sl, count(*) FROM scoped GROUP BY ALL ORDER BY ALL"


def _connect(settings: ReportSettings, scratch: str):
    try:
        import duckdb
    except ImportError:
        raise ReportError("shadow-report needs DuckDB: pip install 'shadow-constructs[report]'") from None
    connection = duckdb.connect(os.path.join(scratch, "report.duckdb"))
    connection.execute(f"SET memory_limit = '{settings.memory_limit}'")
    connection.execute(f"SET temp_directory = '{os.path.join(scratch, 'spill')}'")
    connection.execute("SET preserve_insertion_order = false")
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET enable_progress_bar = false")
    if settings.threads:
        connection.execute(f"SET threads = {int(settings.threads)}")
    return connection


def _batches(files: Sequence[CaptureFile]) -> list[list[CaptureFile]]:
    batches, current, size = [], [], 0
    for capture_file in files:
        if current and (size + capture_file.size > BATCH_BYTES or len(current) >= BATCH_FILES):
            batches.append(current)
            current, size = [], 0
        current.append(capture_file)
        size += capture_file.size
    if current:
        batches.append(current)
    return batches


def _in_window(capture_file: CaptureFile, settings: ReportSettings) -> bool:
    # Files are keyed by the hour they were written; keep an hour's margin each side, records are filtered exactly.
    if settings.start and capture_file.hour + timedelta(hours=2) <= settings.start:
        return False
    return not (settings.end and capture_file.hour - timedelta(hours=1) >= settings.end)


@dataclass(frozen=True)
class Analysis:
    """A comparison: the report (plain data, as written to report.json) and what the plots draw."""

    report: dict[str, Any]
    histogram: list[tuple[float, float, int]]
    """Differences shadow − production: (bin start, bin end, predictions), 40 equal bins from min to max."""
    scatter: list[tuple[float, float]]
    """Up to SCATTER_POINTS (production, shadow) predictions, a repeatable uniform sample."""


SCATTER_POINTS = 5000
HISTOGRAM_BINS = 40


def _histogram(connection) -> list[tuple[float, float, int]]:
    low, high = connection.execute("SELECT min(s - p), max(s - p) FROM predictions WHERE p IS NOT NULL").fetchone()
    if low is None:
        return []
    if high == low:
        return [(low, high, connection.execute("SELECT count(p) FROM predictions").fetchone()[0])]
    width = (high - low) / HISTOGRAM_BINS
    counts = dict(connection.execute(
        "SELECT least(floor((s - p - $low) / $width)::INTEGER, $last), count(*) FROM predictions WHERE p IS NOT NULL GROUP BY ALL",
        {"low": low, "width": width, "last": HISTOGRAM_BINS - 1}).fetchall())
    return [(low + i * width, low + (i + 1) * width, counts.get(i, 0)) for i in range(HISTOGRAM_BINS)]


def _scatter(connection) -> list[tuple[float, float]]:
    return connection.execute(
        f"SELECT p, s FROM (SELECT p, s FROM predictions WHERE p IS NOT NULL) "
        f"USING SAMPLE reservoir({SCATTER_POINTS} ROWS) REPEATABLE (7)").fetchall()


def analyse(files: Sequence[CaptureFile], settings: ReportSettings, scratch: str, *,
            progress: Callable[[int, int], None] | None = None) -> Analysis:
    """Compare production and shadow over ``files`` (see the module docstring for every definition).

    ``scratch`` is an empty folder for DuckDB's database and spill files; ``progress(done_bytes, total_bytes)``
    is called after each batch of files.
    """
    settings.check()
    if not files:
        raise ReportError("no capture files found (expected <endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl)")
    endpoint = choose_endpoint(files, settings.endpoint)
    of_endpoint = [f for f in files if f.endpoint == endpoint]
    production, shadow = choose_variants([f.variant for f in of_endpoint], settings.production_variant, settings.shadow_variant)
    selected = [f for f in of_endpoint if f.variant in (production, shadow) and _in_window(f, settings)]

    connection = _connect(settings, scratch)
    try:
        connection.execute("CREATE TABLE files (path VARCHAR, variant VARCHAR, hour TIMESTAMPTZ)")
        connection.executemany("INSERT INTO files VALUES (?, ?, ?)", [(f.path, f.variant, f.hour) for f in selected])
        connection.execute(_RECORDS_DDL)
        total = sum(f.size for f in selected)
        done = 0
        for batch in _batches(selected):
            connection.execute(_LOAD, {"files": [f.path for f in batch], "start": settings.start, "end": settings.end})
            done += sum(f.size for f in batch)
            if progress:
                progress(done, total)
        if connection.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'reject_errors'").fetchone()[0]:
            connection.execute(_REJECTED)
        connection.execute(_DUPLICATES)
        connection.execute(_PAIRS, {"production": production, "shadow": shadow})
        connection.execute(_PREDICTIONS, {"threshold": float(settings.threshold)})
        connection.execute(_SCOPED)
        report = _assemble(connection, settings, endpoint, production, shadow, selected)
        return Analysis(report=report, histogram=_histogram(connection), scatter=_scatter(connection))
    finally:
        connection.close()


def _assemble(connection, settings: ReportSettings, endpoint: str, production: str, shadow: str,
              selected: Sequence[CaptureFile]) -> dict[str, Any]:
    variants: dict[str, dict[str, int]] = {}
    for name in (production, shadow):
        variants[name] = {"files": sum(1 for f in selected if f.variant == name), "records": 0, "usable": 0,
                          "outside_window": 0, **{problem: 0 for problem in PROBLEMS}}
    for variant, status, count in connection.execute("SELECT variant, status, count(*) FROM records GROUP BY ALL").fetchall():
        entry = variants[variant]
        entry["usable" if status == "ok" else status] += count
        if status != "outside_window":
            entry["records"] += count

    pair_kinds = dict(connection.execute("""
        SELECT CASE WHEN pk <> sk THEN 'kind_mismatch'
                    WHEN (pk = 'numeric' AND len(pv) <> len(sv)) OR (pk = 'label' AND len(pt) <> len(st)) THEN 'length_mismatch'
                    ELSE pk END, count(*)
        FROM pairs GROUP BY ALL""").fetchall())
    paired = sum(pair_kinds.values())
    pairing = {
        "paired": paired,
        "unmatched_production": variants[production]["usable"] - paired,
        "unmatched_shadow": variants[shadow]["usable"] - paired,
        "numeric_pairs": pair_kinds.get("numeric", 0),
        "label_pairs": pair_kinds.get("label", 0),
        "kind_mismatch": pair_kinds.get("kind_mismatch", 0),
        "length_mismatch": pair_kinds.get("length_mismatch", 0),
    }

    measures = {row[0]: row for row in connection.execute(_MEASURES, {"tolerance": float(settings.tolerance)}).fetchall()}
    ks = dict(connection.execute(_KS).fetchall())
    psi = dict(connection.execute(_PSI, {"deciles": DECILES, "eps": PSI_EPSILON}).fetchall())
    confusion: dict[str, dict[str, dict[str, int]]] = {}
    for scope, p_label, s_label, count in connection.execute(_CONFUSION).fetchall():
        confusion.setdefault(scope, {}).setdefault(p_label, {})[s_label] = count

    def measured(scope: str) -> dict[str, Any]:
        row = measures.get(scope)
        numeric = None
        if row is not None and row[1]:
            numeric = {"predictions": row[1], "mean_diff": row[2], "mean_abs_diff": row[3], "median_abs_diff": row[4],
                       "p99_abs_diff": row[5], "max_abs_diff": row[6], "within_tolerance": row[7],
                       "correlation": _correlation(row[8]), "ks": ks.get(scope), "psi": psi.get(scope)}
        labels = None
        if row is not None and row[9]:
            labels = {"predictions": row[9], "agreement": row[10], "confusion": confusion.get(scope, {})}
        return {"numeric": numeric, "labels": labels}

    hourly_counts: dict[str, dict[str, Any]] = {}
    for hour, variant, records, usable in connection.execute("""
            SELECT strftime(hour, '%Y-%m-%dT%H:00:00Z'), variant, count(*) FILTER (WHERE status <> 'outside_window'),
                   count(*) FILTER (WHERE status = 'ok')
            FROM records GROUP BY ALL ORDER BY ALL""").fetchall():
        if records:
            entry = hourly_counts.setdefault(hour, {"records": {production: 0, shadow: 0}, "usable": {production: 0, shadow: 0}})
            entry["records"][variant] = records
            entry["usable"][variant] = usable
    for hour, count in connection.execute(
            "SELECT strftime(hour, '%Y-%m-%dT%H:00:00Z'), count(*) FROM pairs GROUP BY ALL").fetchall():
        hourly_counts.setdefault(hour, {"records": {production: 0, shadow: 0}, "usable": {production: 0, shadow: 0}})["paired"] = count
    hourly = [{"hour": hour, "records": entry["records"], "usable": entry["usable"], "paired": entry.get("paired", 0),
               **measured(hour)} for hour, entry in sorted(hourly_counts.items())]

    samples: dict[str, list[dict[str, str]]] = {}
    for status, variant, filename, excerpt in connection.execute("""
            SELECT status, variant, filename, excerpt FROM (
                SELECT *, row_number() OVER (PARTITION BY status ORDER BY filename, excerpt) AS n
                FROM records WHERE status NOT IN ('ok', 'outside_window'))
            WHERE n <= $n ORDER BY status, filename, excerpt""", {"n": settings.samples}).fetchall():
        samples.setdefault(status, []).append({"variant": variant, "file": filename, "excerpt": excerpt})
    for side, this, other in (("unmatched_production", production, shadow), ("unmatched_shadow", shadow, production)):
        ids = [row[0] for row in connection.execute("""
            SELECT inference_id FROM records r WHERE variant = $this AND status = 'ok' AND NOT EXISTS (
                SELECT 1 FROM records o WHERE o.variant = $other AND o.status = 'ok' AND o.inference_id = r.inference_id)
            ORDER BY inference_id LIMIT $n""", {"this": this, "other": other, "n": settings.samples}).fetchall()]
        if ids:
            samples[side] = [{"inference_id": i} for i in ids]

    overall = measured("all")
    return {
        "endpoint": endpoint,
        "production_variant": production,
        "shadow_variant": shadow,
        "settings": {"tolerance": settings.tolerance, "threshold": settings.threshold,
                     "start": settings.start.isoformat() if settings.start else None,
                     "end": settings.end.isoformat() if settings.end else None},
        "variants": variants,
        "pairing": pairing,
        "numeric": overall["numeric"],
        "labels": overall["labels"],
        "hourly": hourly,
        "samples": samples,
    }


def _correlation(value: float | None) -> float | None:
    # Undefined (None) when either side is constant; rounding can push a perfect correlation past 1.
    return None if value is None or value != value else max(-1.0, min(1.0, value))
