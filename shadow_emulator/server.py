"""The local AWS emulator the demo deploys into: moto's server plus this package's doubles.

``EmulatorServer`` serves moto's whole API on ``http://localhost:PORT`` (the address the CDK CLI
and boto3 reach with ``AWS_ENDPOINT_URL``), with every double of this package installed:
SageMaker shadow variants, UpdateEndpoint and inference experiments (``SageMakerDouble``),
pNN statistics in GetMetricData (``CloudWatchDouble``), the workflow's Lambda functions run
with their real code (``LambdaDouble``), state machines deployed by CloudFormation executable
(``StepFunctionsDouble``), InvokeEndpoint answered with real predictions
(``EndpointRuntimeDouble``), and CaptureAnalytics' Glue table and Athena workgroup deployable with
queries that really run on the captured data (``AthenaDouble``), CloudFormation custom resources
with their whole Create / Update / Delete lifecycle (``CloudFormationDouble``: ``cdk deploy`` and
``cdk destroy`` send the handler what CloudFormation would, and wait for its answer), and Wait
states that end by the emulator's clock (``WaitStateDouble``). Step Functions executes ASL; Lambda
never needs Docker.

The emulator has one clock (``EmulatorClock``): this machine's time plus an offset. The runtime
double stamps metrics and capture records with it, and Step Functions' Wait states end by it, so
moving it forward ends a wait for a timestamp (or for a number of seconds) without sleeping.

A few control routes, under ``/_shadow_emulator/``, serve the demo driver (they are no AWS API):
``GET health``, ``POST clock`` ``{"offset_seconds": -1200}`` (the emulator's clock then runs that
far behind this machine's: metric and capture timestamps of a replay; ``3600`` ends, within a
fraction of a second, the Wait states due in the next hour; an optional ``"rate": 20``, default 1,
makes it run 20 times as fast from then on: a 2-second Wait state then takes a tenth of a second), ``POST flush`` (write buffered capture
records now), ``GET counts`` (requests served per endpoint and variant), ``GET authorization`` (the requests
the authorization allowed, with counts, and those it refused, with AWS's message) and ``POST permissions``
``{"roles": [role ARNs]}`` (per role: granted, used, never used; ``authorization.least_privilege``).

Run it on its own with ``python -m shadow_emulator --port 5055``. A test double, never deployed:
the constructs know nothing of it. Its limits are listed in the README ("The local emulator").
"""

from __future__ import annotations

import errno
import gc
import json
import logging
import os
import threading
import traceback
from datetime import timedelta
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from .athena import AthenaDouble
from .authorization import AuthorizationDouble, least_privilege
from .clock import EmulatorClock
from .cloudformation import CloudFormationDouble
from .cloudwatch import CloudWatchDouble
from .lambdas import RUNTIME_PREFIXES, LambdaDouble
from .ports import port_in_use
from .runtime import EndpointRuntimeDouble
from .sagemaker import SageMakerDouble
from .stepfunctions import DefinitionParseCache, StepFunctionsDouble, WaitStateDouble

CONTROL_PREFIX = "/_shadow_emulator/"
#: What moto needs to run the workflow: ASL executed for real, Lambda without Docker.
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


