"""The Athena (Trino) SQL of CaptureAnalytics' named queries: shadow-report's measures over the Glue capture table.

Pure functions, no CDK: the construct ships these strings, the tests transpile them with sqlglot and run them on
DuckDB against the same capture files as shadow-report's engine, and must get the engine's numbers. Here the
capture table's rows become the compared predictions; the measures over them, the problem order, a pair's kind and
a number's label are the engine's own definitions (``shadow_runtime.measures``, rendered for Trino). Where Athena
reads the data otherwise than the engine, it is said here:

- the table is read with the OpenX JSON SerDe and ``ignore.malformed.json``: a line that is not a JSON object
  with captureData or eventMetadata is a row whose two columns are NULL, counted as ``malformed``;
- the window is given in partition hours (``datehour``, ``yyyy/MM/dd/HH``), the two ``?`` execution
  parameters, first and last hour included: only those partitions are scanned;
- quantiles (median, p99, PSI's deciles) are exact: a sorted ``array_agg`` read by rank (Athena's
  ``approx_percentile`` is approximate, so it is not used);
- a duplicate inferenceId keeps the earliest record by inferenceTime text, then eventId.
"""

from __future__ import annotations

from shadow_runtime import measures
from shadow_runtime.measures import TRINO

QUERY_NAMES = ("record-counts", "pairing", "numeric-measures", "label-agreement", "confusion-matrix")

_COLUMNS = """
SELECT variant,
       concat(substr(datehour, 1, 4), '-', substr(datehour, 6, 2), '-', substr(datehour, 9, 2), 'T',
              substr(datehour, 12, 2), ':00:00Z') AS hour,
       capturedata IS NULL AND eventmetadata IS NULL AS malformed,
       eventmetadata.inferenceid AS inference_id,
       eventmetadata.eventid AS event_id,
       eventmetadata.inferencetime AS inference_time,
       upper(capturedata.endpointoutput.encoding) AS encoding,
       capturedata.endpointoutput.data AS data,
       lower(coalesce(capturedata.endpointoutput.observedcontenttype, '')) AS content_type
FROM {table}
WHERE endpoint = '{endpoint}' AND variant IN ('{production}', '{shadow}') AND datehour BETWEEN ? AND ?
"""

# Records → status, kind and predictions; pairs (with their kind) → the compared predictions, which measures reads.
_PREFIX = """WITH records AS ({columns}),
decoded AS (
    SELECT *,
           CASE encoding WHEN 'CSV' THEN data WHEN 'JSON' THEN data
                         WHEN 'BASE64' THEN try(from_utf8(from_base64(data))) END AS text,
           coalesce(encoding = 'JSON' OR (encoding = 'BASE64' AND content_type LIKE '%json%'), false) AS is_json
    FROM records
),
parsed AS (
    SELECT *, CASE WHEN is_json THEN try(json_parse(text)) END AS j FROM decoded
),
tokenised AS (
    SELECT *, CASE
        WHEN text IS NULL THEN NULL
        WHEN NOT is_json THEN filter(transform(regexp_split(trim(text), '\\s*[,\\r\\n]+\\s*'), t -> trim(t, '"')), t -> t <> '')
        WHEN j IS NULL THEN NULL
        WHEN try_cast(j AS ARRAY(VARCHAR)) IS NOT NULL THEN try_cast(j AS ARRAY(VARCHAR))
        WHEN json_extract(j, '$.predictions') IS NOT NULL THEN try_cast(json_extract(j, '$.predictions') AS ARRAY(VARCHAR))
        WHEN substr(trim(text), 1, 1) NOT IN ('[', '{{') THEN ARRAY[json_extract_scalar(j, '$')]
        END AS raw_tokens
    FROM parsed
),
typed AS (
    SELECT *,
           CASE WHEN cardinality(filter(raw_tokens, t -> t IS NULL OR t LIKE '[%' OR t LIKE '{{%')) = 0 THEN raw_tokens END AS tokens
    FROM tokenised
),
statused AS (
    SELECT *,
           CASE WHEN malformed THEN 'malformed'
                WHEN coalesce(inference_id, '') = '' THEN 'missing_inference_id'
                WHEN data IS NULL THEN 'no_output'
                WHEN encoding IS NULL OR encoding NOT IN ('CSV', 'JSON', 'BASE64') THEN 'unknown_encoding'
                WHEN tokens IS NULL OR cardinality(tokens) = 0 THEN 'undecodable_output'
                ELSE 'ok' END AS first_status,
           cardinality(filter(tokens, t -> NOT coalesce(abs(try_cast(t AS DOUBLE)) < 1e308, false))) = 0 AS all_numbers
    FROM typed
),
ranked AS (
    SELECT *, CASE WHEN first_status = 'ok' THEN
                   row_number() OVER (PARTITION BY variant, inference_id, first_status ORDER BY inference_time, event_id) END AS copy
    FROM statused
),
classified AS (
    SELECT variant, hour, inference_id, tokens, all_numbers,
           CASE WHEN first_status = 'ok' AND copy > 1 THEN 'duplicate_inference_id' ELSE first_status END AS status
    FROM ranked
),
usable AS (
    SELECT variant, hour, inference_id, tokens,
           CASE WHEN all_numbers THEN 'numeric' ELSE 'label' END AS kind,
           CASE WHEN all_numbers THEN transform(tokens, t -> CAST(t AS DOUBLE)) END AS nums
    FROM classified WHERE status = 'ok'
),
pairs AS (
    SELECT p.hour, p.tokens AS pt, s.tokens AS st, p.nums AS pv, s.nums AS sv,
           {pair_kind} AS kind
    FROM usable p JOIN usable s ON p.inference_id = s.inference_id
    WHERE p.variant = '{production}' AND s.variant = '{shadow}'
),
predictions AS (
    SELECT hour, element_at(pv, i) AS p, element_at(sv, i) AS s, {production_label} AS pl, {shadow_label} AS sl
    FROM pairs CROSS JOIN UNNEST(sequence(1, cardinality(pv))) AS positions(i)
    WHERE kind = 'numeric'
    UNION ALL
    SELECT hour, CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), element_at(pt, i), element_at(st, i)
    FROM pairs CROSS JOIN UNNEST(sequence(1, cardinality(pt))) AS positions(i)
    WHERE kind = 'label'
)
"""

