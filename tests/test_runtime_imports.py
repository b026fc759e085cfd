"""Code under lambda/ deploys as a plain asset: standard library and boto3 only, never CDK."""

from __future__ import annotations

import ast
import sys

from conftest import ROOT

ALLOWED = set(sys.stdlib_module_names) | {"boto3", "botocore", "shadow_runtime"}


def test_runtime_code_imports_only_the_standard_library_and_boto3():
    offenders = []
    files = sorted((ROOT / "lambda").rglob("*.py"))
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] not in ALLOWED]
    assert offenders == []


def test_the_deploy_path_never_reaches_the_emulator():
    # What `cdk synth` / `cdk deploy` run (app.py, stacks/, shadow_constructs/) and what deploys (lambda/)
    # import nothing of shadow_emulator, the demo's test double.
    files = [ROOT / "app.py", *sorted((ROOT / "stacks").rglob("*.py")), *sorted((ROOT / "shadow_constructs").rglob("*.py")),
             *sorted((ROOT / "lambda").rglob("*.py"))]
    offenders = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("shadow_emulator", "scripts")]
    assert len(files) > 20 and offenders == []


def test_the_constructs_import_neither_the_report_tool_nor_the_cli():
    # The CDK library depends on the runtime core (shadow_runtime) only: the capture measures live there, and the
    # report tool renders them for DuckDB as the constructs do for Athena.
    offenders = []
    for path in sorted((ROOT / "shadow_constructs").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("shadow_report", "shadow_cli")]
    assert offenders == []