def _cache_moto_module_list() -> None:
    """moto's server lists its own package folder (listdir + isdir of ~200 entries) on EVERY request to
    find the backend for a host: a tenth of an InvokeEndpoint's time here. The list never changes while
    the process runs, so it is read once."""
    from moto import backends

    if getattr(backends.list_of_moto_modules, "cached", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def cached() -> tuple[str, ...]:
        return modules

    cached.cached = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = cached


class _RequestHandler(MotoRequestHandler):
    """moto's request handler with Nagle's algorithm off (werkzeug writes a response's headers and its body in
    two sends, and with Nagle on the body waits for the client's delayed ACK of the headers), and InvokeEndpoint
    answered on a connection kept open.

    werkzeug's development server closes every connection after its response (it cannot tell where an unread
    request body ends) and waits up to 10 ms for stray input before it does. An InvokeEndpoint the runtime double
    answers has read its whole body (its Content-Length), so that connection stays open for the client's next
    request: the demo's 3,000 requests no longer cost a TCP connection, a serving thread and a 10 ms wait each.
    Every other request is werkzeug's and moto's, its connection closed as before."""

    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        runtime: EndpointRuntimeDouble | None = getattr(self.server, "shadow_runtime", None)
        if runtime is None or self.command != "POST" or "Expect" in self.headers:
            return super().run_wsgi()
        self.environ = environ = self.make_environ()
        try:
            served = runtime.serve_wsgi(environ)
        except Exception:  # noqa: BLE001 - as werkzeug answers a failing application: 500, logged, connection closed
            self.server.log("error", f"Error on request:\n{traceback.format_exc()}")
            self.close_connection = True
            served = ("500 Internal Server Error", [("Content-Type", "text/plain"), ("Content-Length", "21")],
                      b"Internal Server Error")
        if served is None:
            return super().run_wsgi()  # not InvokeEndpoint: nothing of the request was read yet
        status, headers, data = served
        lines = [f"{self.protocol_version} {status}", f"Server: {self.version_string()}",
                 f"Date: {self.date_time_string()}", *(f"{name}: {value}" for name, value in headers)]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)


class PortInUseError(Exception):
    """The emulator's port is taken by another program."""


