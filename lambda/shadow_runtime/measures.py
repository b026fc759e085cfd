"""The capture measures, each defined once, as SQL for DuckDB (shadow-report's engine) and for Athena (Trino: the
named queries of ``shadow_constructs.CaptureAnalytics``).

Plain Python without dependencies: the constructs import it at synth, the engine when it runs. Both build, their own
way, the relation the measures read, and this module turns it into figures:

``predictions (hour, p, s, pl, sl)``
    one row per compared prediction of a pair: the hour of the pair (production's record), production's and the
    shadow's numeric values (NULL for labels) and both labels (numbers thresholded by ``label``).

The measures, overall (scope ``'all'``) and per hour (scope ``yyyy-mm-ddThh:00:00Z``), both from one pass (GROUPING
SETS), in the columns of ``NUMERIC_COLUMNS``, ``LABEL_COLUMNS`` and ``CONFUSION_COLUMNS``:

- differences shadow − production over the numeric predictions: mean (signed); mean, median, p99 and max absolute
  difference (quantiles exact, interpolated linearly between the two nearest ranks); share within ``tolerance``;
  Pearson correlation;
- Kolmogorov-Smirnov: the largest gap between the empirical distribution functions of production's and the shadow's
  values (exact);
- PSI over ``PSI_BINS`` bins cut at production's deciles of the scope (a value equal to a cut goes to the lower bin;
  an empty share counts as ``PSI_EPSILON``);
- label agreement rate and confusion matrix (production label × shadow label), over every compared prediction (the
  label query also gives the mean absolute difference: the workflow publishes both as live metrics).

And the rules both apply before that: the problems a record is counted under (``PROBLEMS``, the first that applies),
the kind of a pair (``pair_kind``), a number's label (``label``).

Dialects differ in few places, each a method of ``Dialect``: how an hour shows as a scope, exact quantiles (DuckDB has
``quantile_cont``; Athena only an approximate one, so a sorted ``array_agg`` is read by rank), a table of bin numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PROBLEMS = ("malformed", "missing_inference_id", "no_output", "unknown_encoding", "undecodable_output",
            "duplicate_inference_id")
"""What makes a record unusable, in the order they are checked: a record counts under the first that applies."""
PAIR_KINDS = ("numeric", "label", "kind_mismatch", "length_mismatch")
"""A pair's outputs: both numeric or both labels (compared prediction by prediction), else a mismatch (not compared)."""
PAIR_COUNTS = {"numeric": "numeric_pairs", "label": "label_pairs", "kind_mismatch": "kind_mismatch",
               "length_mismatch": "length_mismatch"}
"""The pairing figure that counts the pairs of each kind."""
ABS_DIFF_QUANTILES = {"median_abs_diff": 0.5, "p99_abs_diff": 0.99}
PSI_BINS = 10
PSI_EPSILON = 0.0001
KS_BUCKETS = 4096
"""Equal-width buckets of the exact KS computation: any number gives the same statistic, this one is fast."""

NUMERIC_COLUMNS = ("predictions", "mean_diff", "mean_abs_diff", *ABS_DIFF_QUANTILES, "max_abs_diff", "within_tolerance",
                   "correlation", "ks", "psi")
LABEL_COLUMNS = ("predictions", "agreement", "mean_abs_diff")
CONFUSION_COLUMNS = ("production_label", "shadow_label", "predictions")
AGREEMENT = "avg(CASE WHEN pl = sl THEN 1e0 ELSE 0e0 END)"
MEAN_ABS_DIFF = "avg(abs(s - p))"  # over the numeric predictions (p and s are NULL for labels)
"""The share of compared predictions whose labels agree."""


def number(value: float) -> str:
    """A DOUBLE literal in both dialects (a bare 0.01 is a DECIMAL in Trino, and averages of decimals are rounded)."""
    text = repr(float(value))
    return text if "e" in text else f"{text}e0"


def label(value: str, threshold: float) -> str:
    """The label of a numeric prediction: ``'1'`` at or above ``threshold``, else ``'0'``."""
    return f"CASE WHEN {value} >= {number(threshold)} THEN '1' ELSE '0' END"


