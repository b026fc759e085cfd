"""An installed shadow-constructs carries the workflow's Lambda code, and the constructs find it there."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from shadow_constructs._runtime import RUNTIME_DIR, runtime_dir

ROOT = Path(__file__).resolve().parent.parent


def test_a_checkout_uses_the_projects_lambda_folder():
    assert RUNTIME_DIR == ROOT / "lambda"


def test_an_installed_package_uses_its_packaged_copy(tmp_path):
    package = tmp_path / "site-packages" / "shadow_constructs"
    (package / "_lambda" / "shadow_runtime").mkdir(parents=True)
    assert runtime_dir(package) == package / "_lambda"


def test_the_wheel_ships_every_runtime_module(tmp_path):
    # setuptools' build/ folder keeps files of packages no longer listed: start from none (it is gitignored).
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--quiet",
                            "--disable-pip-version-check", "-w", str(tmp_path)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel, = tmp_path.glob("shadow_constructs-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {f"shadow_constructs/_lambda/shadow_runtime/{p.name}" for p in (ROOT / "lambda" / "shadow_runtime").glob("*.py")}
    assert len(modules) >= 7 and modules <= names
    assert "shadow_constructs/promotion_workflow.py" in names and "shadow_report/cli.py" in names
    # The shadow-test command and the pipelines step ship too, with the console script.
    assert {"shadow_cli/shadow_test.py", "shadow_cli/stack.py", "shadow_constructs/pipelines.py",
            "shadow_constructs/phase.py"} <= names
    # The emulator is a test double: never in the runtime distribution.
    assert not [n for n in names if n.startswith("shadow_emulator/")]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "shadow-test = shadow_cli.shadow_test:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
