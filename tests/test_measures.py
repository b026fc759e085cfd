"""shadow_runtime.measures (stdlib only, shared by the report engine and the constructs): each capture measure is
defined once; its DuckDB rendering (the engine's) and its Trino rendering (Athena's named queries, transpiled by
sqlglot) give the same figures, which are the textbook ones."""

from __future__ import annotations

import random
import tempfile

import duckdb
import numpy as np
import pytest
import sqlglot
from capture_fixtures import psi_oracle, record, write_file
from scipy import stats
from shadow_runtime import measures
from shadow_runtime.measures import DUCKDB, TRINO

from shadow_report import ReportSettings, analyse, discover

HOURS = ["2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z"]
TOLERANCE = 0.05


@pytest.fixture(scope="module")
def predictions():
    """A predictions relation of both dialects' shapes (hour as a timestamp for DuckDB, as text for Trino): numeric
    pairs with ties, and label rows (p and s NULL) that no numeric measure may count."""
    rng = random.Random(17)
    rows = []
    for hour in HOURS:
        for _ in range(400):
            p = round(rng.betavariate(2, 5), 2)
            s = round(min(1.0, max(0.0, p + rng.gauss(0.02, 0.05))), 2)
            rows.append((hour, p, s, "1" if p >= 0.5 else "0", "1" if s >= 0.5 else "0"))
        for _ in range(100):
            rows.append((hour, None, None, rng.choice("ab"), rng.choice("ab")))
    connections = {}
    for name, hour_type in (("duckdb", "TIMESTAMPTZ"), ("trino", "VARCHAR")):
        connection = duckdb.connect()
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute(f"CREATE TABLE predictions (hour {hour_type}, p DOUBLE, s DOUBLE, pl VARCHAR, sl VARCHAR)")
        connection.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?)", rows)
        connections[name] = connection
    return rows, connections


def run(connections, dialect, sql: str) -> dict[str, dict]:
    """``sql`` rendered for ``dialect``, run on DuckDB (Trino's through sqlglot, as the tests run Athena's): rows by scope."""
    connection = connections[dialect.name]
    if dialect is TRINO:
        sql = sqlglot.transpile(sql, read="trino", write="duckdb")[0]
    cursor = connection.execute(sql)
    header = [d[0] for d in cursor.description]
    rows = [dict(zip(header, row, strict=True)) for row in cursor.fetchall()]
    return {row["scope"]: row for row in rows} if "production_label" not in header else rows


def expected_numeric(rows, scope):
    numeric = [(p, s) for hour, p, s, _, _ in rows if p is not None and scope in ("all", hour)]
    production, shadow = np.array([p for p, _ in numeric]), np.array([s for _, s in numeric])
    diffs = np.abs(shadow - production)
    return {"predictions": len(numeric), "mean_diff": float(np.mean(shadow - production)), "mean_abs_diff": float(np.mean(diffs)),
            "median_abs_diff": float(np.quantile(diffs, 0.5)), "p99_abs_diff": float(np.quantile(diffs, 0.99)),
            "max_abs_diff": float(np.max(diffs)), "within_tolerance": float(np.mean(diffs <= TOLERANCE)),
            "correlation": float(np.corrcoef(production, shadow)[0, 1]),
            "ks": float(stats.ks_2samp(production, shadow).statistic), "psi": psi_oracle(production, shadow)}


@pytest.mark.parametrize("dialect", [DUCKDB, TRINO], ids=lambda d: d.name)
def test_numeric_measures_are_the_textbook_ones_in_both_dialects(predictions, dialect):
    rows, connections = predictions
    got = run(connections, dialect, measures.numeric_sql(dialect, TOLERANCE))
    assert set(got) == {"all", *HOURS}
    for scope, figures in got.items():
        expected = expected_numeric(rows, scope)
        assert list(figures) == ["scope", *measures.NUMERIC_COLUMNS]
        assert {k: figures[k] for k in expected} == pytest.approx(expected, abs=1e-12), scope


