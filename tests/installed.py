"""The package as a user gets it: the wheel built from this checkout, installed into a fresh venv outside the repo.

``installed_package(tmp_path_factory)`` builds the wheel once and installs it with the ``report`` extra (and
nothing else: no dev tools, no matplotlib) into a new venv in pytest's shared temporary folder, outside this
repository. The test workers share that one venv: the first to get the lock builds it, the others wait and reuse it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The pinned CDK CLI (package.json), as a user's project would pin its own.
CDK_CLI = ROOT / "node_modules" / ".bin" / "cdk"
#: The versions a user's project pins, as the dev extra does here (the suite is proven with them).
PINS = ("aws-cdk-lib", "constructs", "boto3", "botocore", "jsii", "duckdb", "pillow")


@dataclass(frozen=True)
class InstalledPackage:
    """A venv holding shadow-constructs[report] from the wheel, and the wheel."""

    venv: Path
    wheel: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for commands run as the user would: the venv first on PATH, nothing of this checkout
        (no PYTHONPATH, no repo on sys.path, CDK's template validation on) and CDK's telemetry off."""
        # Nothing of the suite's own set-up either: CDK_VALIDATION=false (conftest.py) would skip CDK's template
        # validation, which a user's synth runs.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CDK_VALIDATION")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
        env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
        env.update(extra)
        return env

    def run(self, args: list[str | Path], cwd: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
        """Run a command in ``cwd`` as the user would (see ``env``); output captured as text."""
        return subprocess.run([str(a) for a in args], cwd=cwd, env=self.env(**env), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def cdk(self, args: list[str | Path], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
        """The pinned CDK CLI in ``cwd`` (a user's project folder with its own cdk.json)."""
        return self.run([CDK_CLI, *args, "--no-notices", "--no-version-reporting"], cwd, timeout)


def _pinned_requirements() -> list[str]:
    """The dev extra's pins of the runtime dependencies (so the venv has the versions the suite is proven with)."""
    import tomllib

    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    return [spec for spec in dev if spec.split("==")[0].split("[")[0] in PINS]


def installed_package(tmp_path_factory) -> InstalledPackage:
    """Build the wheel and install ``shadow-constructs[report]`` into a fresh venv, once per test session."""
    # One folder for the whole session: under xdist each worker's base is a folder of the session's.
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    home = shared / "installed-package"
    with open(shared / "installed-package.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = home / "done.json"
        if done.exists():
            info = json.loads(done.read_text())
            return InstalledPackage(Path(info["venv"]), Path(info["wheel"]))
        shutil.rmtree(home, ignore_errors=True)
        wheels = home / "wheels"
        # setuptools' build/ folder keeps files of packages no longer listed: start from none (it is gitignored).
        shutil.rmtree(ROOT / "build", ignore_errors=True)
        built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--quiet",
                                "--disable-pip-version-check", "-w", str(wheels)], capture_output=True, text=True)
        if built.returncode != 0:
            raise RuntimeError(f"building the wheel failed:\n{built.stderr[-3000:]}")
        wheel = next(wheels.glob("shadow_constructs-*.whl"))
        target = home / "venv"
        venv.create(target, with_pip=True, clear=True)
        pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        installed = subprocess.run([*pip, f"{wheel}[report]", *_pinned_requirements()], capture_output=True,
                                   text=True, timeout=1200)
        if installed.returncode != 0:
            raise RuntimeError(f"installing {wheel.name}[report] failed:\n{installed.stderr[-3000:]}")
        done.write_text(json.dumps({"venv": str(target), "wheel": str(wheel)}))
        return InstalledPackage(target, wheel)
