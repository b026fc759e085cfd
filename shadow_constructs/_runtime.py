"""The workflow's Lambda code, ``shadow_runtime``: a top-level package, and the folder its functions deploy from.

The constructs import ``shadow_runtime`` by name like any package (it is stdlib only: no boto3 needed to synthesize)
and render some configs with the very functions the workflow runs (e.g. the PROMOTED phase uses
``shadow_runtime.promotion.promoted_config``), so the two cannot drift apart.

The functions' asset is a folder holding ``shadow_runtime/`` and its modules only (``runtime_asset_dir``): staged
from the package wherever it is installed (this checkout's ``lambda/``, or site-packages), so the asset and its hash
are the same from a checkout and from the wheel.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import shadow_runtime

#: The folder of the ``shadow_runtime`` package (in a checkout: ``lambda/shadow_runtime``).
PACKAGE_DIR = Path(shadow_runtime.__file__).resolve().parent


def runtime_sources(package_dir: Path = PACKAGE_DIR) -> dict[str, bytes]:
    """The modules the functions run: ``shadow_runtime/<name>.py`` -> content."""
    return {f"shadow_runtime/{path.name}": path.read_bytes() for path in sorted(package_dir.glob("*.py"))}


def runtime_asset_dir(package_dir: Path = PACKAGE_DIR, root: Path | None = None) -> Path:
    """A folder holding ``shadow_runtime/*.py`` exactly (no caches, no type markers): the functions' asset.

    Staged once per content under the temporary folder (or ``root``), written under another name and renamed into
    place, so concurrent synths (test workers, a CLI and an IDE) share it and never see half of it.
    """
    sources = runtime_sources(package_dir)
    if not sources:
        raise ImportError(f"shadow_runtime has no modules at {package_dir}")
    digest = hashlib.sha256(b"".join(name.encode() + b"\0" + body for name, body in sources.items())).hexdigest()[:16]
    target = (root or Path(tempfile.gettempdir())) / f"shadow-runtime-asset-{digest}"
    if not (target / "shadow_runtime" / "handlers.py").is_file():
        staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
        for name, body in sources.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(body)
        try:
            os.rename(staging, target)
        except OSError:  # another process staged it first: the same content
            if not (target / "shadow_runtime" / "handlers.py").is_file():
                raise
    return target