@pytest.mark.parametrize("dialect", [DUCKDB, TRINO], ids=lambda d: d.name)
def test_agreement_and_confusion_count_every_compared_prediction(predictions, dialect):
    rows, connections = predictions
    labels = run(connections, dialect, measures.labels_sql(dialect))
    confusion = run(connections, dialect, measures.confusion_sql(dialect))
    for scope in ("all", *HOURS):
        chosen = [(pl, sl) for hour, _, _, pl, sl in rows if scope in ("all", hour)]
        assert labels[scope]["predictions"] == len(chosen)
        assert labels[scope]["agreement"] == pytest.approx(sum(pl == sl for pl, sl in chosen) / len(chosen), abs=1e-12)
        numeric = [abs(s - p) for hour, p, s, _, _ in rows if scope in ("all", hour) and p is not None]
        assert labels[scope]["mean_abs_diff"] == pytest.approx(sum(numeric) / len(numeric), abs=1e-12)
        counted = {(r["production_label"], r["shadow_label"]): r["predictions"] for r in confusion if r["scope"] == scope}
        assert counted == {pair: chosen.count(pair) for pair in set(chosen)}


def test_quantiles_of_few_values_interpolate_like_numpy():
    """Athena's exact quantile (a sorted array read by rank) on one, two and three values, and on none."""
    connection = duckdb.connect()
    qs = [0.0, 0.1, 0.5, 0.99, 1.0]
    kept = TRINO.quantiles("x", qs)
    picks = ", ".join(f"{TRINO.quantile('kept', qs, i)} AS q{i}" for i in range(len(qs)))
    for values in ([0.3], [0.3, 0.1], [0.5, 0.1, 0.2], []):
        table = (f"(VALUES {', '.join(f'({v!r}e0)' for v in values)}) AS t(x)" if values
                 else "(SELECT CAST(NULL AS DOUBLE) AS x WHERE false) AS t")
        sql = f"SELECT {picks} FROM (SELECT {kept} AS kept FROM {table}) AS k"
        got = connection.execute(sqlglot.transpile(sql, read="trino", write="duckdb")[0]).fetchone()
        expected = [float(np.quantile(values, q)) for q in qs] if values else [None] * len(qs)
        assert list(got) == pytest.approx(expected, abs=1e-15), values


def test_pair_kind_and_label_rules():
    connection = duckdb.connect()
    cases = [("numeric", "numeric", 1, 1, "numeric"), ("label", "label", 2, 2, "label"), ("numeric", "label", 1, 1, "kind_mismatch"),
             ("label", "numeric", 1, 2, "kind_mismatch"), ("numeric", "numeric", 2, 1, "length_mismatch")]
    for pk, sk, pn, sn, kind in cases:
        sql = f"SELECT {measures.pair_kind('pk', 'sk', 'pn', 'sn')} FROM (SELECT ? AS pk, ? AS sk, ? AS pn, ? AS sn)"
        assert connection.execute(sql, [pk, sk, pn, sn]).fetchone()[0] == kind
    assert set(measures.PAIR_COUNTS) == set(measures.PAIR_KINDS)
    assert [connection.execute(f"SELECT {measures.label('?', 0.5)}", [v]).fetchone()[0] for v in (0.49, 0.5, 0.9)] == ["0", "1", "1"]
    assert measures.number(0.01) == "0.01e0" and measures.number(1e-05) == "1e-05" and measures.number(3) == "3.0e0"


def test_the_engine_shares_within_tolerance_among_numeric_predictions_only(tmp_path):
    """Labels compared in the same scope count for agreement, not for the share of numbers within tolerance."""
    write_file(tmp_path, "e", "production", "2026/11/25/09", "p",
               [record("a", "0.5"), record("b", "0.5"), record("c", "yes"), record("d", "no")])
    write_file(tmp_path, "e", "shadow", "2026/11/25/09", "s",
               [record("a", "0.505"), record("b", "0.9"), record("c", "yes"), record("d", "yes")])
    files, _ = discover(tmp_path / "datacapture")
    with tempfile.TemporaryDirectory() as scratch:
        report = analyse(files, ReportSettings(), scratch).report
    assert report["numeric"]["predictions"] == 2 and report["numeric"]["within_tolerance"] == pytest.approx(0.5)
    assert report["labels"]["predictions"] == 4 and report["labels"]["agreement"] == pytest.approx(0.75)  # a, b (both "1"), c agree
