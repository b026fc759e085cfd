"""The report engine: DuckDB reads capture files, pairs production and shadow records, computes the measures.

Everything runs inside DuckDB, in an in-memory database with a memory limit beyond which DuckDB spills to the
scratch folder: Python never holds the records, only the aggregated answers, so memory does not grow with the
number of records. One pass reads the files, batch by batch, into a narrow table of records and their statuses;
one full outer join of production's and the shadow's usable records on inferenceId gives the pairs, the unmatched
records and any duplicates; the measures come from the compared predictions, several queries at a time.

Definitions (the Athena named queries of ``CaptureAnalytics`` compute the same ones; the measures and the rules
marked * are defined once, in ``measures``, for both):

- a *record* is one non-blank line of a capture file (a line ends at ``\\n``; a ``\\r`` before it and a byte
  order mark before the first line are not part of it; a line of spaces only is blank); its endpoint, variant and
  hour come from the key ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``;
- a record is *usable* when it is a JSON object with an ``eventMetadata.inferenceId`` and an
  ``endpointOutput`` whose ``data`` decodes under its ``encoding`` (CSV, JSON or BASE64). Otherwise it is
  counted under the first problem that applies, in this order (*): ``malformed`` (not UTF-8, or not a JSON object
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
  counted, not compared *). Numeric predictions also become labels: ``"1"`` if ≥ ``threshold``, else ``"0"`` (*);
- measures over the compared predictions (*): mean (signed) and mean / median / p99 / max absolute difference
  (shadow − production; quantiles interpolate linearly), share with absolute difference ≤ ``tolerance``,
  Pearson correlation (None when a side is constant), two-sample Kolmogorov-Smirnov statistic (exact supremum distance of the two
  empirical distributions), PSI over ten bins cut at production's deciles (a value equal to a cut goes
  to the lower bin; empty shares count as 0.0001), label agreement rate and confusion matrix
  (production label × shadow label); overall and per hour (the production record's hour).
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shadow_runtime import measures
from shadow_runtime.measures import DUCKDB, PROBLEMS

from .sources import CaptureFile, ReportError

BATCH_BYTES = 256 * 1024 * 1024
BATCH_FILES = 2000
PIECE_BYTES = 16 * 1024 * 1024


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
        if production is not None:
            return production, others[0]
        if shadow is None:  # unreachable: one of the two is given here
            raise ReportError("neither --production-variant nor --shadow-variant given")
        return others[0], shadow
    if len(present) != 2:
        raise ReportError(f"found {len(present)} variant(s) ({', '.join(present)}): give --production-variant and --shadow-variant")
    shadows = [v for v in present if "shadow" in v.lower()]
    if len(shadows) != 1:
        raise ReportError(f"cannot tell production from shadow among variants {', '.join(present)}: "
                          "give --production-variant and --shadow-variant")
    return next(v for v in present if v != shadows[0]), shadows[0]


# How records.status stores a record's status: 0 usable, then the problems in order, then outside the window.
STATUSES = ("ok", *PROBLEMS, "outside_window")
_OK, _DUPLICATE = 0, STATUSES.index("duplicate_inference_id")

# One row per record, as narrow as it can be (at ten million records it is what DuckDB keeps and spills):
# - text: the inferenceId of a usable (or duplicate) record, the line's first 300 characters for a problem record;
# - value: the prediction of an output that is one number (the common case); else tokens: the predictions as text,
#   numeric telling whether they are all numbers.
_RECORDS_DDL = """
CREATE TABLE records (
    file INTEGER, line INTEGER, side UTINYINT, status UTINYINT, text VARCHAR, value DOUBLE, tokens VARCHAR[], numeric BOOLEAN)
