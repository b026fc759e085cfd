"""From an HTTP request to the call it makes: service, operation, parameters and the signer's access key.

The service comes from the SigV4 credential scope (its signing name), the operation and its parameters from
botocore's service model, read by moto's own router and request parsers (the names are botocore's: ``UpdateEndpoint``,
``EndpointConfigName``). The request's body is read once and put back, so moto serves it as before.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass, field
from typing import Any

#: SigV4 signing names that are not the botocore service name (several services share ``sagemaker``).
_SIGNING_SERVICES: dict[str, tuple[str, ...]] = {
    "monitoring": ("cloudwatch",),
    "states": ("stepfunctions",),
    "sagemaker": ("sagemaker", "sagemaker-runtime"),
    "execute-api": (),
}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


@dataclass
class Call:
    """One request to an AWS API, as the emulator received it.

    :param service: botocore's service name (``sagemaker``, ``s3``, ``cloudwatch``, ...).
    :param operation: botocore's operation name (``UpdateEndpoint``).
    :param params: the request's parameters, by botocore's member names.
    :param access_key_id: the signer's access key (None: unsigned).
    :param region: the region of the credential scope.
    :param headers: the request's headers (S3's encryption headers are read from them).
    """

    service: str
    operation: str
    params: dict[str, Any]
    access_key_id: str | None
    region: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"


def read_body(environ: dict[str, Any]) -> bytes:
    """The request's body, read once; ``wsgi.input`` is replaced so the application reads the same bytes."""
    if "shadow_emulator.body" in environ:
        return environ["shadow_emulator.body"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["shadow_emulator.body"] = body
    return body


def credential_scope(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """(access key, region, signing name) of a SigV4-signed request (header or presigned URL), else None."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    match = _CREDENTIAL.search(authorization)
    if match is None and "X-Amz-Credential" in environ.get("QUERY_STRING", ""):
        from urllib.parse import parse_qs

        credential = parse_qs(environ["QUERY_STRING"]).get("X-Amz-Credential", [""])[0]
        match = _CREDENTIAL.search(f"Credential={credential}")
    if match is None:
        return None
    return match.group(1), match.group(3), match.group(4)


@functools.cache
def _services_by_signing_name() -> dict[str, tuple[str, ...]]:
    import botocore.session

    session = botocore.session.get_session()
    names: dict[str, list[str]] = {}
    for service in session.get_available_services():
        model = session.get_service_model(service)
        names.setdefault(model.signing_name, []).append(service)
    return {name: tuple(services) for name, services in names.items()}


def _candidates(signing_name: str) -> tuple[str, ...]:
    if signing_name in _SIGNING_SERVICES:
        return _SIGNING_SERVICES[signing_name]
    return _services_by_signing_name().get(signing_name, (signing_name,))


def parse(environ: dict[str, Any]) -> Call | None:
    """The call a signed request makes; None for an unsigned request. Raises ``UnknownCall`` if no operation of the
    signing service matches it."""
    scope = credential_scope(environ)
    if scope is None:
        return None
    access_key, region, signing_name = scope
    # S3's parameters are in its URI and headers: its bodies (uploads, possibly chunked) are left to moto unread.
    body = b"" if signing_name == "s3" else read_body(environ)
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.request import Request, determine_request_protocol
    from moto.core.routing import get_service_router
    from moto.core.utils import get_service_model

    request = Request(dict(environ, **{"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}))
    request.from_wsgi_server = True
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    for service in _candidates(signing_name):
        model = get_service_model(service)
        prefix = model.metadata.get("targetPrefix")
        if target and prefix and not target.startswith(f"{prefix}."):
            continue
        try:
            operation, uri_params = get_service_router(service).match(request)
        except Exception:  # noqa: BLE001 - werkzeug's NotFound / MethodNotAllowed, or a protocol the service lacks
            continue
        protocol = determine_request_protocol(model, request.content_type)
        params: dict[str, Any] = {}
        try:
            parser = PROTOCOL_PARSERS[protocol](operation, map_type=dict)
            params = dict(parser.parse({"method": request.method, "values": request.values,
                                        "headers": request.headers, "body": body, "url_path": request.path,
                                        "url_params": uri_params}))
        except Exception:  # noqa: BLE001 - an S3 streaming body moto's parser cannot read: the URI's labels suffice
            params = {}
        for label, value in uri_params.items():
            params.setdefault(label, value)
        return Call(service, str(operation.name), params, access_key, region,
                    {key: value for key, value in request.headers.items()})
    raise UnknownCall(f"no operation of {signing_name} ({', '.join(_candidates(signing_name)) or 'none'}) matches "
                      f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} (target {target or 'none'})")


class UnknownCall(Exception):
    """A signed request the emulator cannot name: it is refused rather than served unchecked."""
