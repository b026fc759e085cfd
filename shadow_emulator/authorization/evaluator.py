"""The bridge to the IAM evaluator: ``@cloud-copilot/iam-simulate`` in a Node process of its own.

The emulator never decides an authorization itself. Each authorization request (principal, action,
resource, context keys) goes with the principal's identity policies and the resource's policy to
``evaluator.mjs``, which runs iam-simulate (pinned in ``package.json``, installed into the project's
``node_modules`` by ``make setup``) and answers Allowed, ExplicitlyDenied or ImplicitlyDenied with the
statements that decided. Answers are kept per simulation (the same policies and request give the same answer),
so the demo's 3,000 InvokeEndpoint calls cost one evaluation.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("evaluator.mjs")
PACKAGE = ROOT / "node_modules" / "@cloud-copilot" / "iam-simulate"


class EvaluatorUnavailable(RuntimeError):
    """Node or the pinned iam-simulate package is missing: the emulator cannot authorize, so it does not serve."""


@dataclass(frozen=True)
class Evaluation:
    """The evaluator's answer to one authorization request."""

    result: str  # Allowed | ExplicitlyDenied | ImplicitlyDenied | Error
    reason: str
    ignored_context_keys: tuple[str, ...] = ()
    identity: str | None = None  # the identity policies' own result (Allowed, ImplicitlyDenied, ExplicitlyDenied)
    resource_policy: str | None = None  # the resource policy's (Allowed, AllowedForAccount, NotApplicable, ...)

    @property
    def allowed(self) -> bool:
        return self.result == "Allowed"


class PolicyEvaluator:
    """One Node process running ``evaluator.mjs``; thread-safe, answers cached per simulation."""

    def __init__(self, node: str | None = None) -> None:
        self._node = node or shutil.which("node")
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._next = 0
        self._cache: dict[str, Evaluation] = {}
        self._wildcard: dict[tuple[str, str], bool] = {}

    def start(self) -> PolicyEvaluator:
        if self._process is not None:
            return self
        if not self._node:
            raise EvaluatorUnavailable("node is not on PATH: the emulator's IAM evaluator (iam-simulate) needs Node.js 20")
        if not PACKAGE.is_dir():
            raise EvaluatorUnavailable(f"{PACKAGE} is missing: run `make setup` (npm ci installs the pinned iam-simulate)")
        self._process = subprocess.Popen([self._node, str(SCRIPT)], cwd=ROOT, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=None, text=True, bufsize=1)
        threading.Thread(target=self._read, args=(self._process,), name="iam-evaluator", daemon=True).start()
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()

    def __enter__(self) -> PolicyEvaluator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            answer = json.loads(line)
            with self._lock:
                future = self._pending.pop(answer.get("id"), None)
            if future is not None:
                future.set_result(answer)
        with self._lock:  # the process ended: nobody waits forever
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(EvaluatorUnavailable("the IAM evaluator process ended"))

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        if self._process is None:
            self.start()
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self._next += 1
            message = {"id": self._next, **message}
            self._pending[self._next] = future
            assert self._process is not None and self._process.stdin is not None
            self._process.stdin.write(json.dumps(message) + "\n")
        return future.result(timeout=60)

    def evaluate(self, simulation: dict[str, Any]) -> Evaluation:
        """iam-simulate's answer to ``simulation`` (its ``Simulation`` type: request, identity and resource policies)."""
        key = json.dumps(simulation, sort_keys=True)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        answer = self._ask({"simulation": simulation})
        evaluation = Evaluation(answer["result"], answer.get("reason", ""), tuple(answer.get("ignoredContextKeys", ())),
                                answer.get("identity"), answer.get("resourcePolicy"))
        if evaluation.result != "Error":
            self._cache[key] = evaluation

        return evaluation

    def wildcard_only(self, action: str) -> bool:
        """Whether the Service Authorization Reference lists no resource type for ``action`` (``service:Name``)."""
        service, _, name = action.partition(":")
        if (service, name) not in self._wildcard:
            self._wildcard[(service, name)] = bool(self._ask({"wildcardOnly": [service, name]})["wildcardOnly"])
        return self._wildcard[(service, name)]