def pair_kind(production_kind: str, shadow_kind: str, production_length: str, shadow_length: str) -> str:
    """A pair's kind (``PAIR_KINDS``) from each side's kind (``'numeric'`` or ``'label'``) and number of predictions."""
    return (f"CASE WHEN {production_kind} <> {shadow_kind} THEN 'kind_mismatch' "
            f"WHEN {production_length} <> {shadow_length} THEN 'length_mismatch' ELSE {production_kind} END")


@dataclass(frozen=True)
class Dialect:
    """How the measures' SQL is spelled in one engine."""

    name: str

    def hour(self, column: str) -> str:
        """An hour as its scope's text, ``yyyy-mm-ddThh:00:00Z`` (DuckDB: a timestamp; Athena: already that text)."""
        return f"strftime({column}, '%Y-%m-%dT%H:00:00Z')" if self.name == "duckdb" else column

    def scope(self, hour: str = "hour") -> str:
        """The scope of a row grouped by GROUPING SETS ((), (hour)): ``'all'``, or the hour."""
        return f"CASE WHEN grouping({hour}) = 1 THEN 'all' ELSE {self.hour(hour)} END"

    def quantiles(self, value: str, quantiles: Sequence[float]) -> str:
        """An aggregate that keeps what exact ``quantiles`` of ``value`` are read from (by ``quantile``)."""
        if self.name == "duckdb":
            return f"quantile_cont({value}, [{', '.join(number(q) for q in quantiles)}])"
        return f"array_agg({value} ORDER BY {value}) FILTER (WHERE {value} IS NOT NULL)"

    def quantile(self, kept: str, quantiles: Sequence[float], i: int) -> str:
        """The ``i``-th of ``quantiles`` from ``kept`` (the aggregate of ``quantiles``): linear between the two nearest
        ranks, (n − 1)·q counted from the smallest value."""
        if self.name == "duckdb":
            return f"{kept}[{i + 1}]"
        h = f"(cardinality({kept}) - 1) * {number(quantiles[i])}"
        low = f"element_at({kept}, CAST(floor({h}) AS BIGINT) + 1)"
        high = f"element_at({kept}, least(CAST(floor({h}) AS BIGINT) + 2, cardinality({kept})))"
        return f"{low} + ({h} - floor({h})) * ({high} - {low})"

    def bins(self, count: int) -> str:
        """A table ``b(bin)`` of the numbers 0 to ``count`` − 1."""
        if self.name == "duckdb":
            return f"range({count}) AS b(bin)"
        return f"UNNEST(sequence(0, {count - 1})) AS b(bin)"


DUCKDB = Dialect("duckdb")
TRINO = Dialect("trino")


def measures_sql(dialect: Dialect, tolerance: float) -> str:
    """Per scope: ``scope``, the numeric measures but KS and PSI (``numeric_predictions``, then ``NUMERIC_COLUMNS``
    from ``mean_diff`` to ``correlation``), ``label_predictions`` and ``agreement``."""
    quantiles = list(ABS_DIFF_QUANTILES.values())
    picked = ", ".join(f"{dialect.quantile('abs_diff_quantiles', quantiles, i)} AS {name}"
                       for i, name in enumerate(ABS_DIFF_QUANTILES))
    return f"""
SELECT scope, numeric_predictions, mean_diff, mean_abs_diff, {picked}, max_abs_diff, within_tolerance, correlation,
       label_predictions, agreement
FROM (
    SELECT {dialect.scope()} AS scope,
           count(p) AS numeric_predictions,
           avg(s - p) AS mean_diff,
           {MEAN_ABS_DIFF} AS mean_abs_diff,
           {dialect.quantiles('abs(s - p)', quantiles)} AS abs_diff_quantiles,
           max(abs(s - p)) AS max_abs_diff,
           avg(CASE WHEN p IS NULL THEN NULL WHEN abs(s - p) <= {number(tolerance)} THEN 1e0 ELSE 0e0 END) AS within_tolerance,
           corr(p, s) AS correlation,
           count(*) AS label_predictions,
           {AGREEMENT} AS agreement
    FROM predictions GROUP BY GROUPING SETS ((), (hour))
) AS aggregated"""


