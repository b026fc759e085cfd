"""The GitHub Actions example of the lifecycle (docs/examples/github-actions-shadow-test.yml) runs the lifecycle in
order and every `shadow-test` command line of it parses with the command's own parser. The phase and pipeline
examples of docs/lifecycle.md are synthesized by test_docs_examples.py."""

from __future__ import annotations

import shlex
from pathlib import Path

import aws_cdk as cdk
import pytest
import yaml
from conftest import ROOT

from shadow_cli.shadow_test import build_parser

WORKFLOW = ROOT / "docs" / "examples" / "github-actions-shadow-test.yml"


def workflow_commands() -> list[list[str]]:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["shadow-test"]["steps"]
    commands = []
    for step in steps:
        for line in str(step.get("run", "")).splitlines():
            words = shlex.split(line)
            if words and Path(words[0]).name in ("shadow-test", "cdk"):
                commands.append([Path(words[0]).name, *words[1:]])
    return commands


def test_the_github_actions_example_runs_the_lifecycle_in_order():
    commands = workflow_commands()
    sequence = [(c[0], c[1]) for c in commands]
    assert sequence == [("cdk", "synth"), ("shadow-test", "drift"), ("cdk", "deploy"), ("shadow-test", "run"),
                        ("shadow-test", "status"), ("cdk", "synth"), ("shadow-test", "drift"), ("cdk", "deploy")]
    # Each deploy deploys the assembly its drift guard just checked.
    apps = [c[c.index("--app") + 1] for c in commands if c[1] in ("drift", "deploy")]
    assert apps == ["cdk.out.shadow", "cdk.out.shadow", "cdk.out.promoted", "cdk.out.promoted"]


@pytest.mark.parametrize("command", [c for c in workflow_commands() if c[0] == "shadow-test"],
                         ids=lambda c: " ".join(c[1:3]))
def test_every_shadow_test_line_of_the_example_parses(command):
    args = build_parser().parse_args(command[1:])
    assert args.command == command[1] and args.stack == "ChurnShadowTest"


def test_cdk_context_of_the_example_is_the_apps_phase_setting():
    env = yaml.safe_load(WORKFLOW.read_text())["jobs"]["shadow-test"]["env"]
    from stacks import ShadowTestConfig

    assert ShadowTestConfig.load(env["SHADOW"]).phase == "shadow"
    assert ShadowTestConfig.load(env["PROMOTED"]).phase == "promoted"
    assert cdk.Duration.hours(ShadowTestConfig.load(env["SHADOW"]).test_duration_hours).to_hours() < 6  # a job's limit
