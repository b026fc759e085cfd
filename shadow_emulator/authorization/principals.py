"""Who makes a request: the principal behind its access key, and the credentials the emulator's own runners use.

On AWS every request is signed with a principal's credentials: a Lambda function's code with its execution
role's session (Lambda puts them in ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``), a
state machine's tasks with its role's, a user with their own. In the emulator:

- ``resolve(access_key_id)`` finds the principal of a key: a role session the emulated STS issued
  (``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``), an IAM user's key (``arn:aws:iam::ACCOUNT:user/NAME``), or
  any other key: the emulator's default caller, an administrator (``ADMINISTRATOR``, the key ``testing`` of the
  demo and the tests);
- ``RoleSessions.credentials(role_arn, service)`` assumes a role as a service would (``lambda.amazonaws.com``,
  ``states.amazonaws.com``, ``sagemaker.amazonaws.com``): only if the role's trust policy lets that service
  assume it, decided by the evaluator like any other request; ``RoleSessions.check`` makes the same decision
  without a session (the check a service makes when it is given the role);
- ``acting_as(credentials)`` makes every boto3 client of this thread sign with those credentials while it
  lasts (the Lambda double runs a handler so, the Step Functions double an execution's tasks).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DEFAULT_ACCOUNT = "123456789012"
PARTITION = "aws"

#: AdministratorAccess, the identity policy of the emulator's default caller.
ADMINISTRATOR_POLICY = {"Version": "2012-10-17", "Statement": [{"Sid": "AdministratorAccess", "Effect": "Allow",
                                                                 "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class Principal:
    """The principal a request is made as.

    :param arn: as AWS names it in an AccessDenied message (a role session's ``sts`` ARN, a user's ``iam`` ARN).
    :param kind: ``role``, ``user`` or ``administrator`` (the emulator's default caller).
    :param name: the role's or user's name.
    :param account: its account.
    """

    arn: str
    kind: str
    name: str
    account: str = DEFAULT_ACCOUNT

    @property
    def role_arn(self) -> str | None:
        return f"arn:{PARTITION}:iam::{self.account}:role/{self.name}" if self.kind == "role" else None


ADMINISTRATOR = Principal(f"arn:{PARTITION}:iam::{DEFAULT_ACCOUNT}:user/emulator-administrator", "administrator",
                          "emulator-administrator")


def resolve(access_key_id: str | None) -> Principal:
    """The principal whose credentials carry ``access_key_id`` (the administrator for any key the emulator did not
    issue)."""
    if not access_key_id:
        return ADMINISTRATOR
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account, backends in list(sts_backends.items()):
        backend = backends.get(PARTITION) if hasattr(backends, "get") else None
        if backend is None:
            continue
        for session in list(backend.assumed_roles):
            if session.access_key_id == access_key_id:
                role_name = session.role_arn.split("/")[-1]
                return Principal(session.arn, "role", role_name, account)
    for account, backends in list(iam_backends.items()):
        backend = backends.get(PARTITION) if hasattr(backends, "get") else None
        if backend is None:
            continue
        key = backend.access_keys.get(access_key_id)
        if key is not None and getattr(key, "role_arn", None) is None:
            for user in list(backend.users.values()):
                if any(k.access_key_id == access_key_id for k in user.access_keys):
                    return Principal(user.arn, "user", user.name, account)
    return ADMINISTRATOR


@dataclass(frozen=True)
class RoleCredentials:
    role_arn: str
    access_key_id: str
    secret_access_key: str
    session_token: str


class RoleSessions:
    """Role sessions the emulator's services start for themselves, one per role and service, from the emulated STS.

    :param check_trust: called as ``check_trust(role_arn, service_principal)``; raises if the role's trust policy
        does not let the service assume it.
    """

    def __init__(self, check_trust: Any = None) -> None:
        self._sessions: dict[tuple[str, str, str | None], RoleCredentials] = {}
        self._lock = threading.Lock()
        self._check_trust = check_trust

    def credentials(self, role_arn: str, service: str, source_arn: str | None = None) -> RoleCredentials:
        """Credentials of a session of ``role_arn`` started by ``service`` (``lambda.amazonaws.com``, ...) for the
        resource ``source_arn`` (a state machine: AWS then sets aws:SourceArn and aws:SourceAccount, which CDK's
        trust policies require against the confused deputy)."""
        with self._lock:
            found = self._sessions.get((role_arn, service, source_arn))
            if found is not None:
                return found
        if self._check_trust is not None:
            self._check_trust(role_arn, service, source_arn)
        from moto.sts.models import sts_backends

        account = role_arn.split(":")[4] or DEFAULT_ACCOUNT
        session_name = service.split(".")[0]
        session = sts_backends[account][PARTITION].assume_role(
            region_name="us-east-1", role_session_name=session_name, role_arn=role_arn, policy="", duration=43200,
            external_id="")
        credentials = RoleCredentials(role_arn, session.access_key_id, session.secret_access_key, session.session_token)
        with self._lock:
            self._sessions[(role_arn, service, source_arn)] = credentials
        return credentials

    def check(self, role_arn: str, service: str, source_arn: str | None = None) -> None:
        """Raises ``AccessDenied`` unless ``role_arn``'s trust policy lets ``service`` assume it for ``source_arn``,
        as the service checks when a role is passed to it (CreateStateMachine, CreateFunction); starts no session."""
        if self._check_trust is not None:
            self._check_trust(role_arn, service, source_arn)

    def forget(self) -> None:
        with self._lock:
            self._sessions.clear()


_CURRENT = threading.local()


def current_credentials() -> RoleCredentials | None:
    """The credentials this thread signs with, if a runner set them (``acting_as``)."""
    return getattr(_CURRENT, "credentials", None)


@contextlib.contextmanager
def acting_as(credentials: RoleCredentials | None) -> Iterator[None]:
    """While it lasts, every boto3 client of this thread signs its requests with ``credentials``."""
    saved = current_credentials()
    _CURRENT.credentials = credentials
    try:
        yield
    finally:
        _CURRENT.credentials = saved


class ThreadSigning:
    """Makes botocore sign with the thread's ``acting_as`` credentials, whatever the client was created with (the
    Lambda handlers' cached clients, moto's Step Functions clients with their fixed ``ak`` key)."""

    def __init__(self) -> None:
        self._original: Any = None
        self._start: Any = None

    def install(self) -> ThreadSigning:
        from botocore.credentials import Credentials
        from botocore.signers import RequestSigner

        if self._original is not None:
            return self
        original = self._original = RequestSigner.get_auth_instance
        start = self._start = threading.Thread.start

        def start_acting(thread: threading.Thread) -> None:
            # A thread started while acting as a principal acts as it too (moto runs an execution's program, and each
            # Parallel branch or Map iteration, in threads of its own).
            acting = current_credentials()
            if acting is not None:
                run = thread.run

                def run_acting() -> None:
                    with acting_as(acting):
                        run()

                thread.run = run_acting  # type: ignore[method-assign]
            start(thread)

        threading.Thread.start = start_acting  # type: ignore[method-assign]

        def get_auth_instance(signer: Any, signing_name: str, region_name: str, signature_version: Any = None,
                              request_credentials: Any = None, **kwargs: Any) -> Any:
            acting = current_credentials()
            if acting is not None and request_credentials is None:
                request_credentials = Credentials(acting.access_key_id, acting.secret_access_key, acting.session_token)
            return original(signer, signing_name, region_name, signature_version, request_credentials, **kwargs)

        RequestSigner.get_auth_instance = get_auth_instance  # type: ignore[method-assign]
        RequestSigner.get_auth = get_auth_instance  # type: ignore[method-assign]
        return self

    def uninstall(self) -> None:
        from botocore.signers import RequestSigner

        if self._original is not None:
            RequestSigner.get_auth_instance = self._original  # type: ignore[method-assign]
            RequestSigner.get_auth = self._original  # type: ignore[method-assign]
            threading.Thread.start = self._start  # type: ignore[method-assign]
            self._original = self._start = None
