"""The whole shadow test, offline: deploy, traffic, verdict, promotion, teardown (``make demo``).

1. starts the local AWS emulator (``python -m shadow_emulator``: moto's server plus this
   project's SageMaker, CloudWatch, Lambda and Step Functions doubles) on localhost;
2. ``cdk bootstrap`` and ``cdk deploy ChurnShadowTest`` into it with the real CDK CLI (the model
   archives travel as CDK assets into the emulated S3);
3. sends the reference traffic, CSV rows each with an InferenceId, through sagemaker-runtime
   InvokeEndpoint: real XGBoost predictions from the deployed archives, the shadow gets its
   sampled share, both variants' records are captured to S3. The traffic is replayed as the
   last ``--minutes`` minutes (the emulator's clock runs behind for it), since the verdict
   needs ten or more minutes of paired metrics and the demo has three;
4. lets the test end itself: the deploy started ONE execution of the promotion workflow that waits
   for the test's end (1 hour in the scenarios); the emulator's clock moves past it (and runs 20
   times as fast while the workflow polls the endpoint's update; when ``shadow-test run`` names the
   look waited for, straight on to it), that execution judges and acts
   with nobody starting anything, and ``shadow-test run --stack ChurnShadowTest`` follows it,
   printing each state and the verdict report (exit code 0 promoted, 3 rejected);
5. follows the verdict in IaC: ``shadow-test drift`` on the SHADOW assembly (after a PROMOTE it
   refuses: deploying it would put v1 back), ``cdk synth`` of the PROMOTED (or ROLLED_BACK) phase,
   ``shadow-test drift`` on it (passes), ``cdk deploy`` of it: the model serving in production does
   not change. (The synth of the phase the scenario should end in starts with the emulator, in the
   background; the verdict still decides which phase is deployed.);
6. prints the endpoint's final config, where the capture files are and a ``shadow-report``;
7. ``cdk destroy``, and stops the emulator — also on failure or Ctrl-C.

``--scenario regressed`` deploys the app with ``scenarios/regressed.json``: the shadow serves a
much larger model (``models/churn-v2-regressed``), so the same run ends in REJECT and production
is untouched. Nothing here can reach AWS: every call goes to the emulator on localhost, with
made-up credentials and no profile.

    .venv/bin/python scripts/demo.py [--scenario healthy|regressed] [--requests 3000] [--port 5055]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lambda"))
from shadow_runtime import agreement_metrics  # noqa: E402 - stdlib only: the workflow's own metric names

from shadow_emulator.ports import port_in_use  # noqa: E402 - not .server: that would load moto into the driver

STACK = "ChurnShadowTest"
#: The emulated IAM user who runs the CLI when the demo is given an operator policy.
OPERATOR = "shadow-operator"
ACCOUNT, REGION = "123456789012", "us-east-1"
SCENARIOS = ("healthy", "regressed")
#: The verdict each scenario is built to end in (``main`` fails the demo on any other).
EXPECTED = {"healthy": "PROMOTE", "regressed": "REJECT"}
CDK = ROOT / "node_modules" / ".bin" / "cdk"
#: Where the workflow publishes the live agreement metrics.
LIVE_NAMESPACE = agreement_metrics.NAMESPACE
#: How many times as fast as this machine's the emulated clock runs while the workflow executes.
CLOCK_RATE = 20
#: A look ``shadow-test run`` names: ``-> WaitForNextLook (look 1 of 3 at 2026-12-01T16:43:57Z, in 19 min 40 s)``.
LOOK_LINE = re.compile(r"-> WaitForNextLook \(look \d+ of \d+ at (\d{4}-\d\d-\d\dT[\d:.]+Z)")

T = TypeVar("T")


class DemoError(Exception):
    """A failure the demo explains in one line (no traceback)."""


@dataclass
class DemoResult:
    """What a run did, for the caller (and the integration test)."""

    scenario: str
    requests: int = 0
    #: Requests answered 200 by the production variant with one probability each.
    production_answers: int = 0
    #: Requests served per variant, as the emulator counted them.
    served: dict[str, int] = field(default_factory=dict)
    execution_status: str = ""
    decision: str = ""
    report_markdown: str = ""
    #: The judge's verdict.json (decision, every metric, criteria).
    verdict: dict[str, Any] = field(default_factory=dict)
    #: The endpoint after the workflow: config name, production and shadow variants.
    final_config: dict[str, Any] = field(default_factory=dict)
    initial_config: dict[str, Any] = field(default_factory=dict)
    #: Captured records and files per variant.
    captured_records: dict[str, int] = field(default_factory=dict)
    captured_files: dict[str, int] = field(default_factory=dict)
    capture_destination: str = ""
    #: shadow-report's report.json over the captured data.
    shadow_report: dict[str, Any] = field(default_factory=dict)
    #: Names of the workflow's executions after the test ended (only the self-ending one: nobody started any).
    executions: list[str] = field(default_factory=list)
    #: ``shadow-test run``'s exit code and output.
    run_exit_code: int | None = None
    run_output: str = ""
    #: The live agreement metrics the workflow published at its looks (the last of each, by metric name).
    live_agreement: dict[str, float] = field(default_factory=dict)
    #: ``shadow-test drift`` on the SHADOW assembly after the verdict, and on the next phase's: (exit code, line).
    drift_shadow: tuple[int, str] = (0, "")
    drift_next: tuple[int, str] = (0, "")
    #: The phase deployed after the verdict, and the production variant just before and after that deploy.
    next_phase: str = ""
    production_before_phase_deploy: list[dict[str, Any]] = field(default_factory=list)
    production_after_phase_deploy: list[dict[str, Any]] = field(default_factory=list)
    #: Per role of the stack (by its logical id): granted, used and never used (the emulator's least-privilege
    #: report, read before the destroy); also written to permissions.json in the work folder.
    permissions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The requests the emulator's authorization refused during the run (principal, action, resource, message).
    denials: list[dict[str, str]] = field(default_factory=list)
    #: What the operator (the IAM user running the CLI) requested: ``requests`` (action, resource) and the ``values``
    #: docs/operator-policy.json was filled with.
    operator: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class Console:
    """Step headers and a progress bar; quiet mode keeps only the headers (tests)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.tty = sys.stdout.isatty()
        self._last_bucket = -1

    def step(self, number: int, total: int, text: str) -> None:
        print(f"\n[{number}/{total}] {text}", flush=True)

    def line(self, text: str) -> None:
        if not self.quiet:
            print(f"      {text}", flush=True)

    def progress(self, done: int, total: int, suffix: str = "") -> None:
        if self.quiet:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        text = f"      [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {suffix}"
        if self.tty:
            print("\r" + text, end="\n" if done >= total else "", flush=True)
        else:  # CI logs: every 10%
            bucket = 10 * done // max(total, 1)
            if bucket != self._last_bucket:
                self._last_bucket = bucket
                print(text, flush=True)


