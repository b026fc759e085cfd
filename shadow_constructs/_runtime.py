"""The workflow's Lambda code (``shadow_runtime``): where it lies, and its pure modules for the constructs.

The constructs render some configs with the very functions the workflow runs (e.g. the PROMOTED
phase uses ``shadow_runtime.promotion.promoted_config``), so the two cannot drift apart.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def runtime_dir(package_dir: Path = Path(__file__).resolve().parent) -> Path:
    """The folder holding ``shadow_runtime/`` (the Lambda functions' asset): the project's ``lambda/`` in a
    checkout, the copy packaged as ``shadow_constructs/_lambda`` in an installed distribution."""
    checkout = package_dir.parent / "lambda"
    return checkout if (checkout / "shadow_runtime" / "handlers.py").is_file() else package_dir / "_lambda"


RUNTIME_DIR = runtime_dir()


PACKAGE = "shadow_constructs._lambda.shadow_runtime"


def runtime_module(name: str) -> ModuleType:
    """A module of ``shadow_runtime`` (e.g. ``promotion``, ``verdict``), from wherever the asset lies.

    Installed, the asset is the package ``shadow_constructs._lambda.shadow_runtime``; in a checkout the
    project's ``lambda/shadow_runtime`` is loaded under that same name, so its relative imports work
    and every construct sees one copy. Only stdlib modules are imported this way (boto3 is not needed).
    """
    if PACKAGE not in sys.modules:
        try:
            importlib.import_module(PACKAGE)
        except ModuleNotFoundError:
            init = RUNTIME_DIR / "shadow_runtime" / "__init__.py"
            spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[str(init.parent)])
            if spec is None or spec.loader is None:
                raise ImportError(f"shadow_runtime not found at {init.parent}") from None
            package = importlib.util.module_from_spec(spec)
            sys.modules[PACKAGE] = package
            spec.loader.exec_module(package)
    return importlib.import_module(f"{PACKAGE}.{name}")
