"""`python -m shadow_emulator`: moto's server with the doubles, its control routes, a taken port."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest

from shadow_emulator.server import free_port, port_in_use

ROOT = Path(__file__).resolve().parent.parent


def control(url: str, method: str, route: str, payload: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/_shadow_emulator/{route}", method=method,
                                     data=json.dumps(payload).encode() if payload is not None else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def emulator():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "shadow_emulator", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 30
    while not port_in_use("localhost", port):
        assert process.poll() is None and time.monotonic() < deadline, "the emulator did not start"
        time.sleep(0.1)
    yield {"url": url, "port": port, "process": process}
    process.terminate()
    process.wait(timeout=15)


def test_serves_aws_apis_with_the_doubles_installed(emulator):
    sagemaker = boto3.client("sagemaker", endpoint_url=emulator["url"], region_name="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing")
    # StopInferenceExperiment is NotImplemented in moto; the SageMakerDouble answers it (unknown name).
    with pytest.raises(sagemaker.exceptions.ClientError, match="Could not find inference experiment 'nothing'"):
        sagemaker.stop_inference_experiment(Name="nothing", ModelVariantActions={"shadow": "Remove"})
    assert control(emulator["url"], "GET", "health") == (200, {"status": "ok"})


def test_control_routes(emulator):
    url = emulator["url"]
    assert control(url, "POST", "clock", {"offset_seconds": -1200}) == (200, {"offset_seconds": -1200.0, "rate": 1.0})
    assert control(url, "POST", "clock", {"offset_seconds": 5, "rate": 20}) == (200, {"offset_seconds": 5.0, "rate": 20.0})
    assert control(url, "POST", "clock", {"offset_seconds": 0}) == (200, {"offset_seconds": 0.0, "rate": 1.0})
    status, body = control(url, "POST", "clock", {"offset": "yesterday"})
    assert status == 400 and "offset_seconds" in body["error"]
    status, body = control(url, "POST", "clock", {"offset_seconds": 0, "rate": 0})
    assert status == 400 and "rate is a number from 1 to 10000, got 0" in body["error"]
    assert control(url, "POST", "flush") == (200, {"flushed": True})
    assert control(url, "GET", "counts") == (200, {"counts": {}})
    assert control(url, "GET", "nothing") == (404, {"error": "no control route GET /_shadow_emulator/nothing"})


def test_a_taken_port_is_one_line_and_exit_code_2(emulator):
    taken = subprocess.run([sys.executable, "-m", "shadow_emulator", "--port", str(emulator["port"])], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert taken.returncode == 2
    assert taken.stderr.strip().splitlines() == [
        f"shadow-emulator: port {emulator['port']} on localhost is already in use; "
        f"stop what uses it or choose another port with --port"]


def test_stops_cleanly_on_sigterm():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "shadow_emulator", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = process.stdout.readline()
    assert first.strip() == f"shadow-emulator: serving AWS on http://localhost:{port} (Ctrl-C stops it)"
    process.terminate()
    assert process.wait(timeout=15) == 0
    assert process.stdout.read().strip() == "shadow-emulator: stopped"
    assert not port_in_use("localhost", port)
