"""shadow_report's engine on hand-computable capture files: counts, pairing, every measure, overall and per hour."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime

import numpy as np
import pytest
from capture_fixtures import PAIRS, REFERENCE, b64, psi_oracle, record, write_file, write_label_capture, write_reference_capture
from scipy import stats

from shadow_report import ReportError, ReportSettings, analyse, choose_variants, discover, parse_capture_path


def run(root, **settings):
    files, _ = discover(root)
    with tempfile.TemporaryDirectory() as scratch:
        return analyse(files, ReportSettings(**settings), scratch)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return run(write_reference_capture(tmp_path_factory.mktemp("capture")))


def test_records_are_counted_per_variant_with_every_problem(reference):
    assert reference.report["variants"] == REFERENCE["variants"]
    assert reference.report["endpoint"] == "churn"
    assert (reference.report["production_variant"], reference.report["shadow_variant"]) == ("production", "shadow")


def test_pairing_by_inference_id(reference):
    assert reference.report["pairing"] == REFERENCE["pairing"]
    assert reference.report["samples"]["unmatched_production"] == [{"inference_id": "id8"}]
    assert reference.report["samples"]["unmatched_shadow"] == [{"inference_id": "id9"}]


def test_problem_samples_show_the_line(reference):
    samples = reference.report["samples"]
    assert [s["excerpt"] for s in samples["malformed"]] == ['{"captureData": {"endpointOutput": ']
    assert samples["malformed"][0]["file"].endswith("datacapture/churn/production/2026/11/25/14/p14.jsonl")
    assert '"encoding":"PROTOBUF"' in samples["unknown_encoding"][0]["excerpt"]
    assert '"data":"%%%not-base64%%%"' in samples["undecodable_output"][0]["excerpt"]
    assert '"data":"0.33"' in samples["missing_inference_id"][0]["excerpt"]
    # The later of the two id5 records is the duplicate: the kept one (0.205) is what the measures use.
    assert samples["duplicate_inference_id"] == [{"variant": "shadow", "file": samples["duplicate_inference_id"][0]["file"],
                                                   "excerpt": "inferenceId id5"}]


def test_numeric_measures_equal_hand_computed_values(reference):
    production = [p for _, p, _ in PAIRS]
    shadow = [s for _, _, s in PAIRS]
    numeric = reference.report["numeric"]
    # Differences: +0.02, +0.05, -0.02, -0.60, +0.005, +0.005, -0.10.
    assert numeric["predictions"] == 7
    assert numeric["mean_diff"] == pytest.approx(-0.64 / 7, abs=1e-12)
    assert numeric["mean_abs_diff"] == pytest.approx(0.80 / 7, abs=1e-12)
    assert numeric["median_abs_diff"] == pytest.approx(0.02, abs=1e-12)
    assert numeric["p99_abs_diff"] == pytest.approx(0.10 + 0.94 * 0.50, abs=1e-12)  # rank 5.94 of 0..6
    assert numeric["max_abs_diff"] == pytest.approx(0.60, abs=1e-12)
    assert numeric["within_tolerance"] == pytest.approx(2 / 7, abs=1e-12)
    assert numeric["correlation"] == pytest.approx(stats.pearsonr(production, shadow).statistic, abs=1e-12)
    assert numeric["ks"] == pytest.approx(stats.ks_2samp(production, shadow).statistic, abs=1e-12)
    assert numeric["ks"] == pytest.approx(2 / 7, abs=1e-12)
    assert numeric["psi"] == pytest.approx(psi_oracle(production, shadow), abs=1e-12)


def test_labels_from_probabilities(reference):
    labels = reference.report["labels"]
    # production 0 0 1 1 | 0 1 1, shadow 0 0 1 0 | 0 1 0 at threshold 0.5.
    assert labels == {"predictions": 7, "agreement": pytest.approx(5 / 7, abs=1e-12),
                      "confusion": {"0": {"0": 3}, "1": {"0": 2, "1": 2}}}


def test_every_measure_per_hour(reference):
    hourly = reference.report["hourly"]
    assert [h["hour"] for h in hourly] == ["2026-11-25T14:00:00Z", "2026-11-25T15:00:00Z"]
    assert [(h["records"], h["usable"], h["paired"]) for h in hourly] == [
        ({"production": 6, "shadow": 5}, {"production": 4, "shadow": 4}, 4),
        ({"production": 4, "shadow": 6}, {"production": 4, "shadow": 4}, 3)]
    for hour in hourly:
        production = [p for h, p, _ in PAIRS if h == hour["hour"]]
        shadow = [s for h, _, s in PAIRS if h == hour["hour"]]
        diffs = np.abs(np.array(shadow) - np.array(production))
        numeric = hour["numeric"]
        assert numeric["predictions"] == len(production)
        assert numeric["mean_abs_diff"] == pytest.approx(diffs.mean(), abs=1e-12)
        assert numeric["median_abs_diff"] == pytest.approx(np.median(diffs), abs=1e-12)
        assert numeric["p99_abs_diff"] == pytest.approx(np.quantile(diffs, 0.99), abs=1e-12)
        assert numeric["ks"] == pytest.approx(stats.ks_2samp(production, shadow).statistic, abs=1e-12)
        assert numeric["psi"] == pytest.approx(psi_oracle(production, shadow), abs=1e-12)
    assert [h["labels"]["agreement"] for h in hourly] == [pytest.approx(3 / 4), pytest.approx(2 / 3)]
    assert hourly[0]["labels"]["confusion"] == {"0": {"0": 2}, "1": {"0": 1, "1": 1}}


def test_tolerance_and_threshold_are_settings(tmp_path):
    root = write_reference_capture(tmp_path / "c")
    report = run(root, tolerance=0.05, threshold=0.35).report
    assert report["numeric"]["within_tolerance"] == pytest.approx(5 / 7)  # 0.02 0.05 0.02 0.005 0.005
    # production 0 1 1 1 | 0 1 1, shadow 0 1 1 0 | 0 1 1 at threshold 0.35.
    assert report["labels"]["confusion"] == {"0": {"0": 2}, "1": {"0": 1, "1": 4}}


def test_window_keeps_records_by_inference_time(tmp_path):
    root = write_reference_capture(tmp_path / "c")
    report = run(root, start=datetime(2026, 11, 25, 14, 3), end=datetime(2026, 11, 25, 15, 2, tzinfo=UTC)).report
    # In [14:03, 15:02): production id3 id4 (no-id 14:05) id5 and the malformed line (no time: kept, counted);
    # shadow id3 id4 idx (unknown encoding) id5; the duplicate id5 (15:06) lies outside.
    assert report["variants"]["production"]["records"] == 5
    assert report["variants"]["production"]["outside_window"] == 5
    assert report["variants"]["shadow"]["records"] == 4
    assert report["variants"]["shadow"]["outside_window"] == 7
    assert report["variants"]["shadow"]["duplicate_inference_id"] == 0
    assert report["pairing"]["paired"] == 3
    assert report["settings"]["start"] == "2026-11-25T14:03:00+00:00"


def test_labels_multi_value_outputs_and_mismatches(tmp_path):
    root = write_label_capture(tmp_path / "c")
    report = run(root, endpoint="labels").report
    assert (report["production_variant"], report["shadow_variant"]) == ("blue", "blue-shadow")
    assert report["pairing"] == {"paired": 7, "unmatched_production": 0, "unmatched_shadow": 0, "numeric_pairs": 1,
                                 "label_pairs": 4, "kind_mismatch": 1, "length_mismatch": 1}
    assert report["numeric"]["predictions"] == 2
    assert report["numeric"]["mean_diff"] == pytest.approx(0.0, abs=1e-12)
    assert report["numeric"]["mean_abs_diff"] == pytest.approx(0.2, abs=1e-12)
    assert report["labels"] == {"predictions": 6, "agreement": pytest.approx(5 / 6),
                                "confusion": {"0": {"0": 1}, "1": {"1": 1}, "no": {"no": 1, "yes": 1}, "yes": {"yes": 2}}}


def test_blank_lines_and_no_output_records(tmp_path):
    write_file(tmp_path, "e", "production", "2026/01/02/03", "f", [record("a", "0.5"), "", "   ",
                                                                   '{"captureData": {}, "eventMetadata": {"inferenceId": "b"}}',
                                                                   "[1, 2]"])
    shadow = write_file(tmp_path, "e", "shadow", "2026/01/02/03", "f", [record("a", "0.5")])
    shadow.write_bytes(shadow.read_bytes() + b"\xff\xfe not utf-8\n" + record("b", "0.5").encode() + b"\n")
    report = run(tmp_path / "datacapture").report
    assert report["variants"]["shadow"]["malformed"] == 1 and report["variants"]["shadow"]["usable"] == 2
    assert report["samples"]["malformed"][-1]["excerpt"].endswith(" not utf-8")
    assert report["variants"]["production"] | {} == {"files": 1, "records": 3, "usable": 1, "outside_window": 0, "malformed": 1,
                                                      "missing_inference_id": 0, "no_output": 1, "unknown_encoding": 0,
                                                      "undecodable_output": 0, "duplicate_inference_id": 0}
    assert report["numeric"]["correlation"] is None  # one value each side: undefined, not NaN
    assert report["numeric"]["within_tolerance"] == 1.0


def test_lines_of_spaces_and_carriage_returns_are_blank_and_base64_reads_its_content_type(tmp_path):
    # Blank: empty, spaces, carriage returns, or both; not blank: a record after spaces, a tab, a line of text. The
    # observed content type is read for BASE64 outputs only: JSON (any case) reads the list, else the text is CSV.
    write_file(tmp_path, "e", "production", "2026/01/02/03", "f", [
        record("a", "0.5"), "\r", "  \r", " \r\r", "", "   " + record("b", "0.2"), "\t", "not json",
        record("c", "0.1"), record("d", "0.3")])
    write_file(tmp_path, "e", "shadow", "2026/01/02/03", "f", [
        record("a", "0.5"), record("b", "0.25"),
        record("c", b64("[0.15]"), encoding="BASE64", content_type="Application/JSON"),
        record("d", b64("0.35"), encoding="BASE64", content_type="text/csv")])
    report = run(tmp_path / "datacapture").report
    assert report["variants"]["production"]["records"] == 6 and report["variants"]["production"]["malformed"] == 2
    assert report["pairing"]["paired"] == 4 and report["pairing"]["numeric_pairs"] == 4
    assert report["numeric"]["mean_abs_diff"] == pytest.approx((0 + 0.05 + 0.05 + 0.05) / 4)
    assert report["samples"]["malformed"][0]["excerpt"] == "\t"


@pytest.mark.parametrize(("variants", "production", "shadow", "expected"), [
    (["production", "shadow"], None, None, ("production", "shadow")),
    (["AllTraffic", "ShadowV2"], None, None, ("AllTraffic", "ShadowV2")),
    (["a", "b", "c"], "a", "c", ("a", "c")),
    (["a", "b"], "b", None, ("b", "a")),
    (["a", "b"], None, "a", ("b", "a")),
])
def test_choose_variants(variants, production, shadow, expected):
    assert choose_variants(variants, production, shadow) == expected


@pytest.mark.parametrize(("variants", "production", "shadow", "message"), [
    (["a", "b"], None, None, r"^cannot tell production from shadow among variants a, b: give --production-variant and --shadow-variant$"),
    (["shadow-1", "shadow-2"], None, None, r"^cannot tell production from shadow among variants shadow-1, shadow-2"),
    (["a", "b", "shadow"], None, None, r"^found 3 variant\(s\) \(a, b, shadow\): give --production-variant and --shadow-variant$"),
    (["a", "b", "c"], "a", None, r"^cannot tell the other variant from --production-variant alone among 3 variants \(a, b, c\)"),
    (["a", "b"], "x", None, r"^--production-variant 'x' has no capture files; variants found: a, b$"),
    (["a", "b"], "a", "a", r"^--production-variant and --shadow-variant are both 'a'$"),
])
def test_choose_variants_errors(variants, production, shadow, message):
    with pytest.raises(ReportError, match=message):
        choose_variants(variants, production, shadow)


def test_mixed_endpoints_need_endpoint(tmp_path):
    root = write_label_capture(tmp_path / "c")
    with pytest.raises(ReportError, match=r"^capture files of 2 endpoints \(labels, other\): choose one with --endpoint$"):
        run(root)
    with pytest.raises(ReportError, match=r"^--endpoint 'nope' has no capture files; found: labels, other$"):
        run(root, endpoint="nope")


@pytest.mark.parametrize(("settings", "message"), [
    ({"tolerance": -1}, r"^--tolerance must be a number >= 0, got -1$"),
    ({"threshold": "high"}, r"^--threshold must be a number >= 0, got 'high'$"),
    ({"start": datetime(2026, 1, 2), "end": datetime(2026, 1, 1)}, r"^--start must be before --end"),
])
def test_settings_are_checked(tmp_path, settings, message):
    root = write_reference_capture(tmp_path / "c")
    with pytest.raises(ReportError, match=message):
        run(root, **settings)


def test_capture_paths():
    assert parse_capture_path("/x/datacapture/churn/shadow/2026/11/25/14/abc.jsonl") == (
        "churn", "shadow", datetime(2026, 11, 25, 14, tzinfo=UTC))
    assert parse_capture_path("churn/shadow/2026/11/25/14/abc.json") is None
    assert parse_capture_path("churn/shadow/2026/13/25/14/abc.jsonl") is None  # no month 13
    assert parse_capture_path("shadow/2026/11/25/14/abc.jsonl") is None  # no endpoint above the variant


def test_discover_reads_the_endpoint_from_the_absolute_path(tmp_path):
    root = write_reference_capture(tmp_path)
    (root / "churn" / "notes.txt").write_text("not capture")
    files, skipped = discover(root / "churn" / "shadow")
    assert [(f.endpoint, f.variant, f.hour.hour) for f in files] == [("churn", "shadow", 14), ("churn", "shadow", 15)]
    assert discover(root)[1] == 1
    with pytest.raises(ReportError, match=r"^source '.*missing' does not exist$"):
        discover(tmp_path / "missing")


def test_capture_files_are_not_modified(tmp_path):
    root = write_reference_capture(tmp_path / "c")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}
    run(root)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()} == before


def test_batches_of_files_give_the_same_report(tmp_path, monkeypatch, reference):
    """The engine loads files batch by batch (bounded memory); one file per batch changes nothing."""
    from shadow_report import engine

    root = write_reference_capture(tmp_path / "c")
    calls = []
    monkeypatch.setattr(engine, "BATCH_BYTES", 1)
    files, _ = discover(root)
    with tempfile.TemporaryDirectory() as scratch:
        report = analyse(files, ReportSettings(), scratch, progress=lambda done, total: calls.append((done, total))).report
    total = sum(f.size for f in files)
    assert [c[1] for c in calls] == [total] * 4 and calls[-1][0] == total and len({c[0] for c in calls}) == 4
    expected = reference.report
    assert {k: v for k, v in report.items() if k not in ("samples", "numeric", "hourly")} == \
        {k: v for k, v in expected.items() if k not in ("samples", "numeric", "hourly")}
    def relative(samples):
        return {kind: [{**item, "file": item["file"].split("/datacapture/")[1]} if "file" in item else item for item in items]
                for kind, items in samples.items()}

    assert relative(report["samples"]) == relative(expected["samples"])
    assert report["numeric"] == pytest.approx(expected["numeric"], abs=1e-12)
    for hour, expected_hour in zip(report["hourly"], expected["hourly"], strict=True):
        assert {k: v for k, v in hour.items() if k != "numeric"} == {k: v for k, v in expected_hour.items() if k != "numeric"}
        assert hour["numeric"] == pytest.approx(expected_hour["numeric"], abs=1e-12)