class Emulator:
    """``python -m shadow_emulator`` in a child process, its output in a log file."""

    def __init__(self, port: int, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.port, self.log_path, self.env = port, log_path, env or dict(os.environ)
        self.url = f"http://localhost:{port}"
        self.process: subprocess.Popen | None = None

    def check_port(self) -> None:
        """A one-line DemoError if something listens on the emulator's port already."""
        if port_in_use("localhost", self.port):
            raise DemoError(f"port {self.port} is already in use: stop what listens there, or choose another port "
                            f"(make demo DEMO_PORT=5056)")

    def start(self, timeout: float = 60.0) -> None:
        self.check_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "shadow_emulator", "--port", str(self.port)],
                                        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env={**self.env, "PYTHONUNBUFFERED": "1"},
                                        start_new_session=True)  # Ctrl-C reaches the driver, which stops it
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                self.control("GET", "health")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise DemoError(f"the emulator did not answer on {self.url} within {timeout:.0f} s; see {self.log_path}")

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise DemoError(f"the emulator stopped (exit code {self.process.returncode}): {self.last_log_line()} "
                            f"(log: {self.log_path})")

    def last_log_line(self) -> str:
        try:
            lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "no log"
        return lines[-1].strip() if lines else "no output"

    def control(self, method: str, route: str, payload: dict | None = None) -> dict:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(f"{self.url}/_shadow_emulator/{route}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class InvokeEndpointSender:
    """sagemaker-runtime InvokeEndpoint sent as boto3 sends it, for well under half of boto3's CPU time a request.

    boto3 spends 2-2.7 ms of CPU on each InvokeEndpoint here (its event hooks, retry and endpoint-rule machinery,
    urllib3), about as much as the emulator spends answering it, and the demo sends 3,000; this sender 0.8-1.3 ms.
    It uses the pieces of botocore that make the request what it is: botocore's serializer on the client's
    service model (the URI, the headers the model names, the body, parameter validation), botocore's SigV4 signer
    with the model's signing name and the client's region, and botocore's parser and modeled exceptions for the
    answer (the same dict, ``Body`` a StreamingBody, the same ``ClientError`` subclasses); it sends on one
    kept-alive HTTP/1.1 connection per thread (opened again, and the request sent once more, when the server had
    closed it). tests/test_demo_setup.py checks the request (all but boto3's unsigned bookkeeping headers) and its
    signature against boto3's.

    :param client: a boto3 ``sagemaker-runtime`` client: its service model, endpoint URL, region and exceptions.
    :param credentials: what signs the requests (``botocore.credentials.Credentials``).
    :param timeout: seconds to wait for an answer. Default: 120.
    """

    def __init__(self, client: Any, credentials: Any, timeout: float = 120.0) -> None:
        from botocore import parsers, serialize
        from botocore.auth import SigV4Auth

        service = client.meta.service_model
        self.client, self.timeout = client, timeout
        self.operation = service.operation_model("InvokeEndpoint")
        self.serializer = serialize.create_serializer(service.protocol, include_validation=True)
        self.parser = parsers.create_parser(service.protocol)
        self.signer = SigV4Auth(credentials, service.signing_name, client.meta.region_name)
        self.endpoint_url = client.meta.endpoint_url
        self.user_agent = f"{client.meta.config.user_agent} md/shadow-constructs-demo"
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def invoke_endpoint(self, **params: Any) -> dict[str, Any]:
        """What ``client.invoke_endpoint(**params)`` returns (or raises)."""
        from botocore.awsrequest import create_request_object, prepare_request_dict
        from botocore.response import StreamingBody

        request_dict = self.serializer.serialize_to_request(params, self.operation)
        prepare_request_dict(request_dict, endpoint_url=self.endpoint_url, user_agent=self.user_agent)
        request = create_request_object(request_dict)
        self.signer.add_auth(request)
        prepared = request.prepare()
        status, headers, body = self._send(prepared)
        response = {"status_code": status, "headers": headers,
                    "body": body if status >= 300 else StreamingBody(io.BytesIO(body), len(body))}
        parsed = self.parser.parse(response, self.operation.output_shape)
        if status >= 300:
            code = parsed.get("Error", {}).get("Code")
            raise self.client.exceptions.from_code(code)(parsed, self.operation.name)
        return parsed

    def _send(self, prepared: Any) -> tuple[int, Any, bytes]:
        url = urllib.parse.urlsplit(prepared.url)
        path = url.path + (f"?{url.query}" if url.query else "")
        connection = getattr(self._local, "connection", None)
        for attempt in range(2):
            reused = connection is not None
            if connection is None:
                connection = http.client.HTTPConnection(url.hostname, url.port, timeout=self.timeout)
                self._local.connection = connection
                with self._lock:
                    self._connections.append(connection)
            try:
                connection.request(prepared.method, path, body=prepared.body, headers=dict(prepared.headers.items()))
                answer = connection.getresponse()
                return answer.status, answer.headers, answer.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()  # the server closed the kept-alive connection: open another, send once more
                connection = None
                if not reused or attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close every connection opened so far."""
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


class Demo:
    """One run of the lifecycle against a fresh emulator."""

    STEPS = 7

    def __init__(self, scenario: str = "healthy", requests: int = 3000, minutes: int = 20, port: int = 5055,
                 workdir: Path | None = None, assembly: Path | None = None, keep: bool = False,
                 console: Console | None = None, seed: int = 2026, operator: bool = True) -> None:
        if scenario not in SCENARIOS:
            raise DemoError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
        if not 10 <= minutes <= 120:
            raise DemoError(f"minutes must be 10-120 (the verdict needs ten paired minutes), got {minutes!r}")
        if requests < 20 * minutes:
            raise DemoError(f"requests must be at least 20 per minute ({20 * minutes} for {minutes} minutes), "
                            f"got {requests!r}")
        self.scenario, self.requests, self.minutes, self.seed = scenario, requests, minutes, seed
        self.workdir = Path(workdir or ROOT / ".demo").resolve()
        self.assembly = assembly
        self.keep = keep
        self.console = console or Console()
        self.emulator = Emulator(port, self.workdir / "emulator.log")
        self.result = DemoResult(scenario=scenario)
        self.env = self._aws_env()
        self.emulator.env = self.env
        #: cdk deploy / destroy, shadow-test and shadow-report run as the emulated IAM user OPERATOR, whose one policy
        #: is docs/operator-policy.json filled in for the stack (the bootstrap, the traffic and the inspection stay the
        #: administrator's); False: the administrator runs them all.
        self.operator = operator
        self.cli_env = self.env
        self.operator_values: dict[str, str] = {"Account": ACCOUNT, "Region": REGION, "StackName": STACK}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._traffic: Future[tuple[list[str], InvokeEndpointSender]] | None = None
        self._destroy: Future[str] | None = None  # cdk destroy, started by ``inspect``
        self._synth: Future[str] | None = None  # the app's synth when no assembly was given, started by ``run``
        self._report: subprocess.Popen | None = None
        self._running: set[subprocess.Popen] = set()  # CLI commands running now (one may run in the background)
        self._next_synth: tuple[str, Future[str]] | None = None  # the next phase, and its synth

    # Set-up

    def _aws_env(self) -> dict[str, str]:
        """The CLI's and boto3's environment: the emulator only, made-up credentials, no profile."""
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("AWS_") and key not in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")}
        env.update({
            "AWS_ENDPOINT_URL": self.emulator.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": str(self.workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.workdir / "no-aws-credentials"),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_CLI_TELEMETRY": "true",
        })
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def client(self, service: str):
        with self._clients_lock:  # made while the emulator starts (prepare_traffic), used from then on
            if service not in self._clients:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                                region_name=REGION)
                self._clients[service] = session.client(
                    service, endpoint_url=self.emulator.url,
                    config=Config(retries={"max_attempts": 2}, max_pool_connections=8, read_timeout=120))
            return self._clients[service]

    def prepare_traffic(self) -> tuple[list[str], InvokeEndpointSender]:
        """The traffic's CSV rows and its InvokeEndpoint sender, and the clients the deploy step uses: made while
        the emulator starts (its imports keep one core busy for a few seconds; this the other)."""
        from botocore.credentials import Credentials

        from scripts.build_models import churn_data

        features, _ = churn_data(self.requests, seed=self.seed)
        rows = [",".join(f"{value:g}" for value in row) for row in features.tolist()]
        for service in ("cloudformation", "sagemaker", "stepfunctions"):
            self.client(service)
        return rows, InvokeEndpointSender(self.client("sagemaker-runtime"), Credentials("testing", "testing"))

    def _context_args(self) -> list[str]:
        return ["-c", f"shadow-test-config=scenarios/{self.scenario}.json",
                "-c", 'managed-test={"endpoint_name": null}']

    def cdk(self, *args: str, what: str, assembly: Path | None = None, output: Path | None = None,
            context: list[str] | None = None, app: bool = True) -> str:
        """Run the CDK CLI: on ``assembly`` (default: the demo's), or synthesizing the app into ``output``; with
        ``app=False`` on no app at all (run outside the project, where no cdk.json names one: ``cdk bootstrap`` of
        an explicit environment would otherwise synthesize the whole app first, only to list its environments)."""
        if not CDK.exists() or shutil.which("node", path=self.env["PATH"]) is None:
            raise DemoError(f"the CDK CLI is missing ({CDK} {'found' if CDK.exists() else 'not found'}; node "
                            f"{'found' if shutil.which('node', path=self.env['PATH']) else 'not found'}): run `make setup`")
        assembly = assembly or (self.assembly if output is None else None)
        source = [] if not app else ["--app", str(assembly)] if assembly else \
            ["--output", str(output or self.workdir / "cdk.out")]
        command = [str(CDK), *args, *source, "--no-notices", "--no-version-reporting", "--ci"]
        env = self.env if args[0] == "bootstrap" else self.cli_env
        if app and not assembly:
            command += self._context_args() + (context or [])
            # A synth needs no AWS account (the app's stacks are environment-agnostic): given no credentials, the
            # CLI does not ask the emulator for the default account, so a synth may start before the emulator is up
            # (the same assembly, byte for byte). The instance metadata service is not tried either.
            env = {key: value for key, value in env.items() if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
            env["AWS_EC2_METADATA_DISABLED"] = "true"
        self.emulator.check_alive()
        process = subprocess.Popen(command, cwd=ROOT if app else self.workdir, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        self._running.add(process)  # a run that fails or is interrupted meanwhile stops it (see ``run``)
        try:
            stdout, stderr = process.communicate()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            self._running.discard(process)
        completed = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
        log = self.workdir / f"cdk-{args[0]}{f'-{output.name}' if app and output and not assembly else ''}.log"
        log.write_text(completed.stdout + completed.stderr)
        if completed.returncode in (-signal.SIGINT, 128 + signal.SIGINT) or "KeyboardInterrupt" in completed.stderr:
            raise KeyboardInterrupt  # Ctrl-C reached the CLI (same process group): the run is interrupted
        if completed.returncode != 0:
            self.emulator.check_alive()
            lines = [line for line in (completed.stdout + completed.stderr).splitlines() if line.strip()]
            raise DemoError(f"cdk {args[0]} failed ({what}): {lines[-1].strip() if lines else 'no output'} "
                            f"(full output: {log})")
        return completed.stdout + completed.stderr

    # The lifecycle

    def run(self) -> DemoResult:
        self.workdir.mkdir(parents=True, exist_ok=True)
        total = time.monotonic()
        try:
            self.emulator.check_port()
            # While the emulator starts (a core for a few seconds): the traffic's rows and clients, and a synth that
            # needs no emulator: the app, if no assembly was given, else the phase the scenario should end in.
            self._traffic = _in_background(self.prepare_traffic)
            if self.assembly is None:
                shutil.rmtree(self.workdir / "cdk.out", ignore_errors=True)
                self._synth = _in_background(self.cdk, "synth", STACK, "--quiet", output=self.workdir / "cdk.out",
                                             what=f"synthesize {STACK}")
            else:
                self.synthesize_next_phase(EXPECTED[self.scenario])
            self._timed("emulator", self.start_emulator)
            self._timed("deploy", self.deploy)
            self._timed("traffic", self.send_traffic)
            self._timed("workflow", self.end_of_test)
            self._timed("follow", self.follow_in_iac)
            self._timed("inspect", self.inspect)
            if not self.keep:
                self._timed("destroy", self.destroy)
            self.permissions(say=True)
        finally:
            for process in [*self._running, self._report]:  # what a failed or interrupted run left running
                if process is not None and process.poll() is None:
                    process.terminate()
                    process.wait()
            self.emulator.stop()
        self.result.seconds["total"] = round(time.monotonic() - total, 1)
        self.console.line(f"emulator stopped; {self.result.seconds['total']:.0f} s in all "
                          f"({', '.join(f'{k} {v:.0f} s' for k, v in self.result.seconds.items() if k != 'total')})")
        return self.result

    def _timed(self, name: str, step) -> None:
        started = time.monotonic()
        step()
        self.result.seconds[name] = round(time.monotonic() - started, 1)

    def start_emulator(self) -> None:
        self.console.step(1, self.STEPS, f"Starting the local AWS emulator on {self.emulator.url} "
                                         f"(moto + shadow_emulator doubles)")
        self.emulator.start()
        self.console.line(f"ready; its log: {self.emulator.log_path}")
        if self.operator:
            self.cli_env = self.make_operator()
            self.console.line(f"cdk deploy, shadow-test and shadow-report run as the IAM user {OPERATOR}, with "
                              f"docs/operator-policy.json only")

    def make_operator(self) -> dict[str, str]:
        """The emulated IAM user who runs the CLI, allowed only to deploy through the bootstrap roles until the stack
        exists (``operator_policy`` then gives it the rest); the CLI's environment as that user."""
        from shadow_emulator.authorization import operator_policy

        iam = self.client("iam")
        iam.create_user(UserName=OPERATOR)
        template = operator_policy.load()
        deploying = {**template, "Statement": [s for s in template["Statement"] if s["Action"] == ["sts:AssumeRole"]]}
        iam.put_user_policy(UserName=OPERATOR, PolicyName=OPERATOR,
                            PolicyDocument=json.dumps(operator_policy.fill(deploying, self.operator_values)))
        key = iam.create_access_key(UserName=OPERATOR)["AccessKey"]
        return {**self.env, "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

    def operator_policy(self, resources: dict[str, list[tuple[str, str]]]) -> None:
        """Give the operator docs/operator-policy.json for the deployed stack (``resources``: type -> (logical id,
        physical id))."""
        from shadow_emulator.authorization import operator_policy

        def named(kind: str, prefix: str) -> str:
            return next(physical for logical, physical in resources.get(kind, []) if logical.startswith(prefix))

        def key_arn(key: str) -> str:
            return key if key.startswith("arn:") else f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key}"

        capture = self.result.initial_config.get("capture") or {}
        bucket, _, prefix = capture.get("DestinationS3Uri", "s3://")[5:].partition("/")
        self.operator_values.update({
            "StateMachineName": self.state_machine.rsplit(":", 1)[-1], "EndpointName": self.endpoint,
            "CaptureBucket": bucket, "CapturePrefix": prefix.strip("/"),
            "CaptureKeyArn": key_arn(capture["KmsKeyId"]) if capture.get("KmsKeyId") else "",
            "ReportsBucket": named("AWS::S3::Bucket", "PromotionReportsBucket"),
            "ReportsKeyArn": key_arn(named("AWS::KMS::Key", "PromotionReportsKey"))})
        self.client("iam").put_user_policy(UserName=OPERATOR, PolicyName=OPERATOR, PolicyDocument=json.dumps(
            operator_policy.fill(operator_policy.load(), self.operator_values)))

    def deploy(self) -> None:
        self.console.step(2, self.STEPS, f"cdk bootstrap and cdk deploy {STACK} (scenario {self.scenario}) "
                                         f"into the emulator")
        self.cdk("bootstrap", f"aws://{ACCOUNT}/{REGION}", what="bootstrap the emulated account", app=False)
        assembly = self.assembly
        if assembly is None:  # the app's synth started with the emulator; then the next phase's (see run)
            assembly = self.workdir / "cdk.out"
            (self._synth or _in_background(self.cdk, "synth", STACK, "--quiet", output=assembly,
                                           what=f"synthesize {STACK}")).result()
            self.synthesize_next_phase(EXPECTED[self.scenario])
        self.console.line(f"bootstrapped aws://{ACCOUNT}/{REGION}")
        self.cdk("deploy", STACK, "--require-approval", "never", "--method=direct", assembly=assembly,
                 what=f"deploy {STACK}")
        resources: dict[str, list[tuple[str, str]]] = {}
        for page in self.client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=STACK):
            for resource in page["StackResourceSummaries"]:
                resources.setdefault(resource["ResourceType"], []).append(
                    (resource["LogicalResourceId"], resource["PhysicalResourceId"]))
        machines = [physical for _, physical in resources.get("AWS::StepFunctions::StateMachine", [])]
        if len(machines) != 1:
            raise DemoError(f"expected one promotion state machine in {STACK}, found {len(machines)}")
        self.state_machine = machines[0]
        self.roles = self.stack_roles()
        endpoints = self.client("sagemaker").list_endpoints()["Endpoints"]
        if len(endpoints) != 1:
            raise DemoError(f"expected one endpoint after the deploy, found {[e['EndpointName'] for e in endpoints]}")
        self.endpoint = endpoints[0]["EndpointName"]
        self.result.initial_config = self.endpoint_config()
        production, shadow = self.result.initial_config["production"], self.result.initial_config["shadow"]
        self.console.line(f"deployed: {sum(len(v) for v in resources.values())} resources; endpoint {self.endpoint}: "
                          f"production {_variant_text(production[0])}, shadow {_variant_text(shadow[0])}")
        capture = self.result.initial_config.get("capture") or {}
        self.result.capture_destination = capture.get("DestinationS3Uri", "")
        if self.operator:
            self.operator_policy(resources)

    def stack_roles(self) -> dict[str, str]:
        """The stack's IAM roles: logical id -> role ARN."""
        roles = {}
        for page in self.client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=STACK):
            for resource in page["StackResourceSummaries"]:
                if resource["ResourceType"] == "AWS::IAM::Role":
                    roles[resource["LogicalResourceId"]] = f"arn:aws:iam::{ACCOUNT}:role/{resource['PhysicalResourceId']}"
        return roles

    def permissions(self, say: bool) -> None:
        """The emulator's least-privilege report for the stack's roles (grants read while they exist, every request
        made so far) and the requests it refused; written to permissions.json, summed up if ``say``."""
        roles = self.roles
        report = self.emulator.control("POST", "permissions", {"roles": sorted(roles.values())})["roles"]
        by_arn = {arn: logical for logical, arn in roles.items()}
        self.result.permissions = {by_arn[arn]: answer for arn, answer in report.items()}
        recorded = self.emulator.control("GET", "authorization")
        self.result.denials = recorded["denials"]
        operator = f"arn:aws:iam::{ACCOUNT}:user/{OPERATOR}"
        self.result.operator = {"values": self.operator_values, "requests": sorted(
            {(u["action"], u["resource"]) for u in recorded["usage"] if u["principal"] == operator})}
        (self.workdir / "permissions.json").write_text(json.dumps(
            {"roles": self.result.permissions, "denials": self.result.denials, "operator": self.result.operator},
            indent=1))
        if not say:
            return
        unused = sum(len(answer["unused"]) for answer in self.result.permissions.values())
        self.console.line(f"authorization: {len(self.result.denials)} requests refused; the stack's {len(roles)} roles made "
                          f"{sum(len(a['used']) for a in self.result.permissions.values())} kinds of request and never "
                          f"used {unused} grants ({self.workdir / 'permissions.json'})")

    def endpoint_config(self) -> dict[str, Any]:
        sagemaker = self.client("sagemaker")
        endpoint = sagemaker.describe_endpoint(EndpointName=self.endpoint)
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        return {"status": endpoint["EndpointStatus"], "config_name": endpoint["EndpointConfigName"],
                "production": [_variant(v) for v in config["ProductionVariants"]],
                "shadow": [_variant(v) for v in config.get("ShadowProductionVariants", [])],
                "capture": config.get("DataCaptureConfig")}

    def send_traffic(self) -> None:
        per_minute = math.ceil(self.requests / self.minutes)
        self.console.step(3, self.STEPS, f"Sending {self.requests} CSV requests through InvokeEndpoint, replayed as the "
                                         f"test's first {self.minutes} minutes ({per_minute} a minute)")
        rows, runtime = (self._traffic or _in_background(self.prepare_traffic)).result()
        production_variant = self.result.initial_config["production"][0]["VariantName"]
        # The self-ending execution judges the test from its start (the deploy) at every look: the traffic is stamped
        # from there on, in the emulated clock's future, as if the test had been running.
        first_minute = self.test_window(self.self_ending_execution())[0].replace(second=0, microsecond=0)

        def invoke(index: int) -> bool:
            response = runtime.invoke_endpoint(EndpointName=self.endpoint, ContentType="text/csv", Accept="text/csv",
                                               Body=rows[index].encode(), InferenceId=f"demo-{index:06d}")
            body = response["Body"].read().decode()
            return response.get("InvokedProductionVariant") == production_variant and _is_probability(body)

        answered = 0
        with ThreadPoolExecutor(max_workers=4) as pool:
            try:
                for minute in range(self.minutes):
                    batch = range(minute * per_minute, min(self.requests, (minute + 1) * per_minute))
                    if not batch:
                        break
                    moment = first_minute + timedelta(minutes=minute, seconds=1)
                    self.emulator.control("POST", "clock",
                                          {"offset_seconds": (moment - datetime.now(UTC)).total_seconds()})
                    try:
                        answered += sum(pool.map(invoke, batch))
                    except Exception as error:  # a dead emulator explains itself; anything else is a real failure
                        self.emulator.check_alive()
                        raise DemoError(f"InvokeEndpoint failed: {error}") from error
                    self.console.progress(batch.stop, self.requests, f"requests (emulated {moment:%H:%M} UTC)")
            finally:
                runtime.close()
        self.emulator.control("POST", "clock", {"offset_seconds": 0})
        self.emulator.control("POST", "flush")
        self.start_shadow_report()  # the capture is complete: shadow-report reads it while the workflow runs
        counts = self.emulator.control("GET", "counts")["counts"].get(self.endpoint, {})
        self.result.requests = self.requests
        self.result.production_answers = answered
        self.result.served = {variant: numbers.get("invocations", 0) for variant, numbers in counts.items()}
        served = ", ".join(f"{variant} {number}" for variant, number in sorted(self.result.served.items()))
        self.console.line(f"{answered}/{self.requests} answered by production with a prediction; served: {served}")

    def shadow_test(self, *args: str, stream: bool = False,
                    on_line: Callable[[str], None] | None = None) -> tuple[int, str]:
        """Run the ``shadow-test`` command against the emulator; its exit code and output (``on_line`` sees each
        line as it comes)."""
        command = [str(Path(sys.executable).parent / "shadow-test"), *args]
        process = subprocess.Popen(command, cwd=ROOT, env=self.cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, stdin=subprocess.DEVNULL)
        lines = []
        for line in process.stdout:
            lines.append(line)
            if stream and not self.console.quiet:
                print(f"      | {line.rstrip()}", flush=True)
            if on_line is not None:
                on_line(line)
        code = process.wait()
        if code == 2 or code >= 5 or code < 0:
            self.emulator.check_alive()
            raise DemoError(f"shadow-test {' '.join(args)} could not run (exit {code}): {''.join(lines).strip()[-300:]}")
        return code, "".join(lines)

    def executions(self) -> list[dict[str, Any]]:
        return self.client("stepfunctions").list_executions(stateMachineArn=self.state_machine)["executions"]

    def self_ending_execution(self) -> dict[str, Any]:
        """The one execution the deploy started (DescribeExecution): it judges the test at every look."""
        pending = self.executions()
        if len(pending) != 1 or pending[0]["status"] != "RUNNING":
            raise DemoError(f"expected the one self-ending execution the deploy started, found "
                            f"{[(e['name'], e['status']) for e in pending]}")
        return self.client("stepfunctions").describe_execution(executionArn=pending[0]["executionArn"])

    @staticmethod
    def test_window(execution: dict[str, Any]) -> tuple[datetime, datetime]:
        """The test's start and planned end, as the deploy-time timer gave them to the self-ending execution."""
        given = json.loads(execution["input"])
        return tuple(datetime.fromisoformat(given[k].replace("Z", "+00:00")) for k in ("test_start", "test_end"))

    def end_of_test(self) -> None:
        """Move the emulated clock past the traffic; the self-ending execution judges at its looks; follow it."""
        timer = self.self_ending_execution()
        test_start, test_end = self.test_window(timer)
        traffic_end = test_start.replace(second=0, microsecond=0) + timedelta(minutes=self.minutes)
        every = json.loads((ROOT / "scenarios" / f"{self.scenario}.json").read_text()).get("look_interval_minutes", 60)
        self.console.step(4, self.STEPS, f"The test is judged every {every} minutes from its start at {test_start:%H:%M} "
                                         f"UTC and ends itself at {test_end:%H:%M} UTC at the latest: the emulated clock "
                                         f"moves to {traffic_end:%H:%M}; `shadow-test run` follows the looks")
        self.console.line(f"execution {timer['name']} has waited for its first look since the deploy; nobody starts one")
        # Past the traffic; from there the emulated clock runs CLOCK_RATE times as fast, so the waits between
        # DescribeEndpoint calls (the scenario's 2 s) take a tenth of a second. Nothing happens in the emulator
        # while the execution waits for a look: as soon as `shadow-test run` names the look, the clock moves on to
        # a second before it (at CLOCK_RATE, the rest of a 20-minute wait would still take a minute).
        clock = {"offset": (traffic_end - datetime.now(UTC)).total_seconds() + 5, "since": time.monotonic()}
        self.emulator.control("POST", "clock", {"offset_seconds": clock["offset"], "rate": CLOCK_RATE})

        def on_to_the_look(line: str) -> None:
            if line.startswith("-> PublishVerdict"):  # judged: the next phase is known, its synth can start
                self.synthesize_next_phase(self.judged_decision(timer["executionArn"]))
            match = LOOK_LINE.search(line)
            if match is None:
                return
            look = datetime.fromisoformat(match[1].replace("Z", "+00:00")) - timedelta(seconds=1)
            now = datetime.now(UTC)
            emulated = now + timedelta(seconds=clock["offset"] + (time.monotonic() - clock["since"]) * (CLOCK_RATE - 1))
            if look > emulated:
                clock.update(offset=(look - now).total_seconds(), since=time.monotonic())
                self.emulator.control("POST", "clock", {"offset_seconds": clock["offset"], "rate": CLOCK_RATE})

        try:
            self.console.line(f"$ shadow-test run --stack {STACK} --verbose")
            code, output = self.shadow_test("run", "--stack", STACK, "--poll", "0.2", "--verbose", stream=True,
                                            on_line=on_to_the_look)
        finally:
            self.emulator.control("POST", "clock", {"offset_seconds": 0})
        self.result.run_exit_code, self.result.run_output = code, output
        self.result.executions = [e["name"] for e in self.executions()]
        status = self.client("stepfunctions").describe_execution(executionArn=timer["executionArn"])
        self.result.execution_status = status["status"]
        if status["status"] != "SUCCEEDED":
            said = [line.strip() for line in output.splitlines() if line.strip()]
            raise DemoError(f"the promotion workflow ended {status['status']}: {status.get('error', '')} "
                            f"{status.get('cause', '')}".strip() + (f"; shadow-test run: {said[-1]}" if said else ""))
        output_json = json.loads(status.get("output") or "{}")
        self.result.decision = output_json.get("decision", "")
        report = output_json.get("report") or ""
        if report.startswith("s3://"):
            bucket, key = report[5:].split("/", 1)
            s3 = self.client("s3")
            self.result.report_markdown = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            self.result.verdict = json.loads(s3.get_object(
                Bucket=bucket, Key=key.rsplit("/", 1)[0] + "/verdict.json")["Body"].read())
        self.console.line(f"shadow-test run: exit {code} ({self.result.decision}, {output_json.get('action')}); "
                          f"executions of the workflow: {', '.join(self.result.executions)}")
        self.result.live_agreement = self.live_agreement(test_start, test_end)
        live = self.result.live_agreement
        if live:
            self.console.line(f"live metrics ({LIVE_NAMESPACE}): label agreement {live.get('PredictionAgreement', 0):.2f}% "
                              f"over {live.get('PairedPredictions', 0):,.0f} paired predictions, mean |difference| "
                              f"{live.get('PredictionMeanAbsDifference', float('nan')):.4f}, as the dashboard shows them")

    def live_agreement(self, start: datetime, end: datetime) -> dict[str, float]:
        """The last value of each live agreement metric the workflow published for the shadow variant."""
        cloudwatch = self.client("cloudwatch")
        shadow = self.result.initial_config["shadow"][0]["VariantName"]
        dims = [{"Name": "EndpointName", "Value": self.endpoint}, {"Name": "VariantName", "Value": shadow}]
        figures = {}
        for name in (agreement_metrics.AGREEMENT, agreement_metrics.PAIRED, agreement_metrics.MEAN_ABS_DIFF):
            points = cloudwatch.get_metric_statistics(
                Namespace=LIVE_NAMESPACE, MetricName=name, Dimensions=dims, StartTime=start - timedelta(hours=1),
                EndTime=end + timedelta(hours=1), Period=60, Statistics=["Maximum"])["Datapoints"]
            if points:
                figures[name] = max(points, key=lambda point: point["Timestamp"])["Maximum"]
        return figures

    def judged_decision(self, execution_arn: str) -> str:
        """The decision the execution's last Judge state gave (its output's verdict), or "" before it has judged.
        An execution judges once per look: the last look's exit is the one with the highest event id (whatever order
        the history comes in: moto ignores ``reverseOrder``)."""
        events = self.client("stepfunctions").get_execution_history(
            executionArn=execution_arn, reverseOrder=True, maxResults=1000)["events"]
        judged = [event for event in events if (event.get("stateExitedEventDetails") or {}).get("name") == "Judge"]
        if not judged:
            return ""
        output = max(judged, key=lambda event: event["id"])["stateExitedEventDetails"].get("output") or "{}"
        return (json.loads(output).get("verdict") or {}).get("decision", "")

    def synthesize_next_phase(self, decision: str) -> Future[str]:
        """Start ``cdk synth`` of the phase that follows ``decision`` (PROMOTED after a PROMOTE, else ROLLED_BACK)
        in the background, once per phase.

        ``run`` starts it for the verdict the scenario is built to end in (``EXPECTED``), with the emulator (or, when
        the demo synthesizes the app itself, once that synth is done), so that it (about ten seconds of a core) runs
        beside the emulator's start, the deploy and the traffic instead of after the verdict; the phase that is
        deployed is still the one the workflow's verdict names: when it judges otherwise (and the demo fails for
        it), that phase's synth starts then, as it did before (the other one finishes unused)."""
        phase = "promoted" if decision == "PROMOTE" else "rolled_back"
        if self._next_synth is None or self._next_synth[0] != phase:
            next_assembly = self.workdir / f"cdk.out.{phase}"
            shutil.rmtree(next_assembly, ignore_errors=True)
            self._next_synth = (phase, _in_background(self.cdk, "synth", STACK, "--quiet", output=next_assembly,
                                                      what=f"synthesize the {phase} phase",
                                                      context=["-c", f"shadow-test={json.dumps({'phase': phase})}"]))
        return self._next_synth[1]

    def follow_in_iac(self) -> None:
        """The app must now declare what serves: the drift guard, then the next phase's synth, guard and deploy."""
        phase = "promoted" if self.result.decision == "PROMOTE" else "rolled_back"
        self.result.next_phase = phase
        self.console.step(5, self.STEPS, f"Following the verdict in IaC: the drift guard, then cdk deploy of the "
                                         f"{phase.upper()} phase")
        shadow_assembly = self.assembly or self.workdir / "cdk.out"
        next_assembly = self.workdir / f"cdk.out.{phase}"
        # The next phase's synth started with the emulator (or, if the verdict was not the expected one, once the
        # workflow had judged); the drift guard on the SHADOW assembly runs meanwhile.
        synth = self.synthesize_next_phase(self.result.decision)
        code, output = self.shadow_test("drift", "--stack", STACK, "--app", str(shadow_assembly))
        self.result.drift_shadow = (code, output.strip())
        self.console.line(f"$ shadow-test drift --stack {STACK} --app {shadow_assembly}   (the SHADOW phase)")
        self.console.line(f"  exit {code}: {output.strip()}")
        synth.result()
        code, output = self.shadow_test("drift", "--stack", STACK, "--app", str(next_assembly))
        self.result.drift_next = (code, output.strip())
        self.console.line(f"$ shadow-test drift --stack {STACK} --app {next_assembly}   (the {phase.upper()} phase)")
        self.console.line(f"  exit {code}: {output.strip()}")
        if code != 0:
            raise DemoError(f"the {phase} phase would change the model serving in production: {output.strip()}")
        self.result.production_before_phase_deploy = self.endpoint_config()["production"]
        self.permissions(say=False)  # read while the workflow's roles exist (the next phase has none); again after the destroy
        self.cdk("deploy", STACK, "--require-approval", "never", "--method=direct", assembly=next_assembly,
                 what=f"deploy the {phase} phase")
        after = self.endpoint_config()
        self.result.production_after_phase_deploy = after["production"]
        before_models = [v["ModelName"] for v in self.result.production_before_phase_deploy]
        after_models = [v["ModelName"] for v in after["production"]]
        self.console.line(f"deployed the {phase.upper()} phase: endpoint {after['status']} on {after['config_name']}; "
                          f"production serves {', '.join(after_models)} "
                          f"({'unchanged' if after_models == before_models else 'CHANGED from ' + ', '.join(before_models)})")

    def inspect(self) -> None:
        self.console.step(6, self.STEPS, "The endpoint now, and the captured data")
        self.result.final_config = final = self.endpoint_config()
        if not self.keep:  # the endpoint is read: cdk destroy (step 7) can start while the captured data is read
            self._destroy = _in_background(self.cdk, "destroy", STACK, "--force",
                                           assembly=self.assembly or self.workdir / "cdk.out", what=f"destroy {STACK}")
        self.console.line(f"{self.endpoint}: {final['status']} on {final['config_name']}")
        for variant in final["production"]:
            self.console.line(f"  production: {_variant_text(variant)}")
        for variant in final["shadow"]:
            self.console.line(f"  shadow:     {_variant_text(variant)}")
        if not final["shadow"]:
            self.console.line("  shadow:     none")
        destination = self.result.capture_destination
        if not destination:
            self.console.line("data capture is off")
            return
        bucket, _, prefix = destination[5:].partition("/")
        base = "/".join(p for p in (prefix.strip("/"), self.endpoint) if p) + "/"
        s3 = self.client("s3")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            for item in page.get("Contents", []):
                variant = item["Key"][len(base):].split("/", 1)[0]
                lines = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().count(b"\n")
                self.result.captured_files[variant] = self.result.captured_files.get(variant, 0) + 1
                self.result.captured_records[variant] = self.result.captured_records.get(variant, 0) + lines
        for variant in sorted(self.result.captured_records):
            self.console.line(f"captured s3://{bucket}/{base}{variant}/yyyy/mm/dd/hh/: "
                              f"{self.result.captured_records[variant]} records in "
                              f"{self.result.captured_files[variant]} files")
        self.shadow_report(destination)

    def start_shadow_report(self) -> None:
        """Start shadow-report over the emulated S3 (it honours AWS_ENDPOINT_URL) in the background, once the
        capture is written (the traffic's end); ``shadow_report`` waits for it. Nothing to do when capture is off."""
        destination = self.result.capture_destination
        if not destination or self._report is not None:
            return
        out, log = self.workdir / "shadow-report", self.workdir / "shadow-report.log"
        command = [str(Path(sys.executable).parent / "shadow-report"), destination, "--endpoint", self.endpoint,
                   "--out", str(out), "--no-progress"]
        with log.open("w") as output:
            self._report = subprocess.Popen(command, cwd=ROOT, env=self.cli_env, stdout=output, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)

    def shadow_report(self, destination: str) -> None:
        """shadow-report's answers compared pair by pair (started by ``start_shadow_report``, or now)."""
        out, log = self.workdir / "shadow-report", self.workdir / "shadow-report.log"
        self.start_shadow_report()
        if self._report.wait() != 0:
            self.emulator.check_alive()
            raise DemoError(f"shadow-report failed: {log.read_text(errors='replace').strip()[-300:]}")
        report = json.loads((out / "report.json").read_text())
        self.result.shadow_report = report
        pairing, numeric, labels = report["pairing"], report.get("numeric") or {}, report.get("labels") or {}
        self.console.line(f"shadow-report {destination} --endpoint {self.endpoint}: {pairing['paired']} pairs by InferenceId "
                          f"(unmatched: production {pairing['unmatched_production']}, shadow {pairing['unmatched_shadow']})")
        if numeric:
            self.console.line(f"  probabilities: mean |shadow - production| {numeric['mean_abs_diff']:.4f}, "
                              f"p99 {numeric['p99_abs_diff']:.4f}, within tolerance {numeric['within_tolerance']:.1%}, "
                              f"KS {numeric['ks']:.3f}, PSI {numeric['psi']:.3f}")
        if labels:
            self.console.line(f"  labels: agreement {labels['agreement']:.2%} over {labels['predictions']} predictions")
        self.console.line(f"  report and plots: {out}/ (report.md, report.json, *.png)")

    def destroy(self) -> None:
        """``cdk destroy`` on the assembly the deploy synthesized (or was given): destroy needs only the stack's
        name and environment, and the CLI would otherwise synthesize the whole app again. ``inspect`` starts it as
        soon as it has read the endpoint (the capture bucket it goes on reading is retained, as on AWS)."""
        self.console.step(7, self.STEPS, f"cdk destroy {STACK}")
        if self._destroy is None:
            self._destroy = _in_background(self.cdk, "destroy", STACK, "--force",
                                           assembly=self.assembly or self.workdir / "cdk.out", what=f"destroy {STACK}")
        self._destroy.result()
        self.console.line("destroyed (a real account keeps the capture bucket: it is retained by default)")


