"""The GitHub Actions example of the lifecycle (docs/examples/github-actions-shadow-test.yml), as written: it runs the
lifecycle in order, every `shadow-test` line parses with the command's own parser, its phases are the ones the
library's context key takes, it installs what a user's project installs (no path or tool of this repository), and
every `if:` is one the runner double of tests/test_getting_started.py (which runs the commands against the emulator)
knows. The phase and pipeline examples of docs/lifecycle.md are run by test_docs_examples.py and
test_getting_started.py."""

from __future__ import annotations

import json
import re
import tomllib

import actions_workflow
import pytest
from conftest import ROOT

from shadow_cli.shadow_test import build_parser
from shadow_constructs import TestPhase
from shadow_constructs.phase import PHASE_CONTEXT_KEY

STEPS = actions_workflow.steps()
COMMANDS = [command for step in STEPS for command in step.commands()]


def test_the_github_actions_example_runs_the_lifecycle_in_order():
    tools = [(c[0], c[1]) for c in COMMANDS if c[0] in ("cdk", "shadow-test")]
    phase = [("cdk", "synth"), ("shadow-test", "drift"), ("cdk", "deploy")]
    assert tools == [*phase, ("shadow-test", "run"), ("shadow-test", "status"), *phase, *phase]
    # Each deploy deploys the assembly its drift guard just checked, the one synthesized for its phase.
    synthesized = [c[c.index("--output") + 1] for c in COMMANDS if c[:2] == ["cdk", "synth"]]
    checked = [c[c.index("--app") + 1] for c in COMMANDS if c[1:2] == ["drift"]]
    deployed = [c[c.index("--app") + 1] for c in COMMANDS if c[:2] == ["cdk", "deploy"]]
    assert synthesized == checked == deployed == ["cdk.out.shadow", "cdk.out.promoted", "cdk.out.rolled_back"]


def test_each_phase_is_one_the_library_reads_from_its_context_key():
    phases = []
    for command in COMMANDS:
        if command[:2] == ["cdk", "synth"]:
            key, _, value = command[command.index("-c") + 1].partition("=")
            assert key == PHASE_CONTEXT_KEY
            phases.append(TestPhase[value.upper()])
            assert command[command.index("--output") + 1] == f"cdk.out.{value}"
    assert phases == [TestPhase.SHADOW, TestPhase.PROMOTED, TestPhase.ROLLED_BACK]


def test_promoted_follows_success_and_rolled_back_only_a_rejection():
    verdict, = [s for s in STEPS if s.id == "verdict"]
    assert [c[:2] for c in verdict.commands()] == [["shadow-test", "run"], ["echo", "code=$code"], ["exit", "$code"]]
    promoted, = [s for s in STEPS if "shadow-phase=promoted" in (s.run or "")]
    rejected, = [s for s in STEPS if "shadow-phase=rolled_back" in (s.run or "")]
    assert promoted.condition is None and STEPS.index(promoted) > STEPS.index(verdict)  # only if nothing failed
    for code in ("3", "4"):  # rejected, inconclusive at the end: the workflow removed the shadow
        assert actions_workflow.runs(rejected.condition, failed=True, outputs={"verdict": {"code": code}})
    for code in ("0", "1", "5"):  # promoted; the execution failed, AWS unreachable: nothing to declare ROLLED_BACK for
        assert not actions_workflow.runs(rejected.condition, failed=code != "0", outputs={"verdict": {"code": code}})
    assert not actions_workflow.runs(rejected.condition, failed=True, outputs={})  # a step before the verdict failed
    status, = [s for s in STEPS if any(c[:2] == ["shadow-test", "status"] for c in s.commands())]
    assert status.condition == "always()"


@pytest.mark.parametrize("command", [c for c in COMMANDS if c[0] == "shadow-test"], ids=lambda c: " ".join(c[1:3]))
def test_every_shadow_test_line_of_the_example_parses(command):
    args = build_parser().parse_args(command[1:])
    assert args.command == command[1] and args.stack == "ChurnShadow"


def test_it_installs_the_package_and_the_pinned_cdk_cli_and_nothing_of_this_repository():
    text = actions_workflow.WORKFLOW.read_text()
    assert not re.search(r"\bmake\b|\.venv|node_modules|scripts/|stacks|shadow-test-config|\bshadow-test=", text)
    install = [c for c in COMMANDS if c[0] in ("pip", "npm")]
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert install == [["pip", "install", "-r", "requirements.txt"], ["npm", "install", "--global", f"aws-cdk@{pinned}"]]
    # Every command is the package's, the CDK CLI, or shell plumbing.
    assert {c[0] for c in COMMANDS} <= {"pip", "npm", "cdk", "shadow-test", "echo", "exit"}
    with_ = {s.uses.split("@")[0]: s.given for s in STEPS if s.uses}
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={with_['actions/setup-python']['python-version']}"
    assert with_["actions/setup-node"]["node-version"] == "20"  # the version the CDK CLI is proven with here


def test_every_condition_is_one_the_runner_double_knows():
    for step in STEPS:
        actions_workflow.runs(step.condition, failed=False, outputs={})  # raises for an unknown condition


def test_the_job_outlasts_the_test_the_header_asks_for():
    hours = int(re.search(r"`duration=cdk\.Duration\.hours\((\d+)\)`", actions_workflow.WORKFLOW.read_text())[1])
    # The test, its two INCONCLUSIVE extensions of an hour each, and an hour for the deploys and the update.
    assert hours + 2 + 1 <= actions_workflow.job()["timeout-minutes"] / 60 <= 6  # GitHub-hosted jobs: 6 hours
