"""The shadow-report command: outputs (Markdown, JSON, PNG), s3:// sources in moto, one-line errors, end to end
with the runtime double's capture records."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import boto3
import numpy as np
import pytest
from capture_fixtures import REFERENCE, record, write_file, write_label_capture, write_reference_capture
from moto import mock_aws
from moto.server import ThreadedMotoServer

from shadow_report import cli
from shadow_report.sources import download_s3

SCRIPT = Path(sys.executable).parent / "shadow-report"
REGION = "us-east-1"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a valid PNG (signature, then an IHDR chunk with a matching CRC)."""
    import zlib

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(data[12:29])
    assert data.endswith(b"IEND\xaeB`\x82")
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    root = write_reference_capture(base / "capture")
    out = base / "out"
    assert cli.main([str(root), "--out", str(out), "--no-progress"]) == 0
    return root, out


def test_writes_json_markdown_and_three_pngs(written):
    root, out = written
    assert sorted(p.name for p in out.iterdir()) == [
        "differences.png", "hourly_agreement.png", "report.json", "report.md", "scatter.png"]
    for name in ("differences.png", "hourly_agreement.png"):
        assert png_size(out / name) == (800, 450)
    assert png_size(out / "scatter.png") == (550, 550)


def test_json_report(written):
    root, out = written
    report = json.loads((out / "report.json").read_text())
    assert report["source"] == str(root)
    assert report["variants"] == REFERENCE["variants"]
    assert report["pairing"] == REFERENCE["pairing"]
    assert report["numeric"]["max_abs_diff"] == pytest.approx(0.6)
    assert report["labels"]["confusion"] == {"0": {"0": 3}, "1": {"0": 2, "1": 2}}


def test_markdown_report(written):
    _, out = written
    text = (out / "report.md").read_text()
    for line in ("# Shadow test report: churn",
                 "| records | 10 | 11 |", "| usable | 8 | 8 |", "| malformed | 1 | 0 |", "| duplicate inference id | 0 | 1 |",
                 "- paired: 7 (7 numeric, 0 label)", "- unmatched: 1 production, 1 shadow",
                 "| max absolute difference | 0.6 |", "| within ±0.01 | 28.57% |", "| Kolmogorov-Smirnov statistic | 0.2857 |",
                 "Agreement 71.43% over 7 predictions (numeric outputs: label 1 when ≥ 0.5).",
                 "| `1` | 2 | 2 |",
                 "| 2026-11-25T14:00:00Z | 6 | 5 | 4 | 0.1725 | 0.00% | 0.5 | 7.821 | 75.00% |",
                 "  - inferenceId `id8`", "![differences](differences.png)"):
        assert line in text.splitlines(), line


