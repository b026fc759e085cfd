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

from shadow_emulator.ports import free_port, port_in_use

pytestmark = pytest.mark.outer  # the outer loop (make test-fast skips it): the emulator server

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


def test_invoke_endpoint_is_answered_without_moto_routing_as_moto_would_answer_it(monkeypatch):
    """The server hands InvokeEndpoint straight to the runtime double (EndpointRuntimeDouble.serve_wsgi): the same
    status, answer, variant and error as through moto's own dispatch, with the same sampling."""
    import random

    from conftest import MODELS, SAGEMAKER_ROLE, create_churn_endpoint
    from moto import mock_aws
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import EnvironBuilder

    from shadow_emulator import EndpointRuntimeDouble, SageMakerDouble

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(), SageMakerDouble() as sagemaker, EndpointRuntimeDouble(sagemaker, seed=4) as runtime:
        s3, sm = boto3.client("s3"), boto3.client("sagemaker")
        s3.create_bucket(Bucket="models")
        for name in ("churn-v1", "churn-v2"):
            s3.put_object(Bucket="models", Key=name, Body=(MODELS / name / "model.tar.gz").read_bytes())
        create_churn_endpoint(sm, model_data_url=lambda name: f"s3://models/{name}")
        sm.create_model(ModelName="custom", ExecutionRoleArn=SAGEMAKER_ROLE,
                        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1"})
        sm.create_endpoint_config(EndpointConfigName="custom", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "custom", "InstanceType": "ml.m5.xlarge",
            "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="custom", EndpointConfigName="custom")
        moto_app = DomainDispatcherApplication(create_backend_app)
        signature = ("AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/sagemaker/aws4_request, "
                     "SignedHeaders=host, Signature=0")

        def environ(endpoint: str, body: str) -> dict:
            return EnvironBuilder(path=f"/endpoints/{endpoint}/invocations", method="POST", data=body.encode(),
                                  base_url="http://localhost:5055", headers={
                                      "Authorization": signature, "Content-Type": "text/csv",
                                      "X-Amzn-SageMaker-Inference-Id": "req-1"}).get_environ()

        def through_moto(endpoint: str, body: str) -> tuple[int, str, dict]:
            started = {}
            data = b"".join(moto_app(environ(endpoint, body), lambda status, headers: started.update(
                status=int(status.split()[0]), headers=dict(headers))))
            return started["status"], data.decode(), started["headers"]

        def directly(endpoint: str, body: str) -> tuple[int, str, dict]:
            served = runtime.serve_wsgi(environ(endpoint, body))
            assert served is not None
            status, headers, data = served
            assert dict(headers)["Content-Length"] == str(len(data))
            return int(status.split()[0]), data.decode(), dict(headers)

        results = []
        for endpoint, body in (("churn", "12,70.5,840.2,3,1,2,1,0\n30,99,2970,8,0,1,0,3"), ("nowhere", "1,2"),
                               ("custom", "1,2"), ("churn", "not,a,number")):
            answers = []
            for serve in (through_moto, directly):
                runtime.random, runtime._order = random.Random(4), random.Random(5)  # the same coin tosses
                status, data, headers = serve(endpoint, body)
                answers.append((status, data, headers.get("x-Amzn-Invoked-Production-Variant"),
                                headers.get("x-amzn-ErrorType")))
            assert answers[0] == answers[1], endpoint
            results.append(answers[1])
        good, unknown, custom, unreadable = results
        assert good[0] == 200 and good[2] == "production" and len(good[1].split()) == 2
        assert all(0 <= float(p) <= 1 for p in good[1].split())
        assert unknown[::3] == (400, "ValidationError") and "Endpoint nowhere of account 123456789012" in unknown[1]
        assert custom[::3] == (424, "ModelError") and "serves SageMaker's XGBoost image only" in custom[1]
        assert unreadable[::3] == (424, "ModelError") and "could not read the request" in unreadable[1]
        counts = {key: number for key, number in runtime.counts.items() if key[0] == "churn"}
        assert counts[("churn", "production", "invocations")] == 4  # two good and two bad requests, each served twice
    assert runtime.serve_wsgi(environ("churn", "1,2")) is None  # uninstalled: moto's dispatch serves everything


def test_invoke_endpoint_keeps_its_connection_open_and_everything_else_closes_it():
    """InvokeEndpoint answered by the runtime double leaves the connection open for the next request (no TCP
    connection and serving thread per request); moto's requests close it as werkzeug always does; a failing
    double answers 500 and closes it."""
    import http.client
    import threading

    from werkzeug.serving import make_server

    from shadow_emulator.server import _RequestHandler

    class Runtime:  # what the handler asks of EndpointRuntimeDouble
        def serve_wsgi(self, environ):
            if environ["PATH_INFO"] == "/endpoints/broken/invocations":
                raise RuntimeError("the double failed")
            if environ["PATH_INFO"] != "/endpoints/churn/invocations":
                return None
            body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
            return "200 OK", [("Content-Type", "text/csv"), ("Content-Length", str(len(body) + 1))], body + b"!"

    def moto(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"moto"]

    server = make_server("localhost", free_port(), moto, threaded=True, request_handler=_RequestHandler)
    server.shadow_runtime = Runtime()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        connection = http.client.HTTPConnection("localhost", server.port, timeout=10)
        answers, sockets = [], set()
        for body in (b"1,2", b"3,4", b"5,6"):
            connection.request("POST", "/endpoints/churn/invocations", body=body)
            response = connection.getresponse()
            answers.append((response.status, response.read(), response.getheader("Connection")))
            sockets.add(id(connection.sock))
        assert answers == [(200, b"1,2!", None), (200, b"3,4!", None), (200, b"5,6!", None)]
        assert len(sockets) == 1 and connection.sock is not None  # one connection served all three
        connection.request("POST", "/", body=b"Action=ListQueues")  # not InvokeEndpoint: moto's, then closed
        response = connection.getresponse()
        assert (response.status, response.read(), response.getheader("Connection")) == (200, b"moto", "close")
        assert connection.sock is None
        connection.request("POST", "/endpoints/broken/invocations", body=b"1,2")
        response = connection.getresponse()
        assert (response.status, response.read(), response.getheader("Connection")) == \
            (500, b"Internal Server Error", "close")
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
