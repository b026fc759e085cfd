"""A test double for SageMaker real-time inference: InvokeEndpoint with real predictions.

moto's sagemaker-runtime answers every InvokeEndpoint with canned data. While installed,
``EndpointRuntimeDouble`` serves the endpoint the way SageMaker does for a shadow test:

* the production variant answers, with a REAL prediction: the variant's model archive is read
  from (emulated) S3 and served in-process — SageMaker's XGBoost image only, by XGBoost; any
  other image is a clear ModelError naming it;
* each request is copied to the shadow with probability shadow weight / production weight; the
  shadow's answer is discarded and its failures never reach the caller (a coin decides which
  variant this one thread serves first);
* per-variant CloudWatch metrics (Invocations, InvocationsPerInstance, ModelLatency and
  OverheadLatency as measured, in microseconds, the error counts) are put to the emulated
  CloudWatch. Latencies are the CPU time of the serving thread (``time.thread_time``): one
  Python process serves many requests at once, and wall time would measure waits for the
  interpreter lock, not the model — on SageMaker each instance's container serves on its own.
  ModelLatency is the shorter of two runs of the prediction (see ``_serve``), so neither
  variant is charged for cold caches or a one-off stall;
* with data capture on, records go to S3 in SageMaker's format and key layout
  (``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``), the caller's InferenceId in
  eventMetadata, buffered and written every ``capture_batch`` records and on ``flush_capture()``;
  while an inference experiment runs on the endpoint, its variants are captured as its
  DataStorageConfig says, written as its RoleArn (see ``_capture_settings``).

A clock (``clock_offset``, the offset of the emulator's one ``EmulatorClock``, shared with the
Wait states of ``WaitStateDouble``) lets a replay stamp metrics and capture records as if the
traffic had arrived earlier: the demo replays 3,000 requests in a minute as the last 20 minutes' traffic.

Limits: one process, no instances (latency is this machine's), CSV input only for the model,
no multi-model or asynchronous endpoints.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import random
import re
import tarfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.core.responses import BaseResponse
from moto.iam.models import get_account_id_from, mark_account_as_visited
from moto.s3.models import s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from .clock import EmulatorClock
from .sagemaker import SageMakerDouble


class ModelServingError(Exception):
    """The double cannot serve this model locally (e.g. not the SageMaker XGBoost image)."""


#: InvokeEndpoint's route (sagemaker-runtime), and the SigV4 credential scope of a request: access key, region, service.
_INVOCATION_PATH = re.compile(r"/endpoints/([^/]+)/invocations")
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


class _Invocation:
    """What ``EndpointRuntimeDouble._invoke`` reads of moto's SageMakerRuntimeResponse, taken from the request as
    moto takes it (region from the host, the User-Agent or the signature; account from MOTO_ACCOUNT_ID, the
    x-moto-account-id header or the access key)."""

    def __init__(self, environ: dict[str, Any], body: bytes) -> None:
        from werkzeug.datastructures import EnvironHeaders

        self.headers = EnvironHeaders(environ)
        self.path = environ.get("PATH_INFO", "")
        self.body = body
        authorization = self.headers.get("Authorization", "")
        url = f"{environ.get('wsgi.url_scheme', 'http')}://{self.headers.get('Host', '')}{self.path}"
        by_url = BaseResponse.region_regex.search(url)
        by_agent = BaseResponse.region_from_useragent_regex.search(self.headers.get("User-Agent", ""))
        self.region = by_url["region"] if by_url else by_agent["region"] if by_agent else \
            authorization.split(",")[0].split("/")[2] if "AWS4" in authorization else BaseResponse.default_region
        key = BaseResponse.access_key_regex.search(authorization)
        self.access_key = key["access_key"] if key else "AKIAEXAMPLE"
        self.current_account = os.environ.get("MOTO_ACCOUNT_ID") or self.headers.get("x-moto-account-id") or \
            get_account_id_from(self.access_key)

    @staticmethod
    def _get_params() -> dict[str, Any]:
        return {}  # the endpoint's name is the path's


def model_act_values(model: Any, account: str) -> dict[str, Any]:
    """What SageMaker reads, as a role, to start a model's container: the values of ``rules.SERVICE_ACTS``
    "model-archive" (the archive's object and its SSE-KMS key) and "model-image" (the image's ECR repository)."""
    from .authorization.enforcer import object_kms_key

    region = getattr(model, "region_name", "us-east-1")
    container = model.primary_container or {}
    image, url = container.get("Image", ""), container.get("ModelDataUrl", "")
    values: dict[str, Any] = {}
    if url.startswith("s3://"):
        bucket, _, key = url[5:].partition("/")
        values.update(model_data_object=f"arn:aws:s3:::{bucket}/{key}",
                      model_data_kms_key=object_kms_key(account, region, bucket, key, writing=False))
    registry, _, repository = image.partition("/")
    host = registry.split(".")
    if len(host) > 3 and host[1:3] == ["dkr", "ecr"]:
        values["image_repository"] = f"arn:aws:ecr:{host[3]}:{host[0]}:repository/{repository.split(':')[0].split('@')[0]}"
    return values


class EndpointRuntimeDouble:
    """``with EndpointRuntimeDouble(sagemaker_double):`` inside ``mock_aws`` (after the SageMaker double).

    :param sagemaker: the installed SageMakerDouble (it knows the shadow variants moto drops).
    :param seed: seed of the sampling that copies requests to the shadow. Default: 0.
    :param capture_batch: records per capture file. Default: 500.
    :param clock: the emulator's clock (the server shares one with its Wait states). Default: a clock of its own.
    """

    def __init__(self, sagemaker: SageMakerDouble, seed: int = 0, capture_batch: int = 500,
                 clock: EmulatorClock | None = None, authorizer: Any = None) -> None:
        self.sagemaker = sagemaker
        #: The emulator's authorization (``shadow_emulator.authorization.Authorizer``): InvokeEndpoint is authorized
        #: as its caller, and SageMaker reads each model's archive and image and writes capture files as the model's
        #: execution role. None: nothing is checked.
        self.authorizer = authorizer
        self._serving: set[tuple[str, str, str, str]] = set()  # (account, endpoint, variant, model): logs and metrics acted
        #: Capture files SageMaker could not write (the role was refused): (s3 URI, why). Their records are lost.
        self.capture_refused: list[tuple[str, str]] = []
        self.random = random.Random(seed)
        self._order = random.Random(seed + 1)
        self.capture_batch = capture_batch
        self.boosters: dict[str, Any] = {}
        #: Model archives that could not be loaded (read once, like a container's start): url -> why.
        self.unloadable: dict[str, str] = {}
        self.counts: Counter = Counter()  # (endpoint, variant, "invocations" | "errors")
        self._buffers: dict[tuple, list[dict]] = defaultdict(list)
        self._buffers_lock = threading.Lock()
        self._original = None
        self.clock = clock or EmulatorClock()

    @property
    def clock_offset(self) -> timedelta:
        """Added to this machine's clock for metric timestamps and capture times (replays): the clock's offset."""
        return self.clock.offset

    @clock_offset.setter
    def clock_offset(self, value: timedelta) -> None:
        self.clock.offset = value

    def now(self) -> datetime:
        """The double's time: UTC now plus ``clock_offset``."""
        return self.clock.now()

    def install(self) -> EndpointRuntimeDouble:
        self._original = SageMakerRuntimeResponse.__dict__["invoke_endpoint"]
        double = self

        def invoke_endpoint(response: SageMakerRuntimeResponse):
            return double._invoke(response)

        SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            SageMakerRuntimeResponse.invoke_endpoint = self._original
            self._original = None

    def __enter__(self) -> EndpointRuntimeDouble:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # Serving

    def serve_wsgi(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """Answer an InvokeEndpoint request straight from the server's WSGI environ (status line, headers, body),
        as moto's dispatch would with this double installed, but without moto's routing and response machinery
        (Flask, route matching, parameter parsing, a 52-character request id: half of a request's CPU time in
        the emulator). ``None`` for any other request, and when the double is not installed: moto serves those."""
        if self._original is None or environ.get("REQUEST_METHOD") != "POST" or not environ.get("CONTENT_LENGTH"):
            return None
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is None or scope[3] != "sagemaker" or not _INVOCATION_PATH.fullmatch(environ.get("PATH_INFO", "")):
            return None
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        if self.authorizer is not None:
            environ["wsgi.input"], environ["shadow_emulator.body"] = io.BytesIO(body), body
            refused = self.authorizer.check_wsgi(environ)
            if refused is not None:
                return refused
        invocation = _Invocation(environ, body)
        mark_account_as_visited(account_id=invocation.current_account, access_key=invocation.access_key,
                                service="sagemaker-runtime", region=invocation.region)
        status, headers, body = self._invoke(invocation)
        data = body if isinstance(body, bytes) else body.encode()
        status = int(headers.pop("status", status))
        fields = {"server": "amazon.com", "x-amzn-requestid": uuid.uuid4().hex, **headers,
                  "Content-Length": str(len(data))}
        return f"{status} {HTTPStatus(status).phrase}", list(fields.items()), data

    def _invoke(self, response: SageMakerRuntimeResponse):
        started = time.thread_time()
        account, region = response.current_account, response.region
        name = response._get_params().get("EndpointName") or response.path.split("/")[2]
        backend = sagemaker_backends[account][region]
        endpoint = backend.endpoints.get(name)
        if endpoint is None or endpoint.endpoint_status not in ("InService", "Updating"):
            return 400, {"Content-Type": "application/json", "status": 400, "x-amzn-ErrorType": "ValidationError"}, \
                json.dumps({"__type": "ValidationError", "message": f"Endpoint {name} of account {account} not found."})
        body = response.body if isinstance(response.body, bytes) else (response.body or "").encode()
        content_type = response.headers.get("Content-Type", "application/octet-stream")
        inference_id = response.headers.get("X-Amzn-SageMaker-Inference-Id")
        config = backend.endpoint_configs[endpoint.endpoint_config_name]
        production = self._pick(config.production_variants)
        key = (account, region, endpoint.endpoint_config_name)
        shadows = list(self.sagemaker.shadow_variants.get(key, []))
        experiment = next((e for (e_account, e_region, _), e in list(self.sagemaker.experiments.items())
                           if (e_account, e_region, e["EndpointName"], e["Status"]) == (account, region, name, "Running")),
                          None)
        shadows += [{"VariantName": v["VariantName"], "ModelName": v["ModelName"],
                     "InitialVariantWeight": s["InitialVariantWeight"]}
                    for s in (experiment or {}).get("ShadowVariants", []) for v in experiment["ModelVariants"]
                    if v["VariantName"] == s["VariantName"]]

        copies = [shadow for shadow in shadows if self.random.random() <
                  shadow.get("InitialVariantWeight", 1.0) / (production.get("InitialVariantWeight") or 1.0)]
        # On SageMaker the shadow is served apart from production; here one thread serves both, one
        # after the other, and the second runs on warm caches. A coin decides which goes first.
        order = [production, *copies] if not copies or self._order.random() < 0.5 else [*copies, production]
        lookup_us = (time.thread_time() - started) * 1e6
        answers = {}
        for variant in order:
            # SageMaker loads a model when its container starts, not in a request: load before timing.
            with contextlib.suppress(ModelServingError, KeyError):
                self._booster(backend, account, variant["ModelName"])
            serving = (account, name, variant["VariantName"], variant["ModelName"])
            if self.authorizer is not None and serving not in self._serving and variant["ModelName"] in backend._models:
                self._serving.add(serving)
                self._act_while_serving(backend._models[variant["ModelName"]], account, name, variant["VariantName"])
            begun = time.thread_time()
            v_status, v_output, v_model_us, v_runs_us = self._serve(backend, account, name, variant, body, content_type)
            full = self._capture(account, config, name, variant["VariantName"], body, content_type, v_output,
                                 inference_id, experiment)
            # Reading the request and choosing the variants is production's overhead; the shadow's copy skips it.
            overhead_us = (time.thread_time() - begun) * 1e6 - v_runs_us + (lookup_us if variant is production else 0)
            self._record(account, region, name, variant, v_status, v_model_us, overhead_us)
            if full:  # SageMaker uploads capture files in the background, not in a request's time
                self._write(full)
            answers[id(variant)] = (v_status, v_output)
        status, output = answers[id(production)]  # the shadows' answers and failures never reach the caller
        if status != 200:
            # moto takes the status from the headers; the error type travels as on AWS.
            return status, {"Content-Type": "application/json", "status": status, "x-amzn-ErrorType": "ModelError"}, \
                json.dumps({"__type": "ModelError", "message": output.decode(errors="replace"),
                            "OriginalStatusCode": status})
        return 200, {"Content-Type": "text/csv", "x-Amzn-Invoked-Production-Variant": production["VariantName"]}, output

    def _pick(self, variants: list[dict]) -> dict:
        weights = [v.get("InitialVariantWeight", 1.0) for v in variants]
        return self.random.choices(variants, weights=weights)[0]

    def _serve(self, backend, account: str, endpoint: str, variant: dict, body: bytes, content_type: str):
        """Answer one request with one variant: ``(status, output, model latency in us, CPU time
        of all runs in us)``.

        The prediction runs twice and the shorter run's CPU time is the latency: a serving
        container is warm and has a core to itself, while this one process interleaves both
        variants and other work, so a single run measures whose caches happened to be cold (the
        production variant also serves the requests that were not copied to the shadow, alone)
        and picks up one-off stalls. The minimum of repeated runs is what ``timeit`` reports for
        the same reason.
        """
        timings = []
        for _ in range(2):
            started = time.thread_time()
            try:
                booster = self._booster(backend, account, variant["ModelName"])
                output, status = self._predict(booster, body), 200
            except ModelServingError as error:
                output, status = str(error).encode(), 424
            except (ValueError, UnicodeDecodeError) as error:
                output, status = f"the model could not read the request ({content_type}): {error}".encode(), 424
            timings.append((time.thread_time() - started) * 1e6)
            if status != 200:
                break  # a failure is not retried: its time is what the caller waited
        return status, output, min(timings), sum(timings)

    @staticmethod
    def _predict(booster, body: bytes) -> bytes:
        import numpy as np

        rows = [[float(x) for x in line.split(",")] for line in body.decode().strip().splitlines() if line.strip()]
        # inplace_predict skips building a DMatrix (most of a one-row request's time) and uses the booster's
        # one thread: OpenMP workers on every core would make the serving thread's CPU time include spinning
        # at their barrier while they wait for a core (p99 doubled on a busy 2-core machine).
        features = np.asarray(rows, dtype=np.float32)
        expected = booster.emulator_features  # read once at load: asking the booster (attr) is a C call under its lock
        if features.ndim != 2 or features.shape[1] != expected:
            raise ValueError(f"Feature shape mismatch, expected: {expected}, got {features.shape[-1] if features.size else 0}")
        scores = booster.inplace_predict(features, validate_features=False)
        return "\n".join(f"{s:.6f}" for s in scores).encode()

    def _booster(self, backend, account: str, model_name: str):
        model = backend._models[model_name]
        container = model.primary_container or {}
        image, url = container.get("Image", ""), container.get("ModelDataUrl", "")
        if "sagemaker-xgboost" not in image:
            raise ModelServingError(f"the local emulator serves SageMaker's XGBoost image only; model {model_name} "
                                    f"uses {image!r}")
        if url not in self.boosters and url not in self.unloadable:  # read once, like a container's start
            import xgboost as xgb

            try:
                bucket, key = url[5:].split("/", 1)
                self._act_for_model(model, account)
                stored = s3_backends[account]["aws"].get_object(bucket, key)
                if stored is None:
                    raise FileNotFoundError("NoSuchKey: no such object in S3")
                with tarfile.open(fileobj=io.BytesIO(stored.value)) as tar:
                    raw = tar.extractfile("xgboost-model").read()
                booster = xgb.Booster()
                booster.load_model(bytearray(raw))
            except Exception as error:  # noqa: BLE001 - any unreadable archive is the model's failure, as on AWS
                self.unloadable[url] = f"{type(error).__name__}: {error}"
            else:
                booster.set_param({"nthread": 1})  # one request, one core: no OpenMP contention between requests
                booster.emulator_features = booster.num_features()  # a Python attribute: no C call per request
                self.boosters[url] = booster
        if url in self.unloadable:  # a container that failed to load its model keeps failing
            raise ModelServingError(f"model {model_name} could not be loaded from {url!r}: {self.unloadable[url]}")
        return self.boosters[url]

    def _act_for_model(self, model: Any, account: str) -> None:
        """SageMaker starting a container: it pulls the image and reads the model archive as the model's execution
        role (AccessDenied: the container does not start)."""
        if self.authorizer is None:
            return
        region = getattr(model, "region_name", "us-east-1")
        values = model_act_values(model, account)
        self.authorizer.act("model-image", model.execution_role_arn, values, region)
        self.authorizer.act("model-archive", model.execution_role_arn, values, region)

    def _act_while_serving(self, model: Any, account: str, endpoint: str, variant: str) -> None:
        """The started container's logs and instance metrics, written as the model's execution role (once per
        endpoint, variant and model); refused, they are missing and the variant still serves (the refusal is
        recorded)."""
        from .authorization import AccessDenied

        region = getattr(model, "region_name", "us-east-1")
        group = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{endpoint}"
        values = {"endpoint_log_group": group, "endpoint_log_stream": f"{group}:log-stream:{variant}/i-emulator"}
        for act in ("endpoint-logs", "endpoint-metrics"):
            with contextlib.suppress(AccessDenied):
                self.authorizer.act(act, model.execution_role_arn, values, region)

    def _record(self, account, region, endpoint, variant, status, model_us, overhead_us) -> None:
        name = variant["VariantName"]
        self.counts[(endpoint, name, "invocations")] += 1
        if status != 200:
            self.counts[(endpoint, name, "errors")] += 1
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": name}]
        instances = max(1, int(variant.get("InitialInstanceCount", 1)))
        data = [{"MetricName": "Invocations", "Value": 1.0, "Dimensions": dims},
                {"MetricName": "InvocationsPerInstance", "Value": 1.0 / instances, "Dimensions": dims},
                {"MetricName": "InvocationModelErrors", "Value": float(status != 200), "Dimensions": dims},
                {"MetricName": "Invocation4XXErrors", "Value": 0.0, "Dimensions": dims},
                {"MetricName": "Invocation5XXErrors", "Value": 0.0, "Dimensions": dims},
                {"MetricName": "OverheadLatency", "Value": max(overhead_us, 1.0), "Unit": "Microseconds",
                 "Dimensions": dims}]
        if status == 200:
            data.append({"MetricName": "ModelLatency", "Value": model_us, "Unit": "Microseconds", "Dimensions": dims})
        stamp = self.now().replace(tzinfo=None)  # moto keeps naive UTC datetimes
        for datum in data:
            datum["Timestamp"] = stamp
        cloudwatch_backends[account][region].put_metric_data("AWS/SageMaker", data)

    # Capture

    def _capture(self, account, config, endpoint, variant, body, content_type, output, inference_id,
                 experiment: dict[str, Any] | None = None) -> tuple | None:
        """Buffer the capture record of one answer; the buffer's key when it is due to be written."""
        capture, role = self._capture_settings(account, config, variant, experiment)
        if not capture.get("EnableCapture", bool(capture)) or not capture.get("DestinationS3Uri"):
            return None
        if self.random.random() * 100 >= capture.get("InitialSamplingPercentage", 100):
            return None
        header = capture.get("CaptureContentTypeHeader") or {}
        encoding = "CSV" if content_type in header.get("CsvContentTypes", []) else \
            "JSON" if content_type in header.get("JsonContentTypes", []) else "BASE64"

        def part(mode: str, data: bytes, observed: str) -> dict:
            text = base64.b64encode(data).decode() if encoding == "BASE64" else data.decode(errors="replace")
            return {"observedContentType": observed, "mode": mode, "data": text, "encoding": encoding}

        modes = {o["CaptureMode"] for o in capture.get("CaptureOptions", [])}
        record: dict[str, Any] = {"captureData": {}, "eventVersion": "0",
                                  "eventMetadata": {"eventId": str(uuid.uuid4()),
                                                    "inferenceTime": self.now().strftime(
                                                        "%Y-%m-%dT%H:%M:%SZ")}}
        if inference_id:
            record["eventMetadata"]["inferenceId"] = inference_id
        if "Input" in modes:
            record["captureData"]["endpointInput"] = part("INPUT", body, content_type)
        if "Output" in modes:
            record["captureData"]["endpointOutput"] = part("OUTPUT", output, "text/csv")
        hour = self.now().strftime("%Y/%m/%d/%H")
        buffer_key = (account, capture["DestinationS3Uri"], endpoint, variant, hour, role, capture.get("KmsKeyId"),
                      getattr(config, "region_name", "us-east-1"))
        with self._buffers_lock:  # requests are served on many threads
            self._buffers[buffer_key].append(record)
            return buffer_key if len(self._buffers[buffer_key]) >= self.capture_batch else None

    def _capture_settings(self, account: str, config: Any, variant: str,
                          experiment: dict[str, Any] | None) -> tuple[dict[str, Any], str | None]:
        """How one variant's answers are captured (a DataCaptureConfig) and the role SageMaker writes the files as.

        The endpoint config's DataCaptureConfig, written as the variant model's execution role; but while an inference
        experiment runs on the endpoint, its variants are the experiment's: with a DataStorageConfig, every request
        and answer of both (the experiment takes no sampling share or capture modes) goes to its Destination,
        encrypted with its KmsKey ("the key that Amazon SageMaker uses to encrypt captured data at rest using Amazon
        S3 server-side encryption") and written as its RoleArn, the role SageMaker runs the experiment with
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateInferenceExperiment.html); without one the
        experiment's shadow is not captured. (The emulator's reading: SageMaker serves an experiment from an endpoint
        config of its own, whose capture is the experiment's.)"""
        if experiment is not None:
            storage = experiment.get("DataStorageConfig")
            shadows = {s["VariantName"] for s in experiment["ShadowVariants"]}
            if storage and variant in {v["VariantName"] for v in experiment["ModelVariants"]}:
                return {"EnableCapture": True, "DestinationS3Uri": storage["Destination"], "InitialSamplingPercentage": 100,
                        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                        "CaptureContentTypeHeader": storage.get("ContentType") or {},
                        "KmsKeyId": storage.get("KmsKey")}, experiment["RoleArn"]
            if variant in shadows:
                return {}, None
        model = self._models_of(account, config).get(variant)
        return config.data_capture_config or {}, getattr(model, "execution_role_arn", None)

    def _models_of(self, account: str, config: Any) -> dict[str, Any]:
        """The model of each variant of an endpoint config (production's and the shadows'), by variant name."""
        backend = sagemaker_backends[account][getattr(config, "region_name", "us-east-1")]
        key = (account, getattr(config, "region_name", "us-east-1"), config.endpoint_config_name)
        variants = [*config.production_variants, *self.sagemaker.shadow_variants.get(key, [])]
        return {v["VariantName"]: backend._models.get(v.get("ModelName", "")) for v in variants}

    def _write(self, buffer_key: tuple) -> None:
        account, destination, endpoint, variant, hour, role, kms_key, region = buffer_key
        with self._buffers_lock:
            records = self._buffers.pop(buffer_key, [])
        if not records:
            return
        bucket, _, prefix = destination[5:].partition("/")
        key = "/".join(p for p in (prefix.strip("/"), endpoint, variant, hour) if p) + f"/{uuid.uuid4().hex}.jsonl"
        if self.authorizer is not None and role:
            from .authorization import AccessDenied
            from .authorization.enforcer import object_kms_key
            from .authorization.policies import kms_key as key_arn

            capture_key = key_arn(kms_key, account, region) if kms_key else \
                object_kms_key(account, region, bucket, key, writing=True)
            try:
                self.authorizer.act("capture-write", role, {"capture_object": f"arn:aws:s3:::{bucket}/{key}",
                                                            "capture_kms_key": capture_key}, region)
            except AccessDenied as denied:  # SageMaker cannot write the file: its records are lost, as on AWS
                self.capture_refused.append((f"s3://{bucket}/{key}", str(denied)))
                return
        body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
        s3_backends[account]["aws"].put_object(bucket, key, body)

    def flush_capture(self) -> None:
        """Write every buffered capture record (SageMaker writes them within minutes; tests want them now)."""
        for buffer_key in list(self._buffers):
            self._write(buffer_key)