_RECORD_COUNTS = """
SELECT variant, {scope} AS scope, count(*) AS records, count_if(status = 'ok') AS usable, {problems}
FROM classified GROUP BY GROUPING SETS ((variant), (variant, hour))
ORDER BY variant, scope
"""

_PAIRING = """
SELECT scope, paired,
       usable_production - paired AS unmatched_production, usable_shadow - paired AS unmatched_shadow, {kinds}
FROM (SELECT {scope} AS scope, count(*) AS paired, {kind_counts} FROM pairs GROUP BY GROUPING SETS ((), (hour))) AS counted
JOIN (
    SELECT {scope} AS scope, count_if(variant = '{production}') AS usable_production, count_if(variant = '{shadow}') AS usable_shadow
    FROM usable GROUP BY GROUPING SETS ((), (hour))
) AS available USING (scope)
ORDER BY scope
"""


def capture_queries(*, table: str, endpoint: str, production_variant: str, shadow_variant: str,
                    tolerance: float = 0.01, threshold: float = 0.5, psi_epsilon: float = measures.PSI_EPSILON) -> dict[str, str]:
    """The named queries' SQL, by name (``QUERY_NAMES``). Each takes two execution parameters: the first and the
    last partition hour of the window, as ``yyyy/MM/dd/HH`` strings.

    :param table: the Glue table, quoted as SQL wants it (``"database"."table"``).
    :param endpoint: the endpoint's name (its folder under the capture prefix).
    :param production_variant: production's variant name.
    :param shadow_variant: the shadow's variant name.
    :param tolerance: absolute difference counted as the same answer. Default: 0.01.
    :param threshold: numeric predictions at or above it are label "1". Default: 0.5.
    :param psi_epsilon: share given to an empty PSI bin. Default: 0.0001.
    """
    for name, value in (("endpoint", endpoint), ("production_variant", production_variant), ("shadow_variant", shadow_variant)):
        if "'" in value:
            raise ValueError(f"{name} must not contain a quote, got {value!r}")
    names = {"table": table, "endpoint": endpoint, "production": production_variant, "shadow": shadow_variant}
    prefix = _PREFIX.format(
        columns=_COLUMNS.format(**names), **names, pair_kind=measures.pair_kind("p.kind", "s.kind", "cardinality(p.tokens)",
                                                                                "cardinality(s.tokens)"),
        production_label=measures.label("element_at(pv, i)", threshold), shadow_label=measures.label("element_at(sv, i)", threshold))
    scope = TRINO.scope()
    return {
        "record-counts": prefix + _RECORD_COUNTS.format(
            scope=scope, problems=", ".join(f"count_if(status = '{p}') AS {p}" for p in measures.PROBLEMS)),
        "pairing": prefix + _PAIRING.format(
            scope=scope, kinds=", ".join(measures.PAIR_COUNTS.values()),
            kind_counts=", ".join(f"count_if(kind = '{k}') AS {c}" for k, c in measures.PAIR_COUNTS.items()), **names),
        "numeric-measures": prefix + measures.numeric_sql(TRINO, tolerance, psi_epsilon) + "\nORDER BY m.scope\n",
        "label-agreement": prefix + measures.labels_sql(TRINO) + "\nORDER BY scope\n",
        "confusion-matrix": prefix + measures.confusion_sql(TRINO) + "\nORDER BY scope, production_label, shadow_label\n",
    }