# Kolmogorov-Smirnov, exact without sorting every value. Both samples of a scope have the same size n (predictions
# are paired), so the gap between the two empirical distribution functions at x is (#production ≤ x − #shadow ≤ x)
# / n. The values are cut into equal-width buckets (the same for every scope): per scope and bucket, the net count
# gives the gap after each bucket, which the bucket's largest value reaches. The largest of those is a lower bound;
# inside a bucket the gap moves at most by as many values as one side has there, so only buckets that could go
# beyond the bound are walked value by value (the RANGE frame counts ties together).
def ks_sql(dialect: Dialect, buckets: int = KS_BUCKETS) -> str:
    """Per scope with numeric predictions: ``scope``, ``ks``. ``buckets``: Default: ``KS_BUCKETS`` (4096)."""
    return f"""
WITH v AS (
    SELECT hour, p AS x, 1 AS d FROM predictions WHERE p IS NOT NULL
    UNION ALL SELECT hour, s, -1 FROM predictions WHERE s IS NOT NULL
), extent AS (
    SELECT min(x) AS low, (max(x) - min(x)) / {buckets} AS width FROM v
), b AS (
    SELECT hour, x, d, CAST(CASE WHEN width > 0 THEN least(floor((x - low) / width), {buckets - 1}) ELSE 0 END AS INTEGER) AS bucket
    FROM v CROSS JOIN extent
), buckets AS (
    SELECT grouping(hour) AS overall, hour, bucket, sum(d) AS net,
           count(*) FILTER (WHERE d = 1) AS np, count(*) FILTER (WHERE d = -1) AS ns
    FROM b GROUP BY GROUPING SETS ((bucket), (hour, bucket))
), gaps AS (
    SELECT *, sum(net) OVER (PARTITION BY overall, hour ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS after
    FROM buckets
), bounds AS (
    SELECT *, after - net AS before, max(abs(after)) OVER (PARTITION BY overall, hour) AS reached,
           sum(np + ns) OVER (PARTITION BY overall, hour) / 2 AS n
    FROM gaps
), candidates AS (
    SELECT overall, hour, bucket, before FROM bounds WHERE abs(before) + greatest(np, ns) > reached
), inside AS (
    SELECT c.overall, c.hour, c.bucket, c.before, b.x, b.d FROM candidates c JOIN b ON b.bucket = c.bucket WHERE c.overall = 1
    UNION ALL
    SELECT c.overall, c.hour, c.bucket, c.before, b.x, b.d FROM candidates c JOIN b ON b.bucket = c.bucket AND b.hour = c.hour
    WHERE c.overall = 0
), walked AS (
    SELECT overall, hour, max(abs(gap)) AS largest FROM (
        SELECT overall, hour,
               before + sum(d) OVER (PARTITION BY overall, hour, bucket ORDER BY x RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS gap
        FROM inside) AS walking
    GROUP BY overall, hour
), scopes AS (
    SELECT DISTINCT overall, hour, reached, n FROM bounds
)
SELECT CASE WHEN s.overall = 1 THEN 'all' ELSE {dialect.hour('s.hour')} END AS scope,
       CAST(greatest(s.reached, coalesce(w.largest, 0)) AS DOUBLE) / s.n AS ks
FROM scopes s LEFT JOIN walked w ON w.overall = s.overall AND w.hour IS NOT DISTINCT FROM s.hour"""


def _bin(cuts: str, value: str) -> str:
    """SQL for the PSI bin of ``value``: how many of the cuts ``<cuts>1`` .. ``<cuts>9`` lie below it (a value equal to
    a cut goes to the lower bin). Nine comparisons, not a lambda over a list: this runs for every prediction."""
    return "(" + " + ".join(f"CAST({value} > {cuts}{i} AS INTEGER)" for i in range(1, PSI_BINS)) + ")"


