"""Where captured records are: local folders in SageMaker's key layout, or an s3:// prefix copied down."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# <anything>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl — SageMaker's data-capture key layout.
CAPTURE_PATH = re.compile(
    r"(?:^|/)(?P<endpoint>[^/]+)/(?P<variant>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/[^/]+\.jsonl$")


class ReportError(ValueError):
    """Bad input for a report: the message is one line, naming the option or path and the value given."""


@dataclass(frozen=True)
class CaptureFile:
    """One capture file and what its key says: endpoint, variant and the hour it was written in."""

    path: str
    endpoint: str
    variant: str
    hour: datetime
    size: int


def parse_capture_path(path: str) -> tuple[str, str, datetime] | None:
    """``(endpoint, variant, hour)`` of a path in SageMaker's capture layout, or None if it is not one."""
    match = CAPTURE_PATH.search(path.replace(os.sep, "/"))
    if not match:
        return None
    try:
        hour = datetime(int(match["y"]), int(match["m"]), int(match["d"]), int(match["h"]), tzinfo=UTC)
    except ValueError:
        return None
    return match["endpoint"], match["variant"], hour


def discover(folder: str | os.PathLike) -> tuple[list[CaptureFile], int]:
    """Every capture file under ``folder`` (recursive), sorted by path, and how many other files were skipped.

    The endpoint and variant are read from the absolute path, so the folder may be the capture prefix,
    an endpoint's folder or a variant's folder.
    """
    root = Path(folder)
    if not root.exists():
        raise ReportError(f"source {str(folder)!r} does not exist")
    if not root.is_dir():
        raise ReportError(f"source {str(folder)!r} is not a folder")
    found, skipped = [], 0
    for directory, _, names in os.walk(root.resolve()):
        for name in names:
            path = os.path.join(directory, name)
            parsed = parse_capture_path(path)
            if parsed is None:
                skipped += 1
                continue
            found.append(CaptureFile(path, *parsed, size=os.path.getsize(path)))
    found.sort(key=lambda f: f.path)
    return found, skipped


def download_s3(uri: str, target: str | os.PathLike, *, client=None, progress=None) -> str:
    """Copy every ``.jsonl`` object under an ``s3://bucket/prefix`` URI into ``target``, keeping the keys.

    Objects are streamed to disk one by one (never held in memory). The client honours
    ``AWS_ENDPOINT_URL`` (boto3 reads it), so a local emulator works. Returns the local folder
    that mirrors the prefix. Nothing in the bucket is modified.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if not match or not match[1]:
        raise ReportError(f"source {uri!r} is not an s3://bucket/prefix URI")
    bucket, prefix = match[1], match[2]
    client = client or boto3.client("s3")
    local_root = (Path(target) / bucket).resolve()
    local_root.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                destination = (local_root / key).resolve()
                # Not a capture file, or a key with '..' that would land outside the scratch folder: not copied.
                if not key.endswith(".jsonl") or not destination.is_relative_to(local_root):
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, key, str(destination))
                count += 1
                if progress:
                    progress(count, key)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise ReportError(f"cannot read source {uri!r}: {code}") from None
    except BotoCoreError as error:
        raise ReportError(f"cannot read source {uri!r}: {error}") from None
    return str(local_root / prefix) if prefix and (local_root / prefix).is_dir() else str(local_root)


def temporary_folder() -> tempfile.TemporaryDirectory:
    """A scratch folder for downloads and DuckDB's spill files, removed afterwards."""
    return tempfile.TemporaryDirectory(prefix="shadow-report-")
