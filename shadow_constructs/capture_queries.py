"""The Athena (Trino) SQL of CaptureAnalytics' named queries: shadow-report's measures over the Glue capture table.

Pure functions, no CDK: the construct ships these strings, the tests transpile them with sqlglot and run them on
DuckDB against the same capture files as shadow-report's engine, and must get the engine's numbers. The
definitions are the engine's (``shadow_report.engine``); where Athena differs, it is said here:

- the table is read with the OpenX JSON SerDe and ``ignore.malformed.json``: a line that is not a JSON object
  with captureData or eventMetadata is a row whose two columns are NULL, counted as ``malformed``;
- the window is given in partition hours (``datehour``, ``yyyy/MM/dd/HH``), the two ``?`` execution
  parameters, first and last hour included: only those partitions are scanned;
- quantiles (median, p99, PSI's deciles) are exact, by rank, interpolated like DuckDB's ``quantile_cont``
  (Athena's ``approx_percentile`` is approximate, so it is not used);
- a duplicate inferenceId keeps the earliest record by inferenceTime text, then eventId.
"""

from __future__ import annotations

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

# Records → status, kind and predictions; pairs → compared predictions; every scope ('all' and each hour).
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
    SELECT p.hour, p.inference_id, p.kind AS pk, s.kind AS sk, p.tokens AS pt, s.tokens AS st, p.nums AS pv, s.nums AS sv
    FROM usable p JOIN usable s ON p.inference_id = s.inference_id
    WHERE p.variant = '{production}' AND s.variant = '{shadow}'
),
predictions AS (
    SELECT hour, element_at(pv, i) AS p, element_at(sv, i) AS s,
           CASE WHEN element_at(pv, i) >= {threshold} THEN '1' ELSE '0' END AS pl,
           CASE WHEN element_at(sv, i) >= {threshold} THEN '1' ELSE '0' END AS sl
    FROM pairs CROSS JOIN UNNEST(sequence(1, cardinality(pv))) AS positions(i)
    WHERE pk = 'numeric' AND sk = 'numeric' AND cardinality(pv) = cardinality(sv)
    UNION ALL
    SELECT hour, CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), element_at(pt, i), element_at(st, i)
    FROM pairs CROSS JOIN UNNEST(sequence(1, cardinality(pt))) AS positions(i)
    WHERE pk = 'label' AND sk = 'label' AND cardinality(pt) = cardinality(st)
),
scoped AS (
    SELECT 'all' AS scope, p, s, pl, sl FROM predictions
    UNION ALL
    SELECT hour, p, s, pl, sl FROM predictions
)
"""

_RECORD_COUNTS = """
SELECT variant, scope, count(*) AS records, count_if(status = 'ok') AS usable,
       count_if(status = 'malformed') AS malformed, count_if(status = 'missing_inference_id') AS missing_inference_id,
       count_if(status = 'no_output') AS no_output, count_if(status = 'unknown_encoding') AS unknown_encoding,
       count_if(status = 'undecodable_output') AS undecodable_output,
       count_if(status = 'duplicate_inference_id') AS duplicate_inference_id
FROM (SELECT variant, 'all' AS scope, status FROM classified UNION ALL SELECT variant, hour, status FROM classified) AS scoped_records
GROUP BY variant, scope
ORDER BY variant, scope
"""

_PAIRING = """
SELECT scope, paired,
       usable_production - paired AS unmatched_production, usable_shadow - paired AS unmatched_shadow,
       numeric_pairs, label_pairs, kind_mismatch, length_mismatch
