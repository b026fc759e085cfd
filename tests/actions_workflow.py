"""The GitHub Actions example (docs/examples/github-actions-shadow-test.yml) as the steps a runner goes through.

Read by tests/test_lifecycle_docs.py (what the file says) and tests/test_getting_started.py (running its commands).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "docs" / "examples" / "github-actions-shadow-test.yml"
JOB = "shadow-test"
#: Where a shell command line ends and the next begins (``a || b``, ``a && b``, ``a; b``, ``a | b``).
OPERATORS = {"||", "&&", ";", "|"}
#: ``failure() && (steps.ID.outputs.NAME == 'VALUE' || ...)``: a step that runs after a failure with one of those
#: outputs of a step.
FAILED_WITH_OUTPUT = re.compile(r"failure\(\) && \((?P<alternatives>.+)\)")
OUTPUT_IS = re.compile(r"steps\.([\w-]+)\.outputs\.(\w+) == '([^']*)'")


@dataclass(frozen=True)
class Step:
    """One step of the job: a ``run`` script or a ``uses`` action."""

    number: int
    name: str
    id: str | None
    condition: str | None
    run: str | None
    uses: str | None
    given: dict[str, Any] = field(default_factory=dict)  # the action's ``with``

    def commands(self) -> list[list[str]]:
        """The script's command lines (each split at ``||``, ``&&``, ``;`` and ``|``), variable assignments left out."""
        commands = []
        for line in (self.run or "").splitlines():
            words = shlex.split(line, comments=True)
            while words:
                end = next((i for i, word in enumerate(words) if word in OPERATORS), len(words))
                command, words = words[:end], words[end + 1:]
                if command and not re.match(r"^[A-Za-z_]\w*=", command[0]):
                    commands.append(command)
        return commands


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def job() -> dict[str, Any]:
    return workflow()["jobs"][JOB]


def steps() -> list[Step]:
    return [Step(number, step.get("name") or step.get("uses") or f"step {number}", step.get("id"), step.get("if"),
                 step.get("run"), step.get("uses"), dict(step.get("with") or {}))
            for number, step in enumerate(job()["steps"], 1)]


def runs(condition: str | None, *, failed: bool, outputs: dict[str, dict[str, str]]) -> bool:
    """Whether a step with ``if: condition`` runs, given whether a step before it failed and the steps' outputs."""
    if condition is None:  # success(): no step before it failed
        return not failed
    if condition.strip() == "always()":
        return True
    if match := FAILED_WITH_OUTPUT.fullmatch(condition.strip()):
        alternatives = [OUTPUT_IS.fullmatch(a.strip()) for a in match["alternatives"].split("||")]
        if all(alternatives):
            return failed and any(outputs.get(a[1], {}).get(a[2]) == a[3] for a in alternatives if a)
    raise ValueError(f"no rule for the condition {condition!r}: add it to actions_workflow.runs")


def outputs_of(text: str) -> dict[str, str]:
    """A step's outputs from what it appended to ``$GITHUB_OUTPUT`` (``name=value`` lines)."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
