"""The lifecycle's documentation runs: the README's phase and pipeline examples are synthesized, and every
`shadow-test` command line of the GitHub Actions example parses with the command's own parser."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import aws_cdk as cdk
import pytest
import yaml
from conftest import ROOT, XGBOOST_URI, new_stack, only, template_of

from shadow_cli.shadow_test import build_parser
from shadow_constructs import InstanceSettings, ServingModel, ShadowEndpoint, TestPhase, Variant

README = (ROOT / "README.md").read_text()
WORKFLOW = ROOT / "docs" / "examples" / "github-actions-shadow-test.yml"


def python_block(containing: str) -> str:
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if containing in b]
    assert len(blocks) == 1, f"expected one README python block with {containing!r}, found {len(blocks)}"
    return blocks[0]


def test_the_readme_phase_example_renders_the_promoted_phase():
    stack = new_stack()
    v1, v2 = (ServingModel(stack, name, image=XGBOOST_URI) for name in ("V1", "V2"))
    namespace = {"self": stack, "v1": v1, "v2": v2, "ShadowEndpoint": ShadowEndpoint, "Variant": Variant,
                 "TestPhase": TestPhase, "InstanceSettings": InstanceSettings}
    exec(python_block("phase=TestPhase.PROMOTED"), namespace)  # noqa: S102 - the README's own example
    config = only(template_of(stack), "AWS::SageMaker::EndpointConfig")["Properties"]
    assert "ShadowProductionVariants" not in config
    assert config["ProductionVariants"][0]["ModelName"] == stack.resolve(v2.model_name)


def test_the_readme_pipeline_example_synthesizes(tmp_path):
    code = python_block("ShadowVerdictStep(")
    assert code.count("app = cdk.App()") == 1
    # The example as written, but synthesizing into a scratch folder (the jsii process is shared: no CDK_OUTDIR).
    exec(code.replace("app = cdk.App()", f"app = cdk.App(outdir={str(tmp_path)!r})"),  # noqa: S102
         {"__name__": "readme"})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    pipeline = json.loads((tmp_path / manifest["artifacts"]["ShadowPipeline"]["properties"]["templateFile"]).read_text())
    stages = next(r for r in pipeline["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline")
    stages = stages["Properties"]["Stages"]
    assert [s["Name"] for s in stages][-2:] == ["Shadow", "Promoted"]
    verdict = next(a for a in stages[-2]["Actions"] if a["ActionTypeId"]["Provider"] == "StepFunctions")
    assert json.loads(verdict["Configuration"]["Input"]) == {"follow": True, "fail_unless_promoted": True}
    # Both stages deploy the same CloudFormation stack: the Promoted stage updates what the Shadow stage made.
    deployed = {a["Configuration"]["StackName"] for s in stages[-2:] for a in s["Actions"]
                if a["ActionTypeId"]["Provider"] == "CloudFormation"}
    assert deployed == {"ChurnShadowTest"}


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
