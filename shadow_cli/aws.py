"""AWS access for ``shadow-test``: one session, clients, and every AWS failure turned into one line.

Nothing here knows of the local emulator: boto3 honours ``AWS_ENDPOINT_URL`` (and the per-service
``AWS_ENDPOINT_URL_<SERVICE>``) by itself, so the same code reaches AWS or any stand-in.
"""

from __future__ import annotations

import re
from typing import Any

# Exit codes (documented in shadow_test's docstring and --help).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_INCONCLUSIVE = 4
EXIT_AWS = 5
EXIT_INTERRUPTED = 130

#: Error codes meaning "these credentials may not do this" (or are not valid at all).
AUTH_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException",
    "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "IncompleteSignature",
    "ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId", "AuthFailure", "MissingAuthenticationToken",
    "InvalidToken", "RequestExpired",
})


class CliError(Exception):
    """A failure the command reports in one line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message, self.code = one_line(message), code


def one_line(text: Any, limit: int = 600) -> str:
    """``text`` with every run of whitespace (newlines too) made one space, at most ``limit`` characters."""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "")) or str(error)


def aws_failure(error: Exception, region: str | None = None) -> CliError:
    """The one-line CliError for any botocore failure that nothing more specific handled."""
    from botocore import exceptions as bce

    where = f" in {region}" if region else ""
    if isinstance(error, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        return CliError(f"no usable AWS credentials ({error}): configure a profile (AWS_PROFILE), "
                        f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a role", EXIT_AWS)
    if isinstance(error, bce.NoRegionError):
        return CliError("no AWS region: pass --region or set AWS_REGION", EXIT_USAGE)
    if isinstance(error, (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ReadTimeoutError,
                          bce.ConnectionClosedError, bce.ProxyConnectionError, bce.SSLError)):
        return CliError(f"could not reach AWS{where}: {error}", EXIT_AWS)
    if isinstance(error, bce.ParamValidationError):
        return CliError(f"invalid request: {error}", EXIT_USAGE)
    if isinstance(error, bce.ClientError):
        operation = getattr(error, "operation_name", "") or "a call"
        code, message = error_code(error), error_message(error)
        if code in AUTH_CODES:
            return CliError(f"AWS refused {operation}{where}: {code}: {message} (check the credentials and their "
                            f"permissions)", EXIT_AWS)
        return CliError(f"AWS answered {operation}{where} with {code or 'an error'}: {message}", EXIT_AWS)
    if isinstance(error, bce.BotoCoreError):  # credential providers (SSO, process), waiters, ...
        return CliError(f"AWS could not be used{where}: {error}", EXIT_AWS)
    raise TypeError(f"not a botocore error: {error!r}")


class Aws:
    """One boto3 session (``--region``, else AWS_REGION, else what boto3 finds: AWS_DEFAULT_REGION, the profile) and
    its clients. (boto3 itself reads AWS_DEFAULT_REGION only; AWS_REGION is what Lambda and the other SDKs set.)"""

    def __init__(self, region: str | None = None) -> None:
        import os

        import boto3.session

        region = region or os.environ.get("AWS_REGION") or None
        self.session = boto3.session.Session(region_name=region) if region else boto3.session.Session()
        self.region = self.session.region_name
        if not self.region:
            raise CliError("no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)", EXIT_USAGE)
        self._clients: dict[str, Any] = {}

    def client(self, service: str):
        if service not in self._clients:
            from botocore.config import Config

            self._clients[service] = self.session.client(
                service, config=Config(user_agent_extra="shadow-test", connect_timeout=10, read_timeout=70))
        return self._clients[service]


def name_from_arn(value: str, resource: str) -> str:
    """``arn:...:<resource>/<name>`` → ``<name>``; anything else is returned as it is."""
    if value.startswith("arn:") and f":{resource}/" in value:
        return value.split(f":{resource}/", 1)[1]
    return value


def same_name(a: str | None, b: str | None) -> bool:
    """SageMaker names compared as its ARNs do: case-insensitively."""
    return a is not None and b is not None and a.lower() == b.lower()


def parse_s3_uri(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[5:].partition("/")
    return (bucket, key) if bucket and key else None
