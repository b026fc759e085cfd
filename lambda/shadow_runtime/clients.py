"""boto3 clients, created once per Lambda container and reused across invocations, as AWS recommends.

A client is kept per service and per AWS environment (region, endpoint URLs, credentials: every ``AWS_*``
variable), so whatever points the code elsewhere (a test's moto, the emulator's ``AWS_ENDPOINT_URL``) still gets
a client for it. Creating a client costs tens of milliseconds of CPU (loading and wiring its service model); a
promotion workflow's look calls the handlers a dozen times.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

import boto3

_LOCK = threading.Lock()  # boto3's default session is not safe to create clients from concurrently


def client(service: str) -> Any:
    """A client of ``service`` for the current environment (region from AWS_REGION, else AWS_DEFAULT_REGION)."""
    environment = tuple(sorted((name, value) for name, value in os.environ.items() if name.startswith("AWS_")))
    return _cached(service, environment)


@functools.lru_cache(maxsize=32)
def _cached(service: str, environment: tuple[tuple[str, str], ...]) -> Any:
    settings = dict(environment)
    with _LOCK:
        return boto3.client(service, region_name=settings.get("AWS_REGION") or settings.get("AWS_DEFAULT_REGION"))
