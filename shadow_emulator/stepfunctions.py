"""Test doubles for two moto gaps in Step Functions: CloudFormation's state machines, and Wait states.

With ``execute_state_machine`` on, moto's Step Functions API uses its ASL-interpreting backend,
but its CloudFormation support still creates state machines in the plain backend: a stack deploys
(CREATE_COMPLETE, an ARN) yet ListStateMachines / StartExecution do not see the machine, and a
stack update that changes its definition fails. While installed, ``StepFunctionsDouble`` creates,
updates and deletes them in whichever backend the API uses.

moto's interpreter really sleeps in a Wait state, by this machine's clock. While installed,
``WaitStateDouble`` makes Wait states follow the emulator's clock (``EmulatorClock``, whose offset
``POST /_shadow_emulator/clock`` sets): a ``Timestamp`` / ``TimestampPath`` wait ends once the
emulated now reaches the timestamp (UTC), a ``Seconds`` / ``SecondsPath`` wait once the emulated
clock has moved that many seconds since the state was entered (real time elapsed plus any change
of the offset; a clock running at a rate of R makes it R times shorter). The wait looks at the
clock five times a second, so moving the offset forward ends a wait that is already waiting;
StopExecution still interrupts it at once.

moto parses a definition with its ANTLR grammar (pure Python: about a second for the promotion workflow's) when
a state machine is created or updated and again when each execution starts. While installed,
``DefinitionParseCache`` keeps the parse tree of each definition text it has seen and only builds the execution's
components from it anew (moto's own preprocessing, 0.1 s): executions behave exactly as before. A definition
parsed before is not checked again when a state machine is created or updated with it. The JSONPath expressions
the states evaluate (``jsonpath_ng``'s parser, run anew for every path of every state moto's interpreter enters)
are kept too, per path text: a parsed path is not changed by evaluating it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.stepfunctions import models as sfn_models
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import get_backend
from moto.stepfunctions.utils import cfn_to_api_tags

from .clock import EmulatorClock

LOG = logging.getLogger(__name__)


class StepFunctionsDouble:
    def __init__(self) -> None:
        self._saved: dict[str, Any] = {}

    def install(self) -> StepFunctionsDouble:
        machine = sfn_models.StateMachine
        self._saved = {"create": machine.__dict__["create_from_cloudformation_json"],
                       "update": machine.__dict__["update_from_cloudformation_json"],
                       "delete": machine.__dict__["delete_from_cloudformation_json"]}

        def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            properties = cloudformation_json["Properties"]
            tags = cfn_to_api_tags(properties.get("Tags", []))
            return get_backend(account_id, region_name).create_state_machine(
                properties.get("StateMachineName", resource_name), properties.get("DefinitionString", ""),
                properties.get("RoleArn", ""), tags=tags)

        def update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
            properties = cloudformation_json.get("Properties", {})
            if properties.get("StateMachineName", original_resource.name) != original_resource.name:  # replacement
                new = create(cls, properties["StateMachineName"], cloudformation_json, account_id, region_name)
                delete(cls, original_resource.arn, cloudformation_json, account_id, region_name)
                return new
            backend = get_backend(account_id, region_name)
            updated = backend.update_state_machine(original_resource.arn, definition=properties.get("DefinitionString"),
                                                   role_arn=properties.get("RoleArn"))
            backend.tagger.tag_resource(updated.arn, cfn_to_api_tags(properties.get("Tags", [])))
            return updated

        def delete(cls, resource_name, cloudformation_json, account_id, region_name):
            get_backend(account_id, region_name).delete_state_machine(resource_name)

        machine.create_from_cloudformation_json = classmethod(create)
        machine.update_from_cloudformation_json = classmethod(update)
        machine.delete_from_cloudformation_json = classmethod(delete)
        return self

    def uninstall(self) -> None:
        if self._saved:
            sfn_models.StateMachine.create_from_cloudformation_json = self._saved.pop("create")
            sfn_models.StateMachine.update_from_cloudformation_json = self._saved.pop("update")
            sfn_models.StateMachine.delete_from_cloudformation_json = self._saved.pop("delete")

    def __enter__(self) -> StepFunctionsDouble:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


class _ForwardedTime:
    """The ``time`` module as moto's retrier sees it: a back-off lasts ``seconds`` on the emulator's clock (at its
    rate), or, in fast-forward mode, moves the clock instead."""

    def __init__(self, double: WaitStateDouble) -> None:
        self._double = double

    def sleep(self, seconds: float) -> None:
        import time

        if self._double.fast_forward:
            self._double.advance(seconds)
            return
        clock = self._double.clock
        until = clock.now() + timedelta(seconds=seconds)
        while (remaining := (until - clock.now()).total_seconds()) > 0:
            time.sleep(min(remaining / clock.rate, self._double.poll_seconds))

    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)


class WaitStateDouble:
    """Wait states that end by the emulator's clock (see the module's docstring).

    :param clock: the clock to follow (the server's, shared with the runtime double). Default: a clock of its own.
    :param poll_seconds: how often a waiting state looks at the clock. Default: 0.2 s.
    :param fast_forward: instead of waiting, move the clock forward to the end of every wait and of every
        retry's back-off: executions run as if the time had passed, at once. (Otherwise a back-off, like a wait,
        lasts its seconds on the emulator's clock: moto's retrier would sleep them for real.)
        For in-process tests of a state machine's logic; the emulator's server does not. Default: False.
    """

    def __init__(self, clock: EmulatorClock | None = None, poll_seconds: float = 0.2, fast_forward: bool = False) -> None:
        self.clock = clock or EmulatorClock()
        self.poll_seconds = poll_seconds
        self.fast_forward = fast_forward
        self._original: Any = None
        self._original_time: Any = None

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (fast-forward mode: a wait or a back-off that took no time)."""
        self.clock.offset = self.clock.offset + timedelta(seconds=max(0.0, seconds))

    def deadline(self, function: WaitFunction, env: Any) -> datetime:
        """When (emulated, UTC) the Wait state entered now ends; the state's errors are moto's."""
        if isinstance(function, Timestamp):  # and TimestampPath: a UTC time, ISO 8601 with a Z
            function.string.eval(env=env)
            text = env.stack.pop()
            moment = function._from_timestamp_string(timestamp=text)
            if moment is None:
                raise FailureEventException(function._create_failure_event(env, text))
            return moment.replace(tzinfo=UTC)
        # Seconds, SecondsPath, SecondsJSONata: counted on the emulated clock from now.
        return self.clock.now() + timedelta(seconds=function._get_wait_seconds(env=env))

    def wait_until(self, env: Any, until: datetime) -> None:
        """Wait until the clock reaches ``until`` or the execution stops (ends, fails, is stopped)."""
        if self.fast_forward:
            self.advance((until - self.clock.now()).total_seconds())
            return
        while env.is_running():
            remaining = (until - self.clock.now()).total_seconds()
            if remaining <= 0:
                return
            # moto pulses program_state_event when the execution stops: that wakes the wait at once.
            env.program_state_event.wait(min(remaining / self.clock.rate, self.poll_seconds))
        LOG.info("Wait state interrupted: the execution is no longer running")

    def install(self) -> WaitStateDouble:
        self._original = WaitFunction.__dict__["_eval_body"]
        double = self

        def _eval_body(function: WaitFunction, env: Any) -> None:
            double.wait_until(env, double.deadline(function, env))

        WaitFunction._eval_body = _eval_body
        self._original_time = retrier_decl.time
        retrier_decl.time = _ForwardedTime(self)
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            WaitFunction._eval_body = self._original
            self._original = None
        if self._original_time is not None:
            retrier_decl.time = self._original_time
            self._original_time = None

    def __enter__(self) -> WaitStateDouble:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


