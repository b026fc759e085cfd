"""The workflow runtime's look schedule (``shadow_runtime.looks``) for the command-line tools.

Loaded from its file, not through ``shadow_constructs`` (whose import loads aws-cdk-lib: seconds a CLI should not
spend): the project's ``lambda/`` in a checkout, the copy packaged as ``shadow_constructs/_lambda`` when installed.
It is stdlib only, so the state names and the schedule are the workflow's own.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _looks_file() -> Path:
    checkout = Path(__file__).resolve().parent.parent / "lambda" / "shadow_runtime" / "looks.py"
    if checkout.is_file():
        return checkout
    spec = importlib.util.find_spec("shadow_constructs")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("shadow_constructs is not installed: the workflow runtime cannot be found")
    return Path(next(iter(spec.submodule_search_locations))) / "_lambda" / "shadow_runtime" / "looks.py"


def _load() -> ModuleType:
    path = _looks_file()
    spec = importlib.util.spec_from_file_location("shadow_cli._looks", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"the workflow runtime's looks module is missing at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


looks = _load()