def test_label_only_reports_skip_numeric_plots(tmp_path):
    root = write_label_capture(tmp_path / "c")
    assert cli.main([str(root), "--endpoint", "labels", "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["labels"]["agreement"] == pytest.approx(5 / 6)


def test_progress_bar_on_stderr(tmp_path, capsys):
    root = write_reference_capture(tmp_path / "c")
    assert cli.main([str(root), "--out", str(tmp_path / "o"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("\rreading capture files [##############################] 100.0% ") and err.endswith(" s\n")


@pytest.mark.parametrize(("args", "message"), [
    (["{base}/missing"], "shadow-report: error: source '{base}/missing' does not exist"),
    (["{base}/empty"], "shadow-report: error: no capture files under '{base}/empty' (expected <endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl)"),
    (["{base}/labels"], "shadow-report: error: capture files of 2 endpoints (labels, other): choose one with --endpoint"),
    (["{base}/labels", "--start", "yesterday"],
     "shadow-report: error: argument --start: --start must be an ISO 8601 time like 2026-11-25T14:00:00Z, got 'yesterday'"),
    (["{base}/labels", "--tolerance", "-0.1"], "shadow-report: error: argument --tolerance: --tolerance must be a number >= 0, got '-0.1'"),
    (["{base}/labels", "--out", "{base}/a-file"], "shadow-report: error: --out '{base}/a-file' exists and is not a folder"),
    (["{base}/labels", "--memory-limit", "lots"], "shadow-report: error: --memory-limit must be a size like 256MB or 2GB, got 'lots'"),
    (["s3:///nobucket"], "shadow-report: error: source 's3:///nobucket' is not an s3://bucket/prefix URI"),
    ([], "shadow-report: error: the following arguments are required: source"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("x")
    write_label_capture(tmp_path / "labels")
    base = str(tmp_path)
    assert cli.main([a.format(base=base) for a in args]) == 2
    captured = capsys.readouterr()
    assert captured.err == message.format(base=base) + "\n"
    assert captured.out == ""


def test_without_duckdb_it_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb", None)
    monkeypatch.setitem(sys.modules, "_duckdb", None)  # its compiled core, which the engine imports alone
    assert cli.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == "shadow-report: error: shadow-report needs duckdb: pip install 'shadow-constructs[report]'\n"


@pytest.fixture(scope="module")
def moto_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.mark.outer  # the console script against a moto server
def test_console_script_reads_s3_through_aws_endpoint_url(moto_server, tmp_path):
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": REGION}
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION, aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket="capture-bucket")
    root = write_reference_capture(tmp_path / "local")
    for path in root.rglob("*.jsonl"):
        s3.put_object(Bucket="capture-bucket", Key=str(path.relative_to(root.parent)), Body=path.read_bytes())
    s3.put_object(Bucket="capture-bucket", Key="datacapture/README.txt", Body=b"not capture")
    before = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket="capture-bucket")["Contents"]}
    out = tmp_path / "out"
    done = subprocess.run([str(SCRIPT), "s3://capture-bucket/datacapture", "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["source"] == "s3://capture-bucket/datacapture"
    assert report["variants"] == REFERENCE["variants"]
    assert report["pairing"] == REFERENCE["pairing"]
    assert {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket="capture-bucket")["Contents"]} == before

    missing = subprocess.run([str(SCRIPT), "s3://no-such-bucket/x", "--out", str(out)], env=env,
                             capture_output=True, text=True, timeout=120)
    assert (missing.returncode, missing.stderr) == (2, "shadow-report: error: cannot read source 's3://no-such-bucket/x': NoSuchBucket\n")
    empty = subprocess.run([str(SCRIPT), "s3://capture-bucket/elsewhere", "--out", str(out)], env=env,
                           capture_output=True, text=True, timeout=120)
    assert (empty.returncode, empty.stderr) == (
        2, "shadow-report: error: no capture files under 's3://capture-bucket/elsewhere' "
           "(expected <endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl)\n")


def test_end_to_end_with_the_runtime_doubles_capture(tmp_path, monkeypatch):
    """200 requests through the emulated churn endpoint (real XGBoost v1 and v2, 50% shadow, full capture): the
    report pairs exactly the shadow's requests and its differences are v2 − v1 of the same rows."""
    import tarfile

    import xgboost as xgb
    from conftest import MODELS, create_churn_endpoint

    from shadow_emulator import EndpointRuntimeDouble, SageMakerDouble

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    rows = np.random.default_rng(5).uniform([1, 18, 20, 1, 0, 1, 0, 0], [72, 120, 8000, 24, 6, 5, 1, 4], size=(200, 8))
    with mock_aws(), SageMakerDouble() as sagemaker, EndpointRuntimeDouble(sagemaker, seed=3, capture_batch=100) as runtime:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="models")
        s3.create_bucket(Bucket="capture")
        for name in ("churn-v1", "churn-v2"):
            s3.put_object(Bucket="models", Key=f"{name}/model.tar.gz", Body=(MODELS / name / "model.tar.gz").read_bytes())
        create_churn_endpoint(boto3.client("sagemaker", region_name=REGION),
                              model_data_url=lambda name: f"s3://models/{name}/model.tar.gz", capture={
            "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://capture/datacapture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}})
        client = boto3.client("sagemaker-runtime", region_name=REGION)
        bodies = [",".join(f"{v:.2f}" for v in row) for row in rows]
        for i, body in enumerate(bodies):
            client.invoke_endpoint(EndpointName="churn", ContentType="text/csv", Body=body, InferenceId=f"req-{i}")
        runtime.flush_capture()
        shadow_ids = {json.loads(line)["eventMetadata"]["inferenceId"]
                      for o in s3.list_objects_v2(Bucket="capture", Prefix="datacapture/churn/shadow/")["Contents"]
                      for line in s3.get_object(Bucket="capture", Key=o["Key"])["Body"].read().decode().splitlines()}
        assert cli.main(["s3://capture/datacapture", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["pairing"]["paired"] == len(shadow_ids)
    assert report["pairing"]["unmatched_production"] == 200 - len(shadow_ids)
    assert report["pairing"]["unmatched_shadow"] == 0

    def predict(name):
        with tarfile.open(MODELS / name / "model.tar.gz") as tar:
            model = xgb.Booster()
            model.load_model(bytearray(tar.extractfile("xgboost-model").read()))
        parsed = np.array([[float(v) for v in b.split(",")] for b in bodies], dtype=np.float32)
        return model.predict(xgb.DMatrix(parsed))

    paired = sorted(int(i.split("-")[1]) for i in shadow_ids)
    v1, v2 = predict("churn-v1")[paired], predict("churn-v2")[paired]
    numeric = report["numeric"]
    assert numeric["predictions"] == len(paired)
    # The double writes predictions with ~7 significant digits: compare at that precision.
    assert numeric["mean_abs_diff"] == pytest.approx(float(np.mean(np.abs(v2 - v1))), abs=1e-6)
    assert numeric["max_abs_diff"] == pytest.approx(float(np.max(np.abs(v2 - v1))), abs=1e-6)
    assert report["labels"]["agreement"] == pytest.approx(float(np.mean((v1 >= 0.5) == (v2 >= 0.5))))


def test_s3_keys_cannot_write_outside_the_scratch_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    root = write_reference_capture(tmp_path / "local")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="capture")
        for path in root.rglob("*.jsonl"):
            s3.put_object(Bucket="capture", Key=str(path.relative_to(root.parent)), Body=path.read_bytes())
        s3.put_object(Bucket="capture", Key="datacapture/churn/shadow/2026/11/25/15/../../../../../../../../escaped.jsonl",
                      Body=b"{}\n")
        scratch = tmp_path / "scratch"
        folder = download_s3("s3://capture/datacapture", scratch)
    assert not list(tmp_path.rglob("escaped.jsonl"))
    assert sorted(p.name for p in Path(folder).rglob("*.jsonl")) == ["p14.jsonl", "p15.jsonl", "s14.jsonl", "s15.jsonl"]


def test_nothing_paired_says_why(tmp_path):
    from capture_fixtures import record, write_file

    write_file(tmp_path, "e", "AllTraffic", "2026/01/01/00", "a", [record("a", "0.5")])
    write_file(tmp_path, "e", "shadow", "2026/01/01/00", "a", [record("b", "0.5")])
    assert cli.main([str(tmp_path / "datacapture"), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "- paired: 0 (0 numeric, 0 label)" in text and "share no inferenceId" in text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json", "report.md"]  # nothing to plot


def test_a_rerun_into_the_same_folder_leaves_no_stale_plot(tmp_path):
    out = tmp_path / "out"
    assert cli.main([str(write_reference_capture(tmp_path / "numeric")), "--out", str(out), "--no-progress"]) == 0
    assert (out / "scatter.png").exists() and (out / "differences.png").exists()
    (out / "notes.txt").write_text("mine")
    labels = tmp_path / "labels" / "datacapture"
    for variant, answers in (("blue", ["yes", "no", "yes"]), ("blue-shadow", ["yes", "yes", "yes"])):
        write_file(labels.parent, "words", variant, "2026/11/25/14", "f",
                   [record(f"r{i}", json.dumps(a), encoding="JSON", content_type="application/json")
                    for i, a in enumerate(answers)])
    assert cli.main([str(labels), "--out", str(out), "--no-progress"]) == 0  # string labels: nothing numeric to plot
    assert not (out / "scatter.png").exists() and not (out / "differences.png").exists()
    assert (out / "hourly_agreement.png").exists() and "hourly_agreement.png" in (out / "report.md").read_text()
    assert (out / "notes.txt").read_text() == "mine"  # nothing but our own plots is ever removed