"""

# The lines of files: {texts} reads them as (file id, side, hour, lines before, content). read_text scans its files on one thread,
# so the files are split over one read_text per DuckDB thread (UNION ALL), and each file's id, side and hour are
# looked up in lists, not joined (a join could hold every file's text in its hash table). A line ends at \n (a \r
# before it is dropped); a line of spaces only is blank: not a record.
_LINES = r"""
texts AS ({texts}
), split AS (
    SELECT file, side, hour, unnest(lines) AS line, before + generate_subscripts(lines, 1) AS n
    -- A byte order mark before the first line is not part of it.
    FROM (SELECT file, side, hour, before,
                 string_split(CASE WHEN before = 0 AND starts_with(content, chr(65279)) THEN content[2:] ELSE content END,
                              chr(10)) AS lines
          FROM texts)
), raw AS (
    SELECT * REPLACE (CASE WHEN ends_with(line, chr(13)) THEN rtrim(line, chr(13)) ELSE line END AS line) FROM split
    -- Not trim(line) <> '': trim() reads the whole line; a line starting with { (nearly all) is not blank, and only
    -- the others are matched (CASE evaluates branches lazily).
    WHERE CASE WHEN line = '' THEN false WHEN starts_with(line, '{') THEN true ELSE NOT regexp_full_match(line, ' *\r*') END
)"""

# One pass over a batch of files: each record becomes one row of `records` with its status. Built by _load_sql:
# {fields} are the JSON paths read ($.eventMetadata.inferenceTime only when there is a window: without one, neither
# the time nor the eventId is needed until duplicates are ranked, and a path less is a faster parse).
_LOAD = r"""
INSERT INTO records
WITH """ + _LINES + r""", parsed AS (
    -- One JSON parse per line: try() gives NULL for lines that are not JSON.
    SELECT *, try(json_extract_string(line, [{fields}])) AS f FROM raw
), fields AS (
    -- A record is a JSON object with captureData or eventMetadata (what a JSON SerDe reads as a row). Any field
    -- read proves one of them; only lines with none are looked at again (CASE evaluates branches lazily).
    -- The observed content type matters to BASE64 outputs only: read for them alone (a path less is a faster parse).
    SELECT file, side, hour, n, line, f[1] AS inference_id, upper(f[2]) AS encoding, f[3] AS data,
           {time} AS inference_time,
           CASE WHEN f IS NULL THEN false
                WHEN NOT starts_with(line, '{') AND NOT regexp_matches(line, '^ +\{') THEN false
                WHEN f[1] IS NOT NULL OR f[2] IS NOT NULL OR f[3] IS NOT NULL OR {time} IS NOT NULL THEN true
                ELSE json_exists(line, '$.captureData') OR json_exists(line, '$.eventMetadata') END AS ok
    FROM parsed
), decoded AS (
    SELECT * EXCLUDE (inference_time), {ts} AS ts,
           CASE encoding WHEN 'CSV' THEN data WHEN 'JSON' THEN data WHEN 'BASE64' THEN try(decode(from_base64(data))) END AS text,
           CASE encoding WHEN 'CSV' THEN false WHEN 'JSON' THEN true
               WHEN 'BASE64' THEN lower(coalesce(try(json_extract_string(line, '$.captureData.endpointOutput.observedContentType')), ''))
                                  LIKE '%json%'
               ELSE false END AS is_json
    FROM fields
), valued AS (
    -- CSV text the cast reads as one finite number needs no splitting: the cast takes no comma or quote, and the
    -- line breaks and spaces it ignores around the number are what splitting would drop (the common case, tried
    -- first, so the test below runs for the other outputs only).
    SELECT *, CASE WHEN NOT is_json THEN try_cast(text AS DOUBLE) END AS value FROM decoded
), single AS (
    SELECT *, coalesce(isfinite(value), false) AS number FROM valued
), arrays AS (
    -- CSV without a comma, line break or quote is one value.
    SELECT *, CASE WHEN number THEN true
                   ELSE NOT is_json AND NOT (contains(text, ',') OR contains(text, chr(10)) OR contains(text, chr(13))
                                             OR contains(text, '"')) END AS one,
              CASE WHEN is_json AND json_valid(text) THEN
                  CASE json_type(text) WHEN 'ARRAY' THEN text::JSON
                                       WHEN 'OBJECT' THEN json_extract(text, '$.predictions') END END AS arr
    FROM single
), tokenised AS (
    SELECT *, CASE
        WHEN text IS NULL OR number THEN NULL
        WHEN one THEN CASE WHEN trim(text) <> '' THEN [trim(text)] END
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
    SELECT *, CASE WHEN NOT number THEN list_transform(tokens, lambda t: try_cast(t AS DOUBLE)) END AS nums FROM tokenised
), typed AS (
    SELECT *,
        CASE WHEN number THEN true
             ELSE coalesce(list_bool_and(list_transform(nums, lambda v: v IS NOT NULL AND isfinite(v))), false) END AS all_numbers,
        -- The common case first (one test instead of six): no problem below can apply to it.
        CASE WHEN number AND ok AND inference_id <> '' AND NOT ({outside}) THEN {ok}
             WHEN NOT ok THEN {malformed}
             WHEN {outside} THEN {outside_window}
             WHEN coalesce(inference_id, '') = '' THEN {missing_inference_id}
             WHEN data IS NULL THEN {no_output}
             WHEN encoding IS NULL OR encoding NOT IN ('CSV', 'JSON', 'BASE64') THEN {unknown_encoding}
             WHEN NOT number AND (tokens IS NULL OR len(tokens) = 0) THEN {undecodable_output}
             ELSE {ok} END AS status
    FROM numbered
), stored AS (
    SELECT *, number OR (all_numbers AND len(nums) = 1) AS scalar FROM typed
)
SELECT file, n AS line, side, status,
       CASE WHEN status = {ok} THEN inference_id WHEN status <> {outside_window} THEN left(line, 300) END AS text,
       CASE WHEN status = {ok} AND scalar THEN CASE WHEN number THEN value ELSE nums[1] END END AS value,
       CASE WHEN status = {ok} AND NOT scalar THEN tokens END AS tokens,
       CASE WHEN status = {ok} AND NOT scalar THEN all_numbers END AS numeric
FROM stored
"""
for _code, _name in enumerate(STATUSES):
    _LOAD = _LOAD.replace("{" + _name + "}", str(_code))
_FIELDS = ["$.eventMetadata.inferenceId", "$.captureData.endpointOutput.encoding", "$.captureData.endpointOutput.data"]


@functools.cache
def _load_sql(window: bool) -> str:
    """The load, reading inferenceTime only when there is a window to check it against."""
    fields = _FIELDS + ["$.eventMetadata.inferenceTime"] * window
    return (_LOAD.replace("{fields}", ", ".join(f"'{path}'" for path in fields)).replace("{time}", "f[4]" if window else "NULL")
            .replace("{ts}", "coalesce(try_cast(inference_time AS TIMESTAMPTZ), hour)" if window else "hour")
            .replace("{outside}", "($start IS NOT NULL AND ts < $start) OR ($end IS NOT NULL AND ts >= $end)" if window else "false"))


# Every inferenceId with a usable record, production's and the shadow's side by side (a full outer join): pairs,
# unmatched records and, when an inferenceId comes back more than once, duplicates. pfile (production's file) gives
# the hour; pv and sv are the values of outputs that are one number.
_JOINED = f"""
SELECT coalesce(p.text, s.text) AS inference_id, p.file AS pfile, p.text IS NOT NULL AS has_p, s.text IS NOT NULL AS has_s,
       p.value AS pv, s.value AS sv
FROM (SELECT file, text, value FROM records WHERE side = 0 AND status = {_OK} {{only}}) p
FULL JOIN (SELECT text, value FROM records WHERE side = 1 AND status = {_OK} {{only}}) s ON p.text = s.text
"""

# A second usable record with an inferenceId already seen in its variant is a duplicate: the earliest by
# inferenceTime, then eventId (then file and line) is kept. Only the records of repeated inferenceIds are ranked;
# their times and eventIds are read again from their lines.
_REPEATED = f"""
CREATE TEMP TABLE repeated AS
SELECT file, line, side, text AS inference_id FROM records
WHERE status = {_OK} AND text IN (SELECT inference_id FROM joined GROUP BY inference_id HAVING count(*) > 1)
QUALIFY count(*) OVER (PARTITION BY side, text) > 1
"""

_REPEATED_TIMES = """
CREATE TEMP TABLE repeated_times AS
WITH """ + _LINES + """
SELECT raw.file, raw.n AS line, json_extract_string(raw.line, '$.eventMetadata.eventId') AS event_id,
       coalesce(try_cast(json_extract_string(raw.line, '$.eventMetadata.inferenceTime') AS TIMESTAMPTZ), raw.hour) AS ts
FROM raw SEMI JOIN repeated r ON r.file = raw.file AND r.line = raw.n
"""

_DUPLICATES = f"""
UPDATE records SET status = {_DUPLICATE}
FROM (SELECT file, line FROM (
          SELECT r.file, r.line, row_number() OVER (PARTITION BY r.side, r.inference_id ORDER BY t.ts, t.event_id, f.path, r.line) AS k
          FROM repeated r JOIN repeated_times t USING (file, line) JOIN files f ON f.id = r.file)
      WHERE k > 1) later
WHERE records.file = later.file AND records.line = later.line
"""

# Pairs whose outputs are not both one number (lists, labels): both records, read back from `records`.
_COMPLEX_PAIRS = f"""
CREATE TABLE complex_pairs AS
WITH wanted AS (SELECT inference_id FROM joined WHERE has_p AND has_s AND (pv IS NULL OR sv IS NULL)),
p AS (SELECT * FROM records WHERE side = 0 AND status = {_OK} AND text IN (SELECT inference_id FROM wanted)),
s AS (SELECT * FROM records WHERE side = 1 AND status = {_OK} AND text IN (SELECT inference_id FROM wanted)),
sides AS (
    SELECT f.hour, p.value AS pv, p.tokens AS pt, s.value AS sv, s.tokens AS st,
           CASE WHEN p.value IS NOT NULL OR p.numeric THEN 'numeric' ELSE 'label' END AS pk,
           CASE WHEN s.value IS NOT NULL OR s.numeric THEN 'numeric' ELSE 'label' END AS sk,
           coalesce(len(p.tokens), 1) AS pn, coalesce(len(s.tokens), 1) AS sn
    FROM p JOIN s ON s.text = p.text JOIN files f ON f.id = p.file
)
SELECT hour, {measures.pair_kind('pk', 'sk', 'pn', 'sn')} AS kind,
       CASE WHEN pk <> 'numeric' THEN NULL WHEN pv IS NOT NULL THEN [pv] ELSE list_transform(pt, lambda t: t::DOUBLE) END AS pvals,
       CASE WHEN sk <> 'numeric' THEN NULL WHEN sv IS NOT NULL THEN [sv] ELSE list_transform(st, lambda t: t::DOUBLE) END AS svals,
       pt, st
FROM sides
"""

# The compared predictions: production and shadow value, and their labels (numbers thresholded).
def _predictions_sql(threshold: float) -> str:
    return f"""
CREATE TABLE predictions AS
SELECT f.hour, j.pv AS p, j.sv AS s, {measures.label('j.pv', threshold)} AS pl, {measures.label('j.sv', threshold)} AS sl
FROM joined j JOIN files f ON f.id = j.pfile WHERE j.pv IS NOT NULL AND j.sv IS NOT NULL
"""


def _complex_predictions_sql(threshold: float) -> str:
    return f"""
INSERT INTO predictions
SELECT hour, unnest(pvals), unnest(svals),
       unnest(list_transform(pvals, lambda v: {measures.label('v', threshold)})),
       unnest(list_transform(svals, lambda v: {measures.label('v', threshold)}))
FROM complex_pairs WHERE kind = 'numeric'
UNION ALL
SELECT hour, NULL, NULL, unnest(pt), unnest(st) FROM complex_pairs WHERE kind = 'label'
"""

_HOUR = DUCKDB.hour("hour")

KS_BUCKETS: int | None = None
"""Equal-width buckets of the exact KS computation (``measures.ks_sql``): any number gives the same statistic. None:
chosen from the number of values (``ks_buckets``)."""


def ks_buckets(values: int) -> int:
    """Buckets for the KS computation over ``values`` numbers: ``KS_BUCKETS`` if set, else the smallest power of two
    at least the square root of ``values``, from 64 to 4096. Its cost is a window over one row per bucket and scope
    plus a walk through the values of the few buckets where the largest gap can be: about sqrt(values) of each
    balances the two (at a million records: 1,024 buckets take half the CPU of 4,096; 128 buckets four times as much).
    Fewer buckets mean more values walked at once: 2,048 at ten million records ran out of the 256 MB limit at
    times, beside the other queries; 4,096 did not."""
    if KS_BUCKETS:
        return KS_BUCKETS
    return 1 << min(12, max(6, math.ceil(math.log2(max(values, 1)) / 2)))

_COUNTS = f"""
SELECT {DUCKDB.hour('f.hour')}, r.side, r.status, r.count
FROM (SELECT file, side, status, count(*) AS count FROM records GROUP BY ALL) r JOIN files f ON f.id = r.file
"""

# Pairs of each kind per hour. Pairs of two single numbers are one prediction each: counted in `predictions` before
# the predictions of the other pairs join them (run then, not with the other queries).
# (Grouped by the hour, then the hour formatted: formatting first would format every row.)
_SIMPLE_PAIRS = f"SELECT {_HOUR}, 'numeric', n FROM (SELECT hour, count(*) AS n FROM predictions GROUP BY hour) AS pairs"

_COMPLEX_PAIR_KINDS = f"SELECT {_HOUR}, kind, n FROM (SELECT hour, kind, count(*) AS n FROM complex_pairs GROUP BY ALL) AS pairs"

_SAMPLES = f"""
SELECT status, side, path, excerpt FROM (
    SELECT r.status, r.side, f.path, CASE WHEN r.status = {_DUPLICATE} THEN 'inferenceId ' || r.text ELSE r.text END AS excerpt,
           row_number() OVER (PARTITION BY r.status ORDER BY f.path, excerpt) AS n
    FROM records r JOIN files f ON f.id = r.file WHERE r.status BETWEEN 1 AND {_DUPLICATE})
WHERE n <= $n
"""

_UNMATCHED = "SELECT inference_id FROM joined WHERE {this} AND NOT {other} ORDER BY inference_id LIMIT $n"


def duckdb_module():
    """DuckDB's compiled core, ``_duckdb``, where there is one (DuckDB 2), else the ``duckdb`` package. The report only
    runs SQL (connect, execute, fetch), which the core has; importing the package costs about 0.2 s of CPU more, spent
    on its Python relation API, before anything is read. Raises ReportError without DuckDB."""
    try:
        import _duckdb as duckdb
    except ImportError:
        try:
            import duckdb
        except ImportError:
            raise ReportError("shadow-report needs duckdb: pip install 'shadow-constructs[report]'") from None
    return duckdb


def _connect(settings: ReportSettings, scratch: str):
    duckdb = duckdb_module()
    # An in-memory database: nothing is written to disk until it outgrows memory_limit, then DuckDB spills there.
    connection = duckdb.connect()
    connection.execute(f"SET memory_limit = '{settings.memory_limit}'")
    connection.execute(f"SET temp_directory = '{os.path.join(scratch, 'spill')}'")
    connection.execute("SET preserve_insertion_order = false")
    if settings.threads:
        connection.execute(f"SET threads = {int(settings.threads)}")
    return _session(connection)


def _session(connection):
    """Per-connection settings, for the connection and each cursor of it."""
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET enable_progress_bar = false")
    return connection


def _scalar(connection, sql: str) -> Any:
    """The first column of the one row ``sql`` returns (an aggregate's or a setting's)."""
    row = connection.execute(sql).fetchone()
    if row is None:
        raise RuntimeError(f"DuckDB returned no row for {sql!r}")
    return row[0]


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


ChartsReady = Callable[[str, str, str, list, list, list], None]
"""``analyse``'s ``charts(endpoint, production_variant, shadow_variant, histogram, scatter, agreement)``."""


@dataclass(frozen=True)
class Analysis:
    """A comparison: the report (plain data, as written to report.json) and what the plots draw."""

    report: dict[str, Any]
    histogram: list[tuple[float, float, int]]
    """Differences shadow − production: (bin start, bin end, predictions), 40 equal bins from min to max."""
    scatter: list[tuple[float, float]]
    """Up to SCATTER_POINTS (production, shadow) predictions, a uniform sample, the same from run to run."""


SCATTER_POINTS = 5000
HISTOGRAM_BINS = 40


def _histogram(connection) -> list[tuple[float, float, int]]:
    low, high, count = connection.execute("SELECT min(s - p), max(s - p), count(p) FROM predictions").fetchone()
    if low is None:
        return []
    if high == low:
        return [(low, high, count)]
    width = (high - low) / HISTOGRAM_BINS
    counts = dict(connection.execute(
        "SELECT least(floor((s - p - $low) / $width)::INTEGER, $last), count(*) FROM predictions WHERE p IS NOT NULL GROUP BY ALL",
        {"low": low, "width": width, "last": HISTOGRAM_BINS - 1}).fetchall())
    return [(low + i * width, low + (i + 1) * width, counts.get(i, 0)) for i in range(HISTOGRAM_BINS)]


def _scatter(connection) -> list[tuple[float, float]]:
    # The points whose hash is smallest: a uniform sample that depends on the values only (a reservoir sample, even
    # REPEATABLE, depends on the order in which DuckDB's threads hand over the rows, which changes from run to run).
    return connection.execute(
        f"SELECT p, s FROM predictions WHERE p IS NOT NULL ORDER BY hash(p, s), p, s LIMIT {SCATTER_POINTS}").fetchall()


@dataclass
class _Input:
    """What the engine reads: a capture file, or a piece of a large one (``source``, in the scratch folder, cut at a
    line end; ``before`` lines of the file come before it). ``id`` is the file's in ``files``, ``side`` 0 for
    production and 1 for the shadow."""

    file: CaptureFile
    id: int
    side: int
    source: str
    before: int = 0


def _inputs(capture_file: CaptureFile, file_id: int, side: int, scratch: str) -> list[_Input]:
    """A file as one input, or a large one as pieces of about PIECE_BYTES: read_text holds a whole file in memory
    (and its lines once more), so pieces keep that within DuckDB's memory limit whatever the size of the files."""
    if capture_file.size <= PIECE_BYTES:
        return [_Input(capture_file, file_id, side, capture_file.path)]
    folder = os.path.join(scratch, "pieces")
    os.makedirs(folder, exist_ok=True)
    pieces: list[_Input] = []

    def piece(data: bytes, before: int) -> None:
        path = os.path.join(folder, f"{file_id}-{len(pieces)}.jsonl")
        with open(path, "wb") as target:
            target.write(data)
        pieces.append(_Input(capture_file, file_id, side, path, before))

    before, rest = 0, b""
    with open(capture_file.path, "rb") as source:
        while block := source.read(PIECE_BYTES):
            data = rest + block
            cut = data.rfind(b"\n") + 1  # 0: no line ends yet, read on
            if cut:
                piece(data[:cut], before)
                before += data.count(b"\n", 0, cut)
            rest = data[cut:]
    if rest:
        piece(rest, before)
    return pieces


def _read_texts(inputs: Sequence[_Input], parts: int) -> tuple[str, dict[str, list]]:
    """SQL reading ``inputs`` as (file, side, hour, before, content), split over ``parts`` read_text scans, and its
    parameters."""
    groups = [inputs[i::parts] for i in range(parts) if inputs[i::parts]]
    sql = "\n    UNION ALL ".join(
        f"SELECT $ids{i}[k] AS file, $sides{i}[k] AS side, $hours{i}[k] AS hour, $befores{i}[k] AS before, content "
        f"FROM (SELECT list_position($files{i}, filename) AS k, content FROM read_text($files{i}))" for i in range(len(groups)))
    parameters: dict[str, list] = {}
    for i, group in enumerate(groups):
        parameters[f"files{i}"] = [item.source for item in group]
        parameters[f"ids{i}"] = [item.id for item in group]
        parameters[f"sides{i}"] = [item.side for item in group]
        parameters[f"hours{i}"] = [item.file.hour for item in group]
        parameters[f"befores{i}"] = [item.before for item in group]
    return sql, parameters


def _load(connection, batch: Sequence[_Input], settings: ReportSettings, parts: int, scratch: str) -> None:
    """Load one batch of files into ``records``. A file that is not UTF-8 throughout is read from a copy whose
    undecodable lines are blank; those lines are recorded as malformed records of the original file."""
    InvalidInputException = duckdb_module().InvalidInputException  # noqa: N806 (a class)

    texts, parameters = _read_texts(batch, parts)
    window = settings.start is not None or settings.end is not None
    try:
        connection.execute(_load_sql(window).replace("{texts}", texts),
                           {**parameters, **({"start": settings.start, "end": settings.end} if window else {})})
    except InvalidInputException as error:
        if "UTF-8" not in str(error):
            raise
        bad = {row[0] for row in connection.execute("SELECT filename FROM read_blob($files) WHERE try(decode(content)) IS NULL",
                                                    {"files": [item.source for item in batch]}).fetchall()}
        if not bad:
            raise
        for item in batch:
            if item.source in bad:
                item.source = _clean_copy(connection, item, scratch)
        _load(connection, batch, settings, parts, scratch)


def _clean_copy(connection, item: _Input, scratch: str) -> str:
    """A copy of a file whose lines that are not UTF-8 are blank; those lines go to ``records`` as malformed."""
    folder = os.path.join(scratch, "utf8")
    os.makedirs(folder, exist_ok=True)
    copy = os.path.join(folder, f"{item.id}-{item.before}.jsonl")
    rejected = []
    with open(item.source, "rb") as source, open(copy, "wb") as target:
        for number, line in enumerate(source, start=item.before + 1):
            try:
                line.decode()
            except UnicodeDecodeError:
                text = line.rstrip(b"\n").rstrip(b"\r").decode(errors="replace").replace("\ufffd", "?")
                rejected.append((item.id, number, item.side, STATUSES.index("malformed"), text[:300]))
                line = b"\n"
            target.write(line)
    connection.executemany("INSERT INTO records (file, line, side, status, text) VALUES (?, ?, ?, ?, ?)", rejected)
    return copy


def _deduplicate(connection, inputs: Sequence[_Input], parts: int) -> None:
    """Mark the later records of an inferenceId seen more than once in a variant as duplicates, and join the
    remaining ones again. Without duplicates, every inferenceId is one row of ``joined``."""
    if not _scalar(connection, "SELECT count(*) - count(DISTINCT inference_id) FROM joined"):
        return
    connection.execute(_REPEATED)
    files = {row[0] for row in connection.execute("SELECT DISTINCT file FROM repeated").fetchall()}
    texts, parameters = _read_texts([item for item in inputs if item.id in files], parts)
    connection.execute(_REPEATED_TIMES.replace("{texts}", texts), parameters)
    connection.execute(_DUPLICATES)
    connection.execute("DELETE FROM joined WHERE inference_id IN (SELECT inference_id FROM repeated)")
    connection.execute("INSERT INTO joined " + _JOINED.format(only="AND text IN (SELECT inference_id FROM repeated)"))


def analyse(files: Sequence[CaptureFile], settings: ReportSettings, scratch: str, *,
            progress: Callable[[int, int], None] | None = None, charts: ChartsReady | None = None) -> Analysis:
    """Compare production and shadow over ``files`` (see the module docstring for every definition).

    ``scratch`` is an empty folder for DuckDB's spill files and the copies it reads of large files (in pieces) and of
    files with lines that are not UTF-8; ``progress(done_bytes, total_bytes)`` is called after each batch of files;
    ``charts(endpoint, production, shadow, histogram, scatter, agreement)`` as soon as the data of the three charts
    is known (``agreement``: (hour, label agreement) of the hours with labels, as in the report), while the other
    measures are still computed, so the charts can be drawn meanwhile. Default: neither.
    """
    settings.check()
    if not files:
        raise ReportError("no capture files found (expected <endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl)")
    endpoint = choose_endpoint(files, settings.endpoint)
    of_endpoint = [f for f in files if f.endpoint == endpoint]
    production, shadow = choose_variants([f.variant for f in of_endpoint], settings.production_variant, settings.shadow_variant)
    # Sorted by path: file ids follow the paths, as the tie-break between duplicates does.
    selected = sorted((f for f in of_endpoint if f.variant in (production, shadow) and _in_window(f, settings)), key=lambda f: f.path)
    sides = [0 if f.variant == production else 1 for f in selected]

    connection = _connect(settings, scratch)
    try:
        connection.execute("CREATE TABLE files (id INTEGER, path VARCHAR, side UTINYINT, hour TIMESTAMPTZ)")
        connection.execute("INSERT INTO files SELECT unnest($ids), unnest($paths), unnest($sides), unnest($hours)",
                           {"ids": list(range(len(selected))), "paths": [f.path for f in selected], "sides": sides,
                            "hours": [f.hour for f in selected]})
        connection.execute(_RECORDS_DDL)
        parts = int(_scalar(connection, "SELECT current_setting('threads')"))
        inputs: list[_Input] = []
        total, done, ids = sum(f.size for f in selected), 0, {f.path: i for i, f in enumerate(selected)}
        for batch in _batches(selected):
            pieces = [piece for f in batch for piece in _inputs(f, ids[f.path], sides[ids[f.path]], scratch)]
            _load(connection, pieces, settings, parts, scratch)
            inputs += pieces
            done += sum(f.size for f in batch)
            if progress:
                progress(done, total)
        connection.execute("CREATE TABLE joined AS " + _JOINED.format(only=""))
        _deduplicate(connection, inputs, parts)
        connection.execute(_COMPLEX_PAIRS)
        connection.execute(_predictions_sql(settings.threshold))
        simple_pairs = connection.execute(_SIMPLE_PAIRS).fetchall()
        if _scalar(connection, "SELECT count(*) FROM complex_pairs"):
            connection.execute(_complex_predictions_sql(settings.threshold))
        ready = None if charts is None else functools.partial(charts, endpoint, production, shadow)
        results = _query_all(connection, settings, parts, ready)
        results["pairs"] = simple_pairs + results.pop("complex_pairs")
    finally:
        connection.close()
    report = _assemble(results, settings, endpoint, production, shadow, selected)
    return Analysis(report=report, histogram=results["histogram"], scatter=results["scatter"])


def _query_all(connection, settings: ReportSettings, workers: int,
               charts: Callable[[list, list, list], None] | None = None) -> dict[str, Any]:
    """Every query of the report, run side by side on cursors of ``connection`` (windows and quantiles run on one
    thread each, so several queries at a time keep the cores busy). Each gives its rows. ``charts(histogram, scatter,
    agreement)`` is called once the three charts' data is known (asked first: it takes little time)."""
    from concurrent.futures import ThreadPoolExecutor

    def rows(sql: str, parameters: dict[str, Any] | None = None) -> Callable[[Any], list]:
        return lambda cursor: cursor.execute(sql, parameters or {}).fetchall()

    values = 2 * _scalar(connection, "SELECT count(p) FROM predictions")  # what KS compares: both sides' numbers

    tasks: dict[str, Callable[[Any], Any]] = {  # the charts' data, then the longest first
        "histogram": _histogram,
        "scatter": _scatter,
        "measures": rows(measures.measures_sql(DUCKDB, settings.tolerance)),
        "ks": rows(measures.ks_sql(DUCKDB, ks_buckets(values))),
        "psi": rows(measures.psi_sql(DUCKDB)),
        "unmatched_production": rows(_UNMATCHED.format(this="has_p", other="has_s"), {"n": settings.samples}),
        "unmatched_shadow": rows(_UNMATCHED.format(this="has_s", other="has_p"), {"n": settings.samples}),
        "complex_pairs": rows(_COMPLEX_PAIR_KINDS),
        "counts": rows(_COUNTS),
        "confusion": rows(measures.confusion_sql(DUCKDB)),
        "samples": rows(_SAMPLES, {"n": settings.samples}),
    }

    def run(task: Callable[[Any], Any]) -> Any:
        with connection.cursor() as cursor:
            return task(_session(cursor))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {name: pool.submit(run, task) for name, task in tasks.items()}
        if charts is not None:
            charts(futures["histogram"].result(), futures["scatter"].result(), _agreement(futures["measures"].result()))
        return {name: future.result() for name, future in futures.items()}


def _agreement(measured: list[tuple]) -> list[tuple[str, float]]:
    """(hour, label agreement) of the hours with labels, in order, from the rows of ``measures_sql``: what the report's
    hourly entries say (``_assemble``)."""
    return sorted((row[0], row[-1]) for row in measured if row[0] != "all" and row[-2])


def _assemble(results: dict[str, Any], settings: ReportSettings, endpoint: str, production: str, shadow: str,
              selected: Sequence[CaptureFile]) -> dict[str, Any]:
    names = (production, shadow)
    variants: dict[str, dict[str, int]] = {}
    for name in names:
        variants[name] = {"files": sum(1 for f in selected if f.variant == name), "records": 0, "usable": 0,
                          "outside_window": 0, **{problem: 0 for problem in PROBLEMS}}
    hourly_counts: dict[str, dict[str, Any]] = {}

    def hour_entry(hour: str) -> dict[str, Any]:
        return hourly_counts.setdefault(hour, {"records": {production: 0, shadow: 0}, "usable": {production: 0, shadow: 0},
                                               "paired": 0})

    for hour, side, status, count in results["counts"]:
        variant, name = names[side], STATUSES[status]
        entry = variants[variant]
        entry["usable" if name == "ok" else name] += count
        if name != "outside_window":
            entry["records"] += count
            hour_entry(hour)["records"][variant] += count
            if name == "ok":
                hour_entry(hour)["usable"][variant] += count

    pair_kinds: dict[str, int] = {}
    for hour, kind, count in results["pairs"]:
        pair_kinds[kind] = pair_kinds.get(kind, 0) + count
        hour_entry(hour)["paired"] += count
    paired = sum(pair_kinds.values())
    pairing = {
        "paired": paired,
        "unmatched_production": variants[production]["usable"] - paired,
        "unmatched_shadow": variants[shadow]["usable"] - paired,
        **{column: pair_kinds.get(kind, 0) for kind, column in measures.PAIR_COUNTS.items()},
    }

    by_scope = {row[0]: row for row in results["measures"]}
    ks, psi = dict(results["ks"]), dict(results["psi"])
    confusion: dict[str, dict[str, dict[str, int]]] = {}
    for scope, p_label, s_label, count in sorted(results["confusion"]):
        confusion.setdefault(scope, {}).setdefault(p_label, {})[s_label] = count

    def measured(scope: str) -> dict[str, Any]:
        row = by_scope.get(scope)
        numeric = None
        if row is not None and row[1]:
            numeric = {**dict(zip(measures.NUMERIC_COLUMNS[:-2], row[1:-2], strict=True)), "correlation": _correlation(row[-3]),
                       "ks": ks.get(scope), "psi": psi.get(scope)}
        labels = None
        if row is not None and row[-2]:
            labels = {"predictions": row[-2], "agreement": row[-1], "confusion": confusion.get(scope, {})}
        return {"numeric": numeric, "labels": labels}

    hourly = [{"hour": hour, **entry, **measured(hour)} for hour, entry in sorted(hourly_counts.items())]

    samples: dict[str, list[dict[str, str]]] = {}
    for status, side, filename, excerpt in sorted(results["samples"], key=lambda row: (STATUSES[row[0]], row[2], row[3])):
        samples.setdefault(STATUSES[status], []).append({"variant": names[side], "file": filename, "excerpt": excerpt})
    for side_name in ("unmatched_production", "unmatched_shadow"):
        if results[side_name]:
            samples[side_name] = [{"inference_id": row[0]} for row in results[side_name]]

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
