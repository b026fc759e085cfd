"""shadow_report's engine takes shortcuts for speed; each must give the answer of the plain definition.

- the KS statistic walks only the buckets of values where the largest gap can be: any number of buckets, ties and
  hours give scipy's two-sample statistic;
- an output that is one CSV number is read without splitting: every encoding of the same predictions gives the
  same report;
- lines are split by DuckDB from whole files: \\r\\n endings, a byte order mark, blank lines, lines that are not
  UTF-8;
- duplicates are ranked from their lines read again: inferenceTime, then eventId, then file, then line;
- large files are read in pieces, within a small memory limit;
- the scatter plot's sample depends on the predictions only, not on the order DuckDB's threads hand them over.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from capture_fixtures import b64, psi_oracle, record, write_file
from scipy import stats

from shadow_report import ReportSettings, analyse, discover, engine
from shadow_report import plots as charts

HOURS = ["2026-11-25/09", "2026-11-25/10", "2026-11-25/11"]


def run(root, **settings):
    files, _ = discover(root)
    with tempfile.TemporaryDirectory() as scratch:
        return analyse(files, ReportSettings(**settings), scratch)


def write_pairs(root: Path, pairs_per_hour: int, draw) -> dict[str, list[tuple[float, float]]]:
    """Paired numeric records over HOURS, production and shadow values from ``draw(rng)``; {hour: [(p, s)]}."""
    rng = random.Random(11)
    written: dict[str, list[tuple[float, float]]] = {}
    for h, hour in enumerate(HOURS):
        folder = hour.replace("-", "/")
        pairs = [draw(rng) for _ in range(pairs_per_hour)]
        written[f"{hour[:10]}T{hour[11:]}:00:00Z"] = pairs
        for variant, side in (("production", 0), ("shadow", 1)):
            write_file(root, "churn", variant, folder, "part", [
                record(f"r{h}-{i}", repr(pair[side]), time=f"{hour[:10]}T{hour[11:]}:{i % 60:02d}:00Z")
                for i, pair in enumerate(pairs)])
    return written


@pytest.mark.parametrize("values", ["continuous", "ties", "constant"])
@pytest.mark.parametrize("buckets", [1, 3, 64, 4096, None])
def test_ks_equals_scipy_whatever_the_buckets(tmp_path, monkeypatch, values, buckets):
    draws = {
        "continuous": lambda rng: (rng.betavariate(2, 5), rng.betavariate(2.2, 5)),
        "ties": lambda rng: (round(rng.random(), 1), round(min(1.0, rng.random() * 1.1), 1)),  # 11 values: long runs of ties
        "constant": lambda rng: (0.25, 0.25),
    }
    written = write_pairs(tmp_path, 700, draws[values])
    monkeypatch.setattr(engine, "KS_BUCKETS", buckets)
    report = run(tmp_path / "datacapture").report
    every = [pair for pairs in written.values() for pair in pairs]
    scopes = {"all": (report["numeric"], every), **{h["hour"]: (h["numeric"], written[h["hour"]]) for h in report["hourly"]}}
    assert set(scopes) == {"all", *written}
    for scope, (numeric, pairs) in scopes.items():
        production, shadow = [p for p, _ in pairs], [s for _, s in pairs]
        assert numeric["ks"] == pytest.approx(stats.ks_2samp(production, shadow).statistic, abs=1e-12), scope
        diffs = np.abs(np.array(shadow) - np.array(production))
        assert numeric["median_abs_diff"] == pytest.approx(np.quantile(diffs, 0.5), abs=1e-12), scope
        assert numeric["p99_abs_diff"] == pytest.approx(np.quantile(diffs, 0.99), abs=1e-12), scope
        assert numeric["psi"] == pytest.approx(psi_oracle(production, shadow), abs=1e-9), scope


def same_report(report: dict, expected: dict) -> None:
    """Equal reports, numbers to 1e-12 (sums in another order may differ in the last bit)."""
    assert report["variants"] == expected["variants"]
    assert report["pairing"] == expected["pairing"]
    assert report["labels"] == expected["labels"]
    assert report["numeric"] == pytest.approx(expected["numeric"], abs=1e-12)
    assert len(report["hourly"]) == len(expected["hourly"])
    for hour, expected_hour in zip(report["hourly"], expected["hourly"], strict=True):
        assert {k: v for k, v in hour.items() if k != "numeric"} == {k: v for k, v in expected_hour.items() if k != "numeric"}
        assert hour["numeric"] == pytest.approx(expected_hour["numeric"], abs=1e-12)


def encoded(value: float, encoding: str) -> dict:
    text = repr(value)
    return {"csv": {"data": text}, "csv-spaces": {"data": f"  {text} "},
            # one number around which splitting drops line breaks, tabs, quotes or an empty field: still one number
            "csv-line-breaks": {"data": f"\n{text}\r\n"}, "csv-tab": {"data": f"\t{text}\n"},
            "csv-quoted": {"data": f'"{text}"'}, "csv-trailing-comma": {"data": f"{text},"},
            "base64-csv-line-break": {"data": b64(f"{text}\n"), "encoding": "BASE64"},
            "json-number": {"data": text, "encoding": "JSON", "content_type": "application/json"},
            "json-list": {"data": f"[{text}]", "encoding": "JSON", "content_type": "application/json"},
            "json-predictions": {"data": json.dumps({"predictions": [value]}), "encoding": "JSON", "content_type": "application/json"},
            "base64-csv": {"data": b64(text), "encoding": "BASE64"},
            "base64-json": {"data": b64(f"[{text}]"), "encoding": "BASE64", "content_type": "application/json"}}[encoding]


ENCODINGS = ["csv", "csv-spaces", "csv-line-breaks", "csv-tab", "csv-quoted", "csv-trailing-comma", "base64-csv-line-break",
             "json-number", "json-list", "json-predictions", "base64-csv", "base64-json"]


@pytest.mark.parametrize("encoding", ENCODINGS[1:])
def test_every_encoding_of_one_number_gives_the_report_of_plain_csv(tmp_path, encoding):
    rng = random.Random(3)
    pairs = [(rng.random(), rng.random()) for _ in range(50)]

    def capture(root: Path, production_encoding: str) -> Path:
        write_file(root, "churn", "production", "2026/11/25/09", "p",
                   [record(f"id{i}", **encoded(p, production_encoding)) for i, (p, _) in enumerate(pairs)])
        write_file(root, "churn", "shadow", "2026/11/25/09", "s",
                   [record(f"id{i}", **encoded(s, "csv")) for i, (_, s) in enumerate(pairs)])
        return root / "datacapture"

    plain = run(capture(tmp_path / "plain", "csv")).report
    other = run(capture(tmp_path / "other", encoding)).report
    assert other["pairing"] == plain["pairing"] == {"paired": 50, "unmatched_production": 0, "unmatched_shadow": 0,
                                                     "numeric_pairs": 50, "label_pairs": 0, "kind_mismatch": 0, "length_mismatch": 0}
    same_report(other, plain)


def test_one_number_against_a_list_or_a_label_is_a_mismatch(tmp_path):
    write_file(tmp_path, "e", "production", "2026/11/25/09", "p",
               [record("a", "0.5"), record("b", "0.5"), record("c", "0.25,0.75"), record("d", "yes")])
    write_file(tmp_path, "e", "shadow", "2026/11/25/09", "s",
               [record("a", "0.4,0.6"), record("b", "no"), record("c", "[0.5, 0.5]", encoding="JSON"), record("d", "yes")])
    report = run(tmp_path / "datacapture").report
    assert report["pairing"] == {"paired": 4, "unmatched_production": 0, "unmatched_shadow": 0, "numeric_pairs": 1,
                                 "label_pairs": 1, "kind_mismatch": 1, "length_mismatch": 1}
    assert report["numeric"]["predictions"] == 2  # c: 0.25 → 0.5 and 0.75 → 0.5
    assert report["numeric"]["mean_abs_diff"] == pytest.approx(0.25)
    assert report["labels"]["confusion"] == {"0": {"1": 1}, "1": {"1": 1}, "yes": {"yes": 1}}


def test_line_endings_byte_order_mark_and_blank_lines(tmp_path):
    lines = [record("a", "0.1"), "", "   ", "  " + record("b", "0.2"), " \t ", "\t" + record("c", "0.3"), record("d", "0.4")]
    production = write_file(tmp_path, "e", "production", "2026/11/25/09", "p", [])
    production.write_bytes("\ufeff".encode() + "\r\n".join(lines).encode() + b"\r\n")
    write_file(tmp_path, "e", "shadow", "2026/11/25/09", "s", [record(i, "0.5") for i in "abcd"])
    report = run(tmp_path / "datacapture").report
    # a (after the byte order mark), b (leading spaces) and d are records; a tab is not a space: " \t " and the
    # line starting with a tab are malformed records; empty and space-only lines are not records.
    assert report["variants"]["production"] | {} == {
        "files": 1, "records": 5, "usable": 3, "outside_window": 0, "malformed": 2, "missing_inference_id": 0,
        "no_output": 0, "unknown_encoding": 0, "undecodable_output": 0, "duplicate_inference_id": 0}
    assert report["pairing"]["paired"] == 3 and report["samples"]["unmatched_shadow"] == [{"inference_id": "c"}]
    assert sorted(s["excerpt"][:3] for s in report["samples"]["malformed"]) == ['\t{"', " \t "]


def test_lines_that_are_not_utf8_are_malformed_and_the_rest_of_the_file_is_read(tmp_path):
    production = write_file(tmp_path, "e", "production", "2026/11/25/09", "p", [])
    production.write_bytes(record("a", "0.1").encode() + b"\n\xc3\x28 bad\n" + record("b", "0.2").encode() + b"\n\xff\n")
    write_file(tmp_path, "e", "shadow", "2026/11/25/09", "s", [record("a", "0.1"), record("b", "0.25")])
    report = run(tmp_path / "datacapture").report
    assert (report["variants"]["production"]["usable"], report["variants"]["production"]["malformed"]) == (2, 2)
    assert [s["excerpt"] for s in report["samples"]["malformed"]] == ["?", "?( bad"]
    assert report["numeric"]["max_abs_diff"] == pytest.approx(0.05)


@pytest.mark.parametrize("batch_bytes", [engine.BATCH_BYTES, 1])  # one batch, and one file per batch
def test_duplicates_keep_the_earliest_by_time_then_event_then_file_then_line(tmp_path, monkeypatch, batch_bytes):
    t = "2026-11-25T09:10:00Z"
    write_file(tmp_path, "e", "production", "2026/11/25/09", "a", [
        record("late", "0.9", time="2026-11-25T09:30:00Z"),
        record("event", "0.9", time=t, event_id="z"),
        record("file", "0.1", time=t, event_id="e"),
        record("line", "0.1", time=t, event_id="e"),
        record("line", "0.9", time=t, event_id="e"),
    ])
    write_file(tmp_path, "e", "production", "2026/11/25/09", "b", [record("file", "0.9", time=t, event_id="e")])
    write_file(tmp_path, "e", "production", "2026/11/25/10", "c", [  # a later file holds the earliest record
        record("late", "0.1", time="2026-11-25T09:20:00Z"), record("event", "0.1", time=t, event_id="a")])
    write_file(tmp_path, "e", "shadow", "2026/11/25/09", "s", [record(i, "0.1") for i in ("late", "event", "file", "line")])
    monkeypatch.setattr(engine, "BATCH_BYTES", batch_bytes)
    report = run(tmp_path / "datacapture").report
    assert report["variants"]["production"]["duplicate_inference_id"] == 4
    # Kept (all 0.1, as the shadow's): late from c (09:20), event from c (eventId a), file from a (a sorts before b),
    # line: its first line.
    assert report["numeric"]["max_abs_diff"] == pytest.approx(0.0, abs=1e-12)
    assert [(s["file"][-7:], s["excerpt"]) for s in report["samples"]["duplicate_inference_id"]] == [
        ("a.jsonl", "inferenceId event"), ("a.jsonl", "inferenceId late"), ("a.jsonl", "inferenceId line"),
        ("b.jsonl", "inferenceId file")]


def test_large_files_read_in_pieces_and_a_small_memory_limit_give_the_same_report(tmp_path, monkeypatch):
    """Files larger than PIECE_BYTES are read in pieces cut at line ends: line numbers (which order duplicates),
    problem lines and pairs stay those of the whole file."""
    write_pairs(tmp_path, 3000, lambda rng: (rng.random(), rng.random()))
    production = tmp_path / "datacapture/churn/production/2026/11/25/10/part.jsonl"
    lines = production.read_bytes().split(b"\n")
    lines[10:10] = [b'{"captureData": ', record("r1-20", "0.5", event_id="e").encode(), b"\xff\xfe", b"   ", b"[1]"]
    production.write_bytes("\ufeff".encode() + b"\r\n".join(lines))
    whole = run(tmp_path / "datacapture").report
    assert whole["variants"]["production"]["malformed"] == 3 and whole["variants"]["production"]["duplicate_inference_id"] == 1
    monkeypatch.setattr(engine, "PIECE_BYTES", 20_000)
    pieces = run(tmp_path / "datacapture", memory_limit="64MB").report
    same_report(pieces, whole)
    assert pieces["samples"] == whole["samples"]


@pytest.mark.parametrize(("low", "high", "most", "ticks", "labels"), [
    (0, 30000, 9, [0, 5000, 10000, 15000, 20000, 25000, 30000], ["0", "5000", "10000", "15000", "20000", "25000", "30000"]),
    (-0.09, 0.09, 9, [-0.08, -0.06, -0.04, -0.02, 0, 0.02, 0.04, 0.06, 0.08],
     ["\u22120.08", "\u22120.06", "\u22120.04", "\u22120.02", "0.00", "0.02", "0.04", "0.06", "0.08"]),
    (-0.09, 0.09, 8, [-0.075, -0.05, -0.025, 0, 0.025, 0.05, 0.075],
     ["\u22120.075", "\u22120.050", "\u22120.025", "0.000", "0.025", "0.050", "0.075"]),
    (0, 105, 9, [0, 20, 40, 60, 80, 100], ["0", "20", "40", "60", "80", "100"]),
    (-0.05, 1.05, 9, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
])
def test_plot_ticks_are_round_numbers(low, high, most, ticks, labels):
    values, decimals = charts.nice_ticks(low, high, most)
    assert values == pytest.approx(ticks)
    assert [charts._label(v, decimals) for v in values] == labels


def test_plots_of_degenerate_data_are_drawn(tmp_path):
    """One pair in one hour: one histogram bar of width zero, one scatter point, one point of agreement."""
    from test_shadow_report_cli import png_size

    from shadow_report import render

    write_file(tmp_path, "e", "production", "2026/11/25/09", "p", [record("a", "0.5")])
    write_file(tmp_path, "e", "shadow", "2026/11/25/09", "s", [record("a", "0.5")])
    analysis = run(tmp_path / "datacapture")
    assert analysis.histogram == [(0.0, 0.0, 1)] and analysis.scatter == [(0.5, 0.5)]
    out = tmp_path / "out"
    out.mkdir()
    written = render.write_plots(analysis, str(out))
    assert sorted(written) == ["differences", "hourly_agreement", "scatter"]
    assert [png_size(Path(written[k])) for k in ("differences", "scatter", "hourly_agreement")] == [(800, 450), (550, 550), (800, 450)]


def test_the_scatter_sample_depends_on_the_values_not_on_the_order_of_rows():
    import duckdb

    rng = random.Random(5)
    rows = [(round(rng.random(), 3), round(rng.random(), 3)) for _ in range(3 * engine.SCATTER_POINTS)]
    samples = []
    for ordered in (rows, rows[::-1], sorted(rows)):
        connection = duckdb.connect()
        connection.execute("CREATE TABLE predictions (hour TIMESTAMPTZ, p DOUBLE, s DOUBLE, pl VARCHAR, sl VARCHAR)")
        connection.execute("INSERT INTO predictions SELECT NULL, unnest($p), unnest($s), NULL, NULL",
                           {"p": [p for p, _ in ordered], "s": [s for _, s in ordered]})
        connection.execute("INSERT INTO predictions VALUES (NULL, NULL, NULL, 'a', 'b')")  # a label: never a point
        samples.append(engine._scatter(connection))
    assert samples[0] == samples[1] == samples[2]
    assert len(samples[0]) == engine.SCATTER_POINTS and set(samples[0]) <= set(rows)


def test_ks_buckets_follow_the_square_root_of_the_values(monkeypatch):
    """The bucket count only changes the time KS takes (see the KS test above): sqrt(values) rounded up to a power of
    two, 64 to 4,096."""
    assert [engine.ks_buckets(n) for n in (0, 1, 5_000, 200_000, 666_666, 6_666_666, 10**12)] == [64, 64, 128, 512, 1024, 4096, 4096]
    monkeypatch.setattr(engine, "KS_BUCKETS", 3)
    assert engine.ks_buckets(666_666) == 3


def test_charts_drawn_while_the_measures_are_computed_are_the_charts_drawn_after(tmp_path):
    """shadow-report draws the charts as soon as their data is known: the same data as the finished analysis holds,
    the same PNG bytes as drawn from it."""
    from concurrent.futures import ThreadPoolExecutor

    from shadow_report import render

    write_pairs(tmp_path, 300, lambda rng: (rng.random(), rng.random()))
    files, _ = discover(tmp_path / "datacapture")
    early: list[tuple] = []
    with tempfile.TemporaryDirectory() as scratch:
        analysis = analyse(files, ReportSettings(), scratch, charts=lambda *data: early.append(data))
    agreement = render.hourly_agreement(analysis.report)
    assert len(agreement) == len(HOURS) and all(0 < share < 1 for _, share in agreement)
    assert early == [("churn", "production", "shadow", analysis.histogram, analysis.scatter, agreement)]
    later = render.write_all(analysis, str(tmp_path / "later"), "src")
    with ThreadPoolExecutor(max_workers=3) as pool:
        endpoint, production, shadow, histogram, scatter, agreement = early[0]
        drawn = render.draw_charts(pool, endpoint, production, shadow, histogram=histogram, scatter=scatter,
                                   agreement=agreement)
        assert sorted(drawn) == ["differences", "hourly_agreement", "scatter"]
        now = render.write_all(analysis, str(tmp_path / "early"), "src", drawn=drawn)
    assert sorted(now) == sorted(later) == ["differences", "hourly_agreement", "json", "markdown", "scatter"]
    for kind in now:
        assert Path(now[kind]).read_bytes() == Path(later[kind]).read_bytes(), kind