FROM (
    SELECT scope, count(*) AS paired,
           count_if(pk = 'numeric' AND sk = 'numeric' AND cardinality(pv) = cardinality(sv)) AS numeric_pairs,
           count_if(pk = 'label' AND sk = 'label' AND cardinality(pt) = cardinality(st)) AS label_pairs,
           count_if(pk <> sk) AS kind_mismatch,
           count_if(pk = sk AND cardinality(pt) <> cardinality(st)) AS length_mismatch
    FROM (SELECT 'all' AS scope, * FROM pairs UNION ALL SELECT hour AS scope, * FROM pairs) AS scoped_pairs
    GROUP BY scope
) AS counted
JOIN (
    SELECT scope, count_if(variant = '{production}') AS usable_production, count_if(variant = '{shadow}') AS usable_shadow
    FROM (SELECT 'all' AS scope, variant FROM usable UNION ALL SELECT hour, variant FROM usable) AS scoped_usable
    GROUP BY scope
) AS available USING (scope)
ORDER BY scope
"""

_NUMERIC = """,
diffs AS (
    SELECT scope, p, s, abs(s - p) AS d,
           row_number() OVER (PARTITION BY scope ORDER BY abs(s - p)) - 1 AS r,
           count(*) OVER (PARTITION BY scope) AS n
    FROM scoped WHERE p IS NOT NULL
),
measures AS (
    SELECT scope, count(*) AS predictions, avg(s - p) AS mean_diff, avg(d) AS mean_abs_diff,
           {median} AS median_abs_diff, {p99} AS p99_abs_diff, max(d) AS max_abs_diff,
           avg(CASE WHEN d <= {tolerance} THEN 1e0 ELSE 0e0 END) AS within_tolerance,
           corr(p, s) AS correlation
    FROM diffs GROUP BY scope
),
sides AS (
    SELECT scope, p AS x, 1 AS side FROM scoped WHERE p IS NOT NULL
    UNION ALL
    SELECT scope, s AS x, -1 AS side FROM scoped WHERE s IS NOT NULL
),
steps AS (
    SELECT scope, x, sum(side) AS side, count(*) AS values_here FROM sides GROUP BY scope, x
),
ks AS (
    -- Paired samples have equal sizes n: the distance of the two distribution functions at x is a running sum / n.
    SELECT scope, max(abs(gap)) / (sum(values_here) / 2e0) AS ks
    FROM (SELECT scope, values_here,
                 sum(side) OVER (PARTITION BY scope ORDER BY x ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS gap
          FROM steps) AS running
    GROUP BY scope
),
production_ranked AS (
    SELECT scope, p, row_number() OVER (PARTITION BY scope ORDER BY p) - 1 AS r, count(*) OVER (PARTITION BY scope) AS n
    FROM scoped WHERE p IS NOT NULL
),
cuts AS (
    SELECT scope, k,
           max(CASE WHEN r = floor((n - 1) * (k / 10e0)) THEN p END)
           + max((n - 1) * (k / 10e0) - floor((n - 1) * (k / 10e0)))
             * (coalesce(max(CASE WHEN r = floor((n - 1) * (k / 10e0)) + 1 THEN p END),
                         max(CASE WHEN r = floor((n - 1) * (k / 10e0)) THEN p END))
                - max(CASE WHEN r = floor((n - 1) * (k / 10e0)) THEN p END)) AS cut
    FROM production_ranked CROSS JOIN UNNEST(sequence(1, 9)) AS deciles(k)
    GROUP BY scope, k
),
binned AS (
    -- a value's bin is the number of cuts below it
    SELECT steps.scope, steps.x, steps.side, steps.values_here, count(cuts.cut) AS bin
    FROM steps LEFT JOIN cuts ON cuts.scope = steps.scope AND cuts.cut < steps.x
    GROUP BY steps.scope, steps.x, steps.side, steps.values_here
),
bin_counts AS (
    -- per value: (values_here + side) / 2 came from production, (values_here - side) / 2 from the shadow.
    SELECT scope, bin, sum((values_here + side) / 2) AS np, sum((values_here - side) / 2) AS ns FROM binned GROUP BY scope, bin
),
totals AS (
    SELECT scope, sum(np) AS tp, sum(ns) AS ts FROM bin_counts GROUP BY scope
),
shares AS (
    SELECT totals.scope,
           greatest(coalesce(bin_counts.np, 0) / CAST(totals.tp AS DOUBLE), {epsilon}) AS ps,
           greatest(coalesce(bin_counts.ns, 0) / CAST(totals.ts AS DOUBLE), {epsilon}) AS ss
    FROM totals CROSS JOIN UNNEST(sequence(0, 9)) AS bins(bin)
    LEFT JOIN bin_counts ON bin_counts.scope = totals.scope AND bin_counts.bin = bins.bin
),
psi AS (
    SELECT scope, sum((ss - ps) * ln(ss / ps)) AS psi FROM shares GROUP BY scope
)
SELECT measures.*, ks.ks, psi.psi
FROM measures JOIN ks ON ks.scope = measures.scope JOIN psi ON psi.scope = measures.scope
ORDER BY measures.scope
"""

_LABELS = """
SELECT scope, count(*) AS predictions, avg(CASE WHEN pl = sl THEN 1e0 ELSE 0e0 END) AS agreement
FROM scoped GROUP BY scope ORDER BY scope
"""

_CONFUSION = """
SELECT scope, pl AS production_label, sl AS shadow_label, count(*) AS predictions
FROM scoped GROUP BY scope, pl, sl ORDER BY scope, pl, sl
"""


def _double(value: float) -> str:
    """A DOUBLE literal (a bare 0.01 is a DECIMAL in Trino, and averages of decimals are rounded)."""
    text = repr(float(value))
    return text if "e" in text else f"{text}e0"


def _quantile(q: float) -> str:
    h = f"(n - 1) * {_double(q)}"
    low = f"max(CASE WHEN r = floor({h}) THEN d END)"
    high = f"coalesce(max(CASE WHEN r = floor({h}) + 1 THEN d END), {low})"
    return f"{low} + max({h} - floor({h})) * ({high} - {low})"


def capture_queries(*, table: str, endpoint: str, production_variant: str, shadow_variant: str,
                    tolerance: float = 0.01, threshold: float = 0.5, psi_epsilon: float = 0.0001) -> dict[str, str]:
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
    numbers = {"tolerance": _double(tolerance), "threshold": _double(threshold), "epsilon": _double(psi_epsilon)}
    prefix = _PREFIX.format(columns=_COLUMNS.format(**names), **names, **numbers)
    return {
        "record-counts": prefix + _RECORD_COUNTS,
        "pairing": prefix + _PAIRING.format(**names),
        "numeric-measures": prefix + _NUMERIC.format(median=_quantile(0.5), p99=_quantile(0.99), **numbers),
        "label-agreement": prefix + _LABELS,
        "confusion-matrix": prefix + _CONFUSION,
    }