def _in_background(call: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
    """``call(*args, **kwargs)`` on a thread of its own; a failure of the caller meanwhile does not wait for it
    (``Demo.run`` stops the CLI command it runs)."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(call, *args, **kwargs)
    finally:
        pool.shutdown(wait=False)


def _variant(variant: dict[str, Any]) -> dict[str, Any]:
    return {key: variant.get(key) for key in ("VariantName", "ModelName", "InstanceType", "InitialInstanceCount",
                                              "InitialVariantWeight")}


def _variant_text(variant: dict[str, Any]) -> str:
    return (f"{variant['VariantName']} = {variant['ModelName']} on {variant['InitialInstanceCount']} x "
            f"{variant['InstanceType']}")


def _is_probability(body: str) -> bool:
    try:
        return 0.0 <= float(body.strip()) <= 1.0
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=SCENARIOS, default=os.environ.get("SCENARIO") or "healthy",
                        help="healthy: v2 shadows v1 and is promoted; regressed: a much slower v2 is rejected "
                             "(default: $SCENARIO or healthy)")
    parser.add_argument("--requests", type=int, default=3000, help="requests to send (default: 3000)")
    parser.add_argument("--minutes", type=int, default=20, help="minutes the traffic is replayed over (default: 20)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT") or 5055),
                        help="the emulator's port (default: $DEMO_PORT or 5055)")
    parser.add_argument("--assembly", type=Path, help="deploy this synthesized cloud assembly (default: synthesize)")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".demo", help="logs and cdk.out (default: .demo)")
    parser.add_argument("--keep", action="store_true", help="skip cdk destroy (the emulator still stops)")
    args = parser.parse_args(argv)
    if args.scenario not in SCENARIOS:
        print(f"demo: SCENARIO must be one of {', '.join(SCENARIOS)}, got {args.scenario!r}", file=sys.stderr)
        return 2
    def terminated(signum, frame):
        raise KeyboardInterrupt  # a kill (SIGTERM) stops the emulator like Ctrl-C does

    signal.signal(signal.SIGTERM, terminated)
    try:
        demo = Demo(args.scenario, args.requests, args.minutes, args.port, args.workdir, args.assembly, args.keep)
        result = demo.run()
    except DemoError as error:
        print(f"\ndemo failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo interrupted; the emulator is stopped", file=sys.stderr)
        return 130
    expected = EXPECTED[args.scenario]
    print(f"\nShadow test ({args.scenario}): {result.decision}; endpoint now serves "
          f"{', '.join(v['ModelName'] for v in result.final_config['production'])}"
          f"{'' if result.final_config['shadow'] else ' with no shadow'}.")
    if result.decision != expected:
        print(f"demo: expected {expected} for the {args.scenario} scenario, got {result.decision}", file=sys.stderr)
        return 1
    if result.production_after_phase_deploy != result.production_before_phase_deploy:
        print(f"demo: deploying the {result.next_phase} phase changed production: "
              f"{result.production_before_phase_deploy} -> {result.production_after_phase_deploy}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