class DefinitionParseCache:
    """moto's parse of a state machine definition, done once per definition text (see the module's docstring).

    The ANTLR parse tree depends on the text alone and nothing changes it; the components an execution evaluates
    (and that keep its state) are built from the tree by a new ``Preprocessor`` on every call, as moto does. A text
    that does not parse is not kept: moto's error is raised again each time.

    :param size: how many definitions are kept, the least recently used dropped first. Default: 32.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self.hits = 0
        """Parses served from a kept tree."""
        self.parses = 0
        """Parses moto made (definitions not seen before, and definitions that do not parse)."""
        self._trees: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._original: Any = None
        self._original_validate: Any = None
        self._original_paths: Any = None

    def parse(self, definition: str) -> tuple[Any, Any]:
        with self._lock:
            tree = self._trees.get(definition)
            if tree is not None:
                self._trees.move_to_end(definition)
                self.hits += 1
        if tree is None:
            self.parses += 1
            program, tree = self._original(definition)
            with self._lock:
                self._trees[definition] = tree
                while len(self._trees) > self.size:
                    self._trees.popitem(last=False)
            return program, tree
        return Preprocessor().visit(tree), tree

    def validate(self, definition: str) -> None:
        """moto's check of a definition on create and update: a text whose tree is kept has parsed before."""
        with self._lock:
            known = definition in self._trees
        if not known:
            self._original_validate(definition)

    def install(self) -> DefinitionParseCache:
        self._original = AmazonStateLanguageParser.__dict__["parse"].__func__
        self._original_validate = StepFunctionsParserBackend.__dict__["_validate_definition"].__func__
        self._original_paths = (json_path.parse, result_path.parse)
        AmazonStateLanguageParser.parse = staticmethod(self.parse)
        StepFunctionsParserBackend._validate_definition = staticmethod(self.validate)
        json_path.parse, result_path.parse = (functools.lru_cache(maxsize=4096)(parse) for parse in self._original_paths)
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            AmazonStateLanguageParser.parse = staticmethod(self._original)
            StepFunctionsParserBackend._validate_definition = staticmethod(self._original_validate)
            json_path.parse, result_path.parse = self._original_paths
            self._original = self._original_validate = self._original_paths = None

    def __enter__(self) -> DefinitionParseCache:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()