# PSI bins cut at production's deciles of the scope: each prediction gets its bins under all cuts and under its hour's
# cuts in one pass; the joint counts of (production bin, shadow bin) per scope give both shares of every bin.
def psi_sql(dialect: Dialect, epsilon: float = PSI_EPSILON) -> str:
    """Per scope with numeric predictions: ``scope``, ``psi``. ``epsilon``: Default: ``PSI_EPSILON`` (0.0001)."""
    deciles = [i / PSI_BINS for i in range(1, PSI_BINS)]
    cuts = ", ".join(f"{dialect.quantile('kept', deciles, i)} AS c{i + 1}" for i in range(len(deciles)))
    return f"""
WITH edges AS (
    SELECT hour, {cuts} FROM (
        SELECT hour, {dialect.quantiles('p', deciles)} AS kept FROM predictions WHERE p IS NOT NULL
        GROUP BY GROUPING SETS ((), (hour))) AS kept_values
), bins AS (
    SELECT v.hour, {_bin('a.c', 'v.p')} AS pa, {_bin('a.c', 'v.s')} AS sa, {_bin('h.c', 'v.p')} AS ph, {_bin('h.c', 'v.s')} AS sh
    FROM predictions v JOIN edges h ON h.hour = v.hour CROSS JOIN (SELECT * FROM edges WHERE hour IS NULL) a
    WHERE v.p IS NOT NULL
), joint AS (
    SELECT {dialect.scope()} AS scope, coalesce(pa, ph) AS pb, coalesce(sa, sh) AS sb, count(*) AS n
    FROM bins GROUP BY GROUPING SETS ((pa, sa), (hour, ph, sh))
), shares AS (
    SELECT scope, greatest(CAST(coalesce(sum(n) FILTER (WHERE pb = bin), 0) AS DOUBLE) / sum(n), {number(epsilon)}) AS ps,
                  greatest(CAST(coalesce(sum(n) FILTER (WHERE sb = bin), 0) AS DOUBLE) / sum(n), {number(epsilon)}) AS ss
    FROM joint CROSS JOIN {dialect.bins(PSI_BINS)} GROUP BY scope, bin
)
SELECT scope, sum((ss - ps) * ln(ss / ps)) AS psi FROM shares GROUP BY scope"""


def confusion_sql(dialect: Dialect) -> str:
    """Per scope and pair of labels: ``scope`` and ``CONFUSION_COLUMNS``."""
    return (f"SELECT {dialect.scope()} AS scope, pl AS production_label, sl AS shadow_label, count(*) AS predictions "
            "FROM predictions GROUP BY GROUPING SETS ((pl, sl), (hour, pl, sl))")


def numeric_sql(dialect: Dialect, tolerance: float, epsilon: float = PSI_EPSILON) -> str:
    """Per scope with numeric predictions: ``scope`` and ``NUMERIC_COLUMNS`` (``tolerance``: the absolute difference
    counted as the same answer; ``epsilon``: the share of an empty PSI bin. Default: ``PSI_EPSILON``, 0.0001)."""
    columns = ", ".join(f"m.{c}" for c in NUMERIC_COLUMNS[1:-2])
    return f"""
SELECT m.scope, m.numeric_predictions AS predictions, {columns}, k.ks, x.psi
FROM ({measures_sql(dialect, tolerance)}) AS m
JOIN ({ks_sql(dialect)}) AS k ON k.scope = m.scope
JOIN ({psi_sql(dialect, epsilon)}) AS x ON x.scope = m.scope"""


def labels_sql(dialect: Dialect) -> str:
    """Per scope: ``scope`` and ``LABEL_COLUMNS``."""
    return f"SELECT {dialect.scope()} AS scope, count(*) AS predictions, {AGREEMENT} AS agreement, " \
           f"{MEAN_ABS_DIFF} AS mean_abs_diff FROM predictions GROUP BY GROUPING SETS ((), (hour))"
