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


def runtime_module(name: str) -> ModuleType:
    """A stdlib-only module of ``shadow_runtime`` (e.g. ``promotion``), from wherever the asset lies."""
    qualified = f"shadow_constructs._lambda.shadow_runtime.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    path = RUNTIME_DIR / "shadow_runtime" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"shadow_runtime.{name} not found at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module
