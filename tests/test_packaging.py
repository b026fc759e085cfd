"""An installed shadow-constructs carries the workflow's Lambda code as the package shadow_runtime, and the
constructs import it by name and deploy its modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from shadow_constructs._runtime import PACKAGE_DIR, runtime_asset_dir

ROOT = Path(__file__).resolve().parent.parent


def test_the_runtime_is_the_top_level_package_shadow_runtime():
    import shadow_runtime
    from shadow_runtime import verdict

    from shadow_constructs import Criteria

    assert PACKAGE_DIR == ROOT / "lambda" / "shadow_runtime" == Path(shadow_runtime.__file__).parent
    assert Criteria is verdict.Criteria  # one class: the judge's own, typed for users


def test_the_functions_asset_holds_the_runtime_modules_only(tmp_path):
    staged = runtime_asset_dir(root=tmp_path)
    files = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
    modules = sorted(f"shadow_runtime/{p.name}" for p in (ROOT / "lambda" / "shadow_runtime").glob("*.py"))
    assert files == modules and len(modules) >= 10  # no __pycache__, no py.typed
    assert runtime_asset_dir(root=tmp_path) == staged  # staged once per content


def test_product_code_loads_no_module_by_file_path():
    offenders = []
    for package in ("shadow_constructs", "shadow_cli", "shadow_report", "lambda/shadow_runtime"):
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            offenders += [f"{path.relative_to(ROOT)}: {name}" for name in ("spec_from_file_location", "import_module(")
                          if name in text]
    assert offenders == []


@pytest.mark.outer  # builds the wheel
def test_the_wheel_ships_every_runtime_module(tmp_path):
    # setuptools' build/ folder keeps files of packages no longer listed: start from none (it is gitignored).
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--quiet",
                            "--disable-pip-version-check", "-w", str(tmp_path)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel, = tmp_path.glob("shadow_constructs-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {f"shadow_runtime/{p.name}" for p in (ROOT / "lambda" / "shadow_runtime").glob("*.py")}
    assert len(modules) >= 7 and modules | {"shadow_runtime/py.typed"} <= names
    assert not [n for n in names if n.startswith("shadow_constructs/_lambda/")]  # one copy, under its own name
    assert "shadow_constructs/promotion_workflow.py" in names and "shadow_report/cli.py" in names
    # The shadow-test command and the pipelines step ship too, with the console script.
    assert {"shadow_cli/shadow_test.py", "shadow_cli/stack.py", "shadow_constructs/pipelines.py",
            "shadow_constructs/phase.py"} <= names
    # The emulator is a test double: never in the runtime distribution.
    assert not [n for n in names if n.startswith("shadow_emulator/")]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "shadow-test = shadow_cli.shadow_test:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
