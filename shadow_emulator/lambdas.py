"""A test double that runs the workflow's Lambda functions in-process with their real code.

moto without Docker answers every Invoke with a canned payload. While installed,
``LambdaDouble`` runs a function whose handler is ``shadow_runtime.<module>.<function>`` by
importing it from the project's ``lambda/`` folder and calling it with the event, in this
process (so it talks to the same moto backends). An exception becomes a function error, as on
AWS: ``FunctionError: Unhandled`` and ``{"errorType", "errorMessage"}``. Other functions keep
moto's behaviour. Tests may let more handlers run in-process (``handler_prefixes``; for
``python -m shadow_emulator``, the environment variable ``SHADOW_EMULATOR_LAMBDA_HANDLERS``, module
prefixes separated by commas): their modules must be importable (``PYTHONPATH``).

moto's Step Functions interpreter makes a new boto3 Lambda client for every Lambda task it runs (tens of
milliseconds of CPU each, a dozen tasks a look); while installed, the double gives it one client per region
and per endpoint, made the way moto makes it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.models import botocore_stubber
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "lambda"
#: Handlers run in-process with their real code: the project's Lambda package.
RUNTIME_PREFIXES = ("shadow_runtime.",)


#: The log stream of the emulator's one execution environment per function (Lambda's are ``yyyy/mm/dd/[$LATEST]id``).
LOG_STREAM = "2026/12/01/[$LATEST]emulator"


class LambdaDouble:
    """Patches both of moto's Lambda paths: the Docker one (per function) and ``use_docker: False``.

    :param handler_prefixes: prefixes of the handlers (``module.function``) run in-process. Default:
        ``shadow_runtime.`` only.
    """

    def __init__(self, handler_prefixes: tuple[str, ...] = RUNTIME_PREFIXES, sessions: Any = None,
                 authorizer: Any = None) -> None:
        self._originals: dict[str, Any] = {}
        self.handler_prefixes = tuple(handler_prefixes)
        self.invocations: list[tuple[str, Any]] = []
        #: With the emulator's authorization: role sessions (``RoleSessions``); a handler then runs with its
        #: function's execution role's credentials, as Lambda runs it. Default: none (the process's credentials).
        self.sessions = sessions if sessions is not None or authorizer is None else authorizer.sessions
        #: With the emulator's authorization: Lambda writes each invocation's logs as the execution role.
        self.authorizer = authorizer

    def runs(self, handler: str) -> bool:
        """Whether this double runs ``handler`` in-process."""
        return bool(handler) and handler.startswith(self.handler_prefixes)

    def _run(self, handler: str, body: Any, response_headers: Any, role: str | None = None,
             function: Any = None) -> bytes:
        module_name, _, name = handler.rpartition(".")
        event = json.loads(body) if body else {}
        self.invocations.append((handler, event))
        if self.authorizer is not None and role and function is not None:
            self._write_logs(function, role)
        try:
            if self.sessions is not None and role:
                from .authorization.principals import acting_as

                with acting_as(self.sessions.credentials(role, "lambda.amazonaws.com")):
                    return json.dumps(getattr(importlib.import_module(module_name), name)(event, None)).encode()
            return json.dumps(getattr(importlib.import_module(module_name), name)(event, None)).encode()
        except Exception as error:  # noqa: BLE001 - every failure becomes a function error, as on AWS
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error),
                               "stackTrace": traceback.format_exc().splitlines()[-5:]}).encode()

    def _write_logs(self, function: Any, role: str) -> None:
        """Lambda sends the invocation's logs to the function's log group (LoggingConfig, else /aws/lambda/NAME) as
        its execution role; refused, the logs are lost and the function still runs (the refusal is recorded)."""
        from .authorization import AccessDenied

        arn = getattr(function, "function_arn", "") or ""
        region, account = (arn.split(":")[3], arn.split(":")[4]) if arn.count(":") >= 6 else ("us-east-1", "123456789012")
        group = getattr(function, "emulator_log_group", None) or f"/aws/lambda/{function.function_name}"
        with contextlib.suppress(AccessDenied):
            self.authorizer.act("function-logs", role, {"function_log_stream": f"arn:aws:logs:{region}:{account}:log-group:"
                                                        f"{group}:log-stream:{LOG_STREAM}"}, region)

    def install(self) -> LambdaDouble:
        if str(RUNTIME_DIR) not in sys.path:
            sys.path.insert(0, str(RUNTIME_DIR))
        function_invoke = self._originals["function"] = LambdaFunction.invoke
        simple_invoke = self._originals["simple"] = LambdaSimpleBackend.invoke
        double = self

        def invoke_function(function: LambdaFunction, body: Any, request_headers: Any, response_headers: Any):
            handler = getattr(function, "handler", "") or ""
            if double.runs(handler):
                return double._run(handler, body, response_headers, getattr(function, "role", None), function)
            return function_invoke(function, body, request_headers, response_headers)

        def invoke_simple(backend: LambdaSimpleBackend, function_name: str, qualifier: Any, body: Any, headers: Any,
                          response_headers: Any):
            function = backend.get_function(function_name, qualifier)
            handler = getattr(function, "handler", "") or ""
            if double.runs(handler):
                return double._run(handler, body, response_headers, getattr(function, "role", None), function)
            return simple_invoke(backend, function_name, qualifier, body, headers, response_headers)

        make_client = self._originals["client"] = lambda_eval_utils.boto_client_for
        clients: dict[tuple, Any] = {}
        lock = threading.Lock()

        def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            # moto's client ignores the state's credentials; where it points depends on these alone.
            key = (region, service, botocore_stubber.enabled, moto_server_port())
            with lock:
                if key not in clients:
                    clients[key] = make_client(region, service, state_credentials)
                return clients[key]

        LambdaFunction.invoke = invoke_function
        LambdaSimpleBackend.invoke = invoke_simple
        lambda_eval_utils.boto_client_for = boto_client_for
        return self

    def uninstall(self) -> None:
        if self._originals:
            LambdaFunction.invoke = self._originals.pop("function")
            LambdaSimpleBackend.invoke = self._originals.pop("simple")
            lambda_eval_utils.boto_client_for = self._originals.pop("client")

    def __enter__(self) -> LambdaDouble:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()