class EmulatorServer:
    """moto's server with the doubles, in a thread of this process.

    :param host: where to listen. Default ``localhost`` (the CDK CLI needs a host name, not 127.0.0.1).
    :param port: TCP port. Default 5055.
    :param seed: seed of the runtime double's shadow and capture sampling. Default 0.
    :param update_polls: DescribeEndpoint calls an UpdateEndpoint stays ``Updating``. Default 2.
    :param lambda_handlers: more handler prefixes (``module.``) LambdaDouble runs in-process, besides
        ``shadow_runtime.`` (tests' probe handlers). Default: none.
    """

    def __init__(self, host: str = "localhost", port: int = 5055, seed: int = 0, update_polls: int = 2,
                 lambda_handlers: tuple[str, ...] = (), authorization: bool = True) -> None:
        self.host, self.port = host, port
        #: Every request authorized as AWS would, as its principal (``shadow_emulator.authorization``); None when
        #: turned off (``authorization=False``, ``python -m shadow_emulator --no-authorization``).
        self.authorization = AuthorizationDouble() if authorization else None
        authorizer = self.authorization.authorizer if self.authorization else None
        #: The emulator's one clock: the runtime double and the Wait states read it, POST clock sets it.
        self.clock = EmulatorClock()
        self.sagemaker = SageMakerDouble(update_polls=update_polls, authorizer=authorizer)
        self.runtime = EndpointRuntimeDouble(self.sagemaker, seed=seed, clock=self.clock, authorizer=authorizer)
        self.athena = AthenaDouble()
        self.lambdas = LambdaDouble(handler_prefixes=(*RUNTIME_PREFIXES, *lambda_handlers),
                                    authorizer=authorizer)
        self.cloudformation = CloudFormationDouble(response_url=self.url)
        self._doubles: list[Any] = [self.sagemaker, CloudWatchDouble(), self.lambdas, StepFunctionsDouble(),
                                    WaitStateDouble(self.clock), DefinitionParseCache(), self.runtime, self.athena,
                                    self.cloudformation]
        if self.authorization is not None:
            self._doubles.insert(0, self.authorization)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmulatorServer:
        """Listen (PortInUseError if the port is taken), install the doubles, configure moto.

        Meant for a process of its own (``python -m shadow_emulator``): it points this process's AWS
        environment (``AWS_*``) at itself, and freezes the objects loaded so far out of the garbage collector's
        reach (``gc.freeze``).
        """
        if port_in_use(self.host, self.port):
            raise PortInUseError(f"port {self.port} on {self.host} is already in use")
        from moto.moto_api._internal.models import moto_api_backend

        _cache_moto_module_list()
        # One log line per request (3,000 in a demo) is noise in the emulator's log and a few percent of its time.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

        moto_api_backend.set_config(MOTO_CONFIG)  # what POST /moto-api/config sets
        # The workflow's Lambda handlers run inside this process and call AWS with boto3: here, and only
        # here, whatever profile or endpoint the user's environment names. moto's Step Functions calls its
        # service integrations (SNS, EventBridge, ...) at localhost:MOTO_PORT.
        for key in [key for key in os.environ if key.startswith("AWS_")]:
            del os.environ[key]
        os.environ.update({"AWS_ENDPOINT_URL": self.url, "MOTO_PORT": str(self.port), "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
        try:
            self._server = make_server(self.host, self.port, self._application(), threaded=True,
                                       request_handler=_RequestHandler)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUseError(f"port {self.port} on {self.host} is already in use") from None
            raise
        self._server.shadow_runtime = self.runtime  # type: ignore[attr-defined] # _RequestHandler's InvokeEndpoint
        for double in self._doubles:
            double.install()
        # What moto, botocore and the doubles loaded lives as long as the process: out of the garbage collector's
        # way (its full collections walked all of it: ~0.6 s of CPU over a demo's traffic, and ~1.3 s at exit).
        gc.freeze()
        # serve_forever checks for shutdown() between polls: every 50 ms instead of werkzeug's 500 ms.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="shadow-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and take the doubles out (everything emulated is gone)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for double in reversed(self._doubles):
            double.uninstall()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # The control routes

    def _application(self):
        moto_app = DomainDispatcherApplication(create_backend_app)

        def application(environ: dict[str, Any], start_response):
            path = environ.get("PATH_INFO", "")
            if not path.startswith(CONTROL_PREFIX):
                served = self.runtime.serve_wsgi(environ)  # InvokeEndpoint: the runtime double, without moto's routing
                if served is None and self.authorization is not None:
                    served = self.authorization.authorizer.check_wsgi(environ)  # None: authorized
                if served is None:
                    return moto_app(environ, start_response)
                status, headers, data = served
                start_response(status, headers)
                return [data]
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            status, payload = self._control(environ["REQUEST_METHOD"], path[len(CONTROL_PREFIX):], body)
            data = json.dumps(payload).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]

        return application

    def _control(self, method: str, route: str, body: bytes) -> tuple[str, dict[str, Any]]:
        if method == "GET" and route == "health":
            return "200 OK", {"status": "ok"}
        if method == "GET" and route == "counts":
            counts: dict[str, dict[str, dict[str, int]]] = {}
            for (endpoint, variant, kind), number in self.runtime.counts.items():
                counts.setdefault(endpoint, {}).setdefault(variant, {})[kind] = number
            return "200 OK", {"counts": counts}
        if method == "POST" and route == "flush":
            self.runtime.flush_capture()
            return "200 OK", {"flushed": True}
        if method == "POST" and route == "clock":
            try:
                request = json.loads(body or b"{}")
                offset, rate = float(request["offset_seconds"]), request.get("rate", 1)
                self.clock.set(timedelta(seconds=offset), rate)
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                return "400 Bad Request", {"error": f"expected {{\"offset_seconds\": <number>, \"rate\": <1-10000, "
                                                    f"default 1>}}, got {body[:200]!r} ({error})"}
            return "200 OK", {"offset_seconds": offset, "rate": float(rate)}
        if route in ("authorization", "permissions") and self.authorization is None:
            return "409 Conflict", {"error": "authorization is off in this emulator (--no-authorization)"}
        if method == "GET" and route == "authorization":
            usage, denials = self.authorization.authorizer.recorded()
            return "200 OK", {"usage": [{"principal": who, "action": action, "resource": resource, "count": count}
                                        for (who, action, resource), count in sorted(usage.items())],
                              "denials": [decision.as_dict() for decision in denials]}
        if method == "POST" and route == "permissions":
            try:
                roles = json.loads(body or b"{}")["roles"]
                assert isinstance(roles, list) and all(isinstance(r, str) and ":role/" in r for r in roles)
            except (ValueError, KeyError, TypeError, AssertionError):
                return "400 Bad Request", {"error": f"expected {{\"roles\": [role ARNs]}}, got {body[:200]!r}"}
            return "200 OK", {"roles": least_privilege.report(
                roles, self.authorization.authorizer.recorded()[0], self.authorization.authorizer.granted)}
        return "404 Not Found", {"error": f"no control route {method} {CONTROL_PREFIX}{route}"}
