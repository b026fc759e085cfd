"""Using the library from outside this repository, as the README, docs/getting-started.md and docs/lifecycle.md tell a
new user to: the package installed from its wheel into a fresh venv (``installed.py``), the docs' files written into
an empty folder outside the repository, and the pinned CDK CLI, with no path of this repository in the commands.

- The README's app and ``cdk.json`` are getting-started's (one app, shown twice).
- That project synthesizes with CDK's template validation on (its ``cdk.json``): the SHADOW phase by default, the
  PROMOTED phase with ``-c shadow-phase=promoted``.
- docs/lifecycle.md's CDK Pipelines ``app.py`` synthesizes: the Shadow stage, the verdict step (CodePipeline's Step
  Functions invoke action) after its deploy, the Promoted stage; and, with ``"shadow-phase": "rolled_back"``, the
  Shadow stage alone in that phase.
- The GitHub Actions workflow (docs/examples/github-actions-shadow-test.yml) runs step by step, under its ``if:``
  conditions, in the getting-started project changed as the workflow's header says, against the local AWS emulator,
  twice: v2 as the candidate (PROMOTE, the PROMOTED phase deployed, production unchanged) and a much slower one
  (REJECT, the job failed, the ROLLED_BACK phase deployed, production untouched). The step of the other verdict,
  run too, stops at its drift guard; so does the SHADOW phase after a PROMOTE. The next push, with the app changed
  as the docs say (after a PROMOTE: v2 in production and a new candidate; after a REJECT: a new candidate), passes
  the guard (its deploy is not run: see ``WorkflowRun.next_push``). The outputs the docs show match.
  The runner double stands in for what a runner gets from its actions and secrets: the checkout (the project
  folder), Python and Node (the venv and node on PATH), the credentials and region (the emulator's, with
  ``AWS_ENDPOINT_URL``), the package index (the wheel's folder, for ``pip``) and npm's CDK CLI (this repository's
  pinned one, of the version the step installs). The account's state is set up as a user's would be: bootstrapped,
  and the production model in its S3 bucket. Between the deploy and the verdict the endpoint gets real traffic and
  the emulated clock moves on to each look of the test, as time would pass.

Each file is a code block of the docs, marked by ``<!-- file: NAME -->`` on the line before its fence, so the docs
cannot drift from what is tested.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import actions_workflow
import pytest
from installed import CDK_CLI, InstalledPackage, installed_package

pytestmark = pytest.mark.outer  # the outer loop (make test-fast skips it): the wheel, a fresh venv, the CDK CLI and the emulator

ROOT = Path(__file__).resolve().parent.parent
README, GETTING_STARTED, LIFECYCLE = ROOT / "README.md", ROOT / "docs" / "getting-started.md", ROOT / "docs" / "lifecycle.md"
FILE_MARKER = re.compile(r"^<!--\s*file:\s*(?P<name>\S+)\s*-->$")
STACK, ENDPOINT = "ChurnShadow", "churn"
#: The production model the app names (``s3://my-models/churn/v1/model.tar.gz``): the account holds it already.
PRODUCTION_MODEL = ("my-models", "churn/v1/model.tar.gz", ROOT / "models" / "churn-v1" / "model.tar.gz")
#: The candidate the app names as a local file (``models/churn-v2/model.tar.gz``): the user's project holds it.
CANDIDATE = ("models/churn-v2/model.tar.gz", ROOT / "models" / "churn-v2" / "model.tar.gz")
#: Traffic between the deploy and the verdict: enough paired minutes to judge the p99s (as tests/demo_assembly.py).
REQUESTS, MINUTES = 4500, 15


def doc_files(doc: Path, marker: re.Pattern[str] = FILE_MARKER) -> dict[str, str]:
    """The code blocks of ``doc`` marked ``<!-- file: NAME -->`` (or ``marker``), by NAME, dedented."""
    lines, files = doc.read_text().splitlines(), {}
    for number, line in enumerate(lines):
        if not (found := marker.match(line.strip())):
            continue
        fence = next(i for i in range(number + 1, len(lines)) if lines[i].strip())
        assert lines[fence].lstrip().startswith("```"), f"{doc.name}:{number + 1}: {found['name']} marks no code block"
        end = next(i for i in range(fence + 1, len(lines)) if lines[i].strip() == "```")
        assert found["name"] not in files, f"{doc.name}: two blocks are {found['name']}"
        files[found["name"]] = textwrap.dedent("\n".join(lines[fence + 1:end])) + "\n"
    return files


#: ``<!-- output: shadow-test status -->``: a sample of what a command prints.
OUTPUT_MARKER = re.compile(r"^<!--\s*output:\s*(?P<name>.+?)\s*-->$")


def masked(line: str) -> str:
    """A line of output without what differs from run to run: generated names, times, durations, numbers."""
    line = re.sub(r"\bin (\d+ (d|h|min|s)\b ?)+", "in D", line.rstrip())
    line = re.sub(r"\b(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{12,}\b", "X", line)  # physical-name suffixes, execution ids
    return re.sub(r"\d+(\.\d+)?", "#", line)


def assert_sample(sample: str, output: str, what: str) -> None:
    """Each line of the docs' ``sample`` (but ``…`` and ``$ command`` lines) is a line of ``output``, in order, up to
    ``masked``."""
    lines = iter(masked(line) for line in output.splitlines())
    for line in sample.splitlines():
        if line.strip() != "…" and not line.startswith("$ "):
            assert any(masked(line) == other for other in lines), f"{what}: {line!r} is not in the output:\n{output}"


def template(assembly: Path, stack: str = STACK) -> dict[str, Any]:
    return json.loads((assembly / f"{stack}.template.json").read_text())


def resources(template_: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template_["Resources"].values() if r["Type"] == kind]


def only(template_: dict[str, Any], kind: str) -> dict[str, Any]:
    found = resources(template_, kind)
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]["Properties"]


def ref(value: Any) -> str:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` names."""
    return value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]


def test_the_readme_app_is_the_getting_started_app():
    readme, started, pipeline = doc_files(README), doc_files(GETTING_STARTED), doc_files(LIFECYCLE)
    assert set(readme) == {"app.py", "cdk.json"} and set(started) == {"app.py", "cdk.json", "requirements.txt"}
    assert readme["app.py"] == started["app.py"]
    assert json.loads(readme["cdk.json"]) == json.loads(started["cdk.json"])
    assert json.loads(started["cdk.json"])["context"] == {"@aws-cdk/core:validateAgainstDefaultRules": True}
    assert set(pipeline) == {"app.py"}
    for text in (*started.values(), pipeline["app.py"]):  # nothing of this repository's own layout
        assert not re.search(r"\b(stacks|scripts|shadow_emulator|node_modules|\.venv|make)\b", text), text


# ---- the user's folder -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def package(tmp_path_factory) -> InstalledPackage:
    return installed_package(tmp_path_factory)


def user_env(package: InstalledPackage, **extra: str) -> dict[str, str]:
    """A user's shell: the venv first on PATH, nothing of this repository or of this test session's settings (no
    CDK_VALIDATION=false: the suite skips CDK's validation in its own kernels, a user's synth runs it), no AWS
    account (a synth needs none)."""
    env = {k: v for k, v in package.env().items()
           if not k.startswith(("AWS_", "CDK_DEFAULT_")) and k not in ("CDK_VALIDATION", "CDK_CONTEXT_JSON")}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    env.update(extra)
    return env


def write_project(folder: Path, files: dict[str, str], candidate: bool = True) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    if candidate:  # this repository's v2 archive stands in for the user's candidate
        (folder / CANDIDATE[0]).parent.mkdir(parents=True)
        shutil.copy(CANDIDATE[1], folder / CANDIDATE[0])
    return folder


def synthesize(package: InstalledPackage, project: Path, *runs: list[str]) -> None:
    """``cdk synth --quiet`` with each argument list of ``runs``, at once, in ``project``; each must succeed."""
    processes = [subprocess.Popen([str(CDK_CLI), "synth", "--quiet", *args, "--no-notices", "--no-version-reporting"],
                                  cwd=project, env=user_env(package), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, stdin=subprocess.DEVNULL) for args in runs]
    for args, process in zip(runs, processes, strict=True):
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, f"cdk synth {' '.join(args)} failed:\n{output[-3000:]}"


def assert_shadow_phase(shadow: dict[str, Any], duration: timedelta) -> None:
    config = only(shadow, "AWS::SageMaker::EndpointConfig")
    production, = config["ProductionVariants"]
    candidate, = config["ShadowProductionVariants"]
    assert candidate["InitialVariantWeight"] == 0.5 * production["InitialVariantWeight"]  # 50% of the requests
    assert ref(production["ModelName"]).startswith("V1") and ref(candidate["ModelName"]).startswith("V2")
    assert only(shadow, "AWS::SageMaker::Endpoint")["EndpointName"] == ENDPOINT
    assert len(resources(shadow, "AWS::StepFunctions::StateMachine")) == 1
    assert only(shadow, "Custom::ShadowTestEnd")["DurationSeconds"] == duration.total_seconds()
    assert resources(shadow, "AWS::CloudWatch::Alarm") and resources(shadow, "AWS::CloudWatch::Dashboard")


def assert_promoted_phase(promoted: dict[str, Any], shadow: dict[str, Any]) -> None:
    before, = only(shadow, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    config = only(promoted, "AWS::SageMaker::EndpointConfig")
    production, = config["ProductionVariants"]
    assert "ShadowProductionVariants" not in config
    # v2 in the production variant, under its name: what the workflow leaves after a PROMOTE.
    assert ref(production["ModelName"]).startswith("V2") and production["VariantName"] == before["VariantName"]
    assert not resources(promoted, "AWS::StepFunctions::StateMachine") and not resources(promoted, "Custom::ShadowTestEnd")
    assert not resources(promoted, "AWS::CloudWatch::Alarm") and resources(promoted, "AWS::CloudWatch::Dashboard")


INVALID_APP = """import aws_cdk as cdk

app = cdk.App()
cdk.CfnResource(cdk.Stack(app, "Invalid"), "Bucket", type="AWS::S3::Bucket", properties={"BucketNameX": "b"})
app.synth()
"""


def test_the_readme_app_synthesizes_from_the_wheel_in_each_phase(package, tmp_path):
    files = doc_files(GETTING_STARTED)
    project = write_project(tmp_path / "churn-shadow", files)
    # The control for the validation claimed below: the same cdk.json fails a template CloudFormation would reject.
    control = write_project(tmp_path / "invalid", {"cdk.json": files["cdk.json"], "app.py": INVALID_APP}, candidate=False)
    failing = subprocess.Popen([str(CDK_CLI), "synth", "--quiet", "--no-notices"], cwd=control, env=user_env(package),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    synthesize(package, project, [], ["-c", "shadow-phase=promoted", "--output", "cdk.out.promoted"])
    output, _ = failing.communicate(timeout=600)
    assert failing.returncode != 0 and "BucketNameX" in output, output[-2000:]
    shadow = template(project / "cdk.out")
    assert_shadow_phase(shadow, timedelta(days=7))  # the default duration
    assert_promoted_phase(template(project / "cdk.out.promoted"), shadow)
    # CDK's template validation ran in the synth (cdk.json turns its findings into errors) and found nothing.
    report = json.loads((project / "cdk.out" / "validation-report.json").read_text())
    assert not [r for r in report["pluginReports"] if r.get("violations")], report
    # The candidate, a file of the user's project, travels as a CDK asset.
    assets = json.loads((project / "cdk.out" / f"{STACK}.assets.json").read_text())["files"].values()
    assert any(a["source"]["path"].endswith(".tar.gz") and a["source"].get("packaging") != "zip" for a in assets)


# ---- CDK Pipelines ---------------------------------------------------------------------------------------------------

def pipeline_stages(assembly: Path) -> list[dict[str, Any]]:
    return only(template(assembly, "ShadowPipeline"), "AWS::CodePipeline::Pipeline")["Stages"]


def deployed_stacks(stage: dict[str, Any]) -> set[str]:
    return {a["Configuration"]["StackName"] for a in stage["Actions"] if a["ActionTypeId"]["Provider"] == "CloudFormation"}


def stage_template(assembly: Path, stage: str) -> dict[str, Any]:
    path, = (assembly / f"assembly-{stage}").glob("*.template.json")
    return json.loads(path.read_text())


def test_the_pipeline_example_synthesizes_from_the_wheel(package, tmp_path):
    started = doc_files(GETTING_STARTED)
    project = write_project(tmp_path / "churn-pipeline", {**doc_files(LIFECYCLE), "cdk.json": started["cdk.json"],
                                                         "requirements.txt": started["requirements.txt"]}, candidate=False)
    synthesize(package, project, [], ["-c", "shadow-phase=rolled_back", "--output", "cdk.out.rolled_back"])
    testing, rolled_back = project / "cdk.out", project / "cdk.out.rolled_back"

    stages = pipeline_stages(testing)
    assert [s["Name"] for s in stages][-2:] == ["Shadow", "Promoted"]  # after the pipeline's own and the assets
    shadow, promoted = stages[-2:]
    verdict, = [a for a in shadow["Actions"] if a["ActionTypeId"]["Provider"] == "StepFunctions"]
    assert verdict["ActionTypeId"]["Category"] == "Invoke"
    assert json.loads(verdict["Configuration"]["Input"]) == {"follow": True, "fail_unless_promoted": True}
    assert verdict["RunOrder"] > max(a["RunOrder"] for a in shadow["Actions"] if a is not verdict)  # after the deploy
    assert deployed_stacks(shadow) == deployed_stacks(promoted) == {STACK}  # one stack, two phases
    assert only(template(testing, "ShadowPipeline"), "AWS::CodePipeline::Pipeline").get("PipelineType", "V1") == "V1"
    shadow_template = stage_template(testing, "Shadow")
    assert_shadow_phase(shadow_template, timedelta(days=6))  # within CodePipeline's 7 days for the verdict
    assert_promoted_phase(stage_template(testing, "Promoted"), shadow_template)

    # After a REJECT ("shadow-phase": "rolled_back"): the Shadow stage deploys production alone; nothing to wait for.
    stages = pipeline_stages(rolled_back)
    assert [s["Name"] for s in stages][-1] == "Shadow" and "Promoted" not in [s["Name"] for s in stages]
    assert [a["ActionTypeId"]["Provider"] for a in stages[-1]["Actions"]] == ["CloudFormation", "CloudFormation"]
    config = only(stage_template(rolled_back, "Shadow"), "AWS::SageMaker::EndpointConfig")
    production, = config["ProductionVariants"]
    assert "ShadowProductionVariants" not in config and ref(production["ModelName"]).startswith("V1")
    assert not resources(stage_template(rolled_back, "Shadow"), "AWS::StepFunctions::StateMachine")


# ---- GitHub Actions, against the emulator ----------------------------------------------------------------------------

#: The actions the runner double stands in for (see the module's docstring).
PROVIDED_ACTIONS = ("actions/checkout@", "actions/setup-python@", "actions/setup-node@",
                    "aws-actions/configure-aws-credentials@")
NPM_CDK = re.compile(r"^npm install --global aws-cdk@(?P<version>\S+)$")
#: The header's change to the app: a duration the job outlasts.
DURATION_EDIT = re.compile(r"`(duration=cdk\.Duration\.hours\((?P<hours>\d+)\))` in its ShadowTest")


class LookClock(threading.Thread):
    """While the verdict step runs, time passes: the emulated clock moves past the traffic, then on to one second
    before each look the test's execution waits for (``WaitForNextLook``), running ``rate`` times as fast in between
    (the workflow's waits while it updates the endpoint), as ``scripts/demo.py`` does."""

    def __init__(self, demo: Any, execution_arn: str, start: datetime, rate: int) -> None:
        super().__init__(daemon=True)
        self.demo, self.execution_arn, self.rate = demo, execution_arn, rate
        self.offset, self.since = (start - datetime.now(UTC)).total_seconds(), time.monotonic()
        self.stopped = threading.Event()

    def set_offset(self, offset: float) -> None:
        self.offset, self.since = offset, time.monotonic()
        self.demo.emulator.control("POST", "clock", {"offset_seconds": offset, "rate": self.rate})

    def run(self) -> None:
        from shadow_cli.shadow_test import LOOK_WAIT_STATE, current_state, look_of, parse_time

        sfn = self.demo.client("stepfunctions")
        self.set_offset(self.offset)
        while not self.stopped.wait(0.2):
            if sfn.describe_execution(executionArn=self.execution_arn)["status"] != "RUNNING":
                return
            entered = current_state(sfn, self.execution_arn)
            look = look_of(entered) if entered and entered.get("name") == LOOK_WAIT_STATE else None
            at = parse_time(look["at"]) if look else None
            if at is None:
                continue
            now = datetime.now(UTC)
            emulated = now + timedelta(seconds=self.offset + (time.monotonic() - self.since) * (self.rate - 1))
            if at - timedelta(seconds=1) > emulated:
                self.set_offset((at - timedelta(seconds=1) - now).total_seconds())


@dataclass
class StepRun:
    code: int
    output: str
    outputs: dict[str, str]
    seconds: float


class Runner:
    """The runner double: the job's ``run`` steps in the project folder, as a Linux runner runs them (``bash -e``,
    ``$GITHUB_OUTPUT``), in the environment the ``uses`` steps would have made (see the module's docstring)."""

    def __init__(self, package: InstalledPackage, project: Path, demo: Any, folder: Path) -> None:
        self.project, self.demo, self.logs = project, demo, folder / "steps"
        self.logs.mkdir()
        tools = folder / "tools"  # what `npm install --global aws-cdk@…` puts on PATH: the pinned CLI
        tools.mkdir()
        (tools / "cdk").symlink_to(CDK_CLI)
        self.pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
        credentials = {k: v for k, v in demo.env.items() if k.startswith("AWS_")}  # the emulator's, and its URL
        # CDK_METHOD=direct (the CLI's --method, from its environment): moto's CloudFormation updates a stack only
        # without a change set. The workflow's commands stay as a user writes them.
        self.env = user_env(package, **credentials, CI="true", GITHUB_ACTIONS="true", CDK_METHOD="direct",
                            PIP_NO_INDEX="1", PIP_FIND_LINKS=str(package.wheel.parent))
        self.env["PATH"] = f"{package.venv / 'bin'}{os.pathsep}{tools}{os.pathsep}{self.env['PATH']}"

    def check_action(self, step: actions_workflow.Step) -> None:
        assert step.uses and step.uses.startswith(PROVIDED_ACTIONS), f"the runner double cannot stand in for {step.uses}"
        if step.uses.startswith("aws-actions/configure-aws-credentials@"):
            assert step.given["aws-region"] == self.env["AWS_REGION"] == self.env["AWS_DEFAULT_REGION"]

    def script(self, step: actions_workflow.Step) -> str:
        """The step's script, but the CDK CLI's install (checked: the version the tests pin)."""
        lines = []
        for line in (step.run or "").splitlines():
            if npm := NPM_CDK.match(line.strip()):
                assert npm["version"] == self.pinned, f"the workflow installs CDK CLI {npm['version']}, tests {self.pinned}"
            else:
                lines.append(line)
        return "\n".join(lines) + "\n"

    def run(self, step: actions_workflow.Step, log: str) -> StepRun:
        script, outputs = self.logs / f"{log}.sh", self.logs / f"{log}.outputs"
        script.write_text(self.script(step))
        outputs.write_text("")
        started = time.monotonic()
        completed = subprocess.run(["bash", "--noprofile", "--norc", "-e", str(script)], cwd=self.project,
                                   env={**self.env, "GITHUB_OUTPUT": str(outputs)}, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, timeout=900)
        (self.logs / f"{log}.log").write_text(completed.stdout)
        return StepRun(completed.returncode, completed.stdout, actions_workflow.outputs_of(outputs.read_text()),
                       round(time.monotonic() - started, 1))

    def the_test_runs(self) -> str:
        """After the deploy: callers send production traffic (replayed as the test's first minutes), and a person
        looks with ``shadow-test status`` (its output)."""
        demo = self.demo
        demo.state_machine, = [r["PhysicalResourceId"] for page in demo.client("cloudformation").get_paginator(
            "list_stack_resources").paginate(StackName=STACK) for r in page["StackResourceSummaries"]
            if r["ResourceType"] == "AWS::StepFunctions::StateMachine"]
        demo.endpoint = ENDPOINT
        demo.result.initial_config = demo.endpoint_config()
        demo.send_traffic()
        return subprocess.run(["shadow-test", "status", "--stack", STACK], cwd=self.project, env=self.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120).stdout

    def time_passes(self, rate: int) -> LookClock:
        """While the job waits for the verdict: the emulated clock past the traffic, then on to each look."""
        execution = self.demo.self_ending_execution()
        test_start = self.demo.test_window(execution)[0].replace(second=0, microsecond=0)
        clock = LookClock(self.demo, execution["executionArn"], test_start + timedelta(minutes=MINUTES, seconds=5), rate)
        clock.start()
        return clock


@dataclass
class WorkflowRun:
    """What a push did: the steps that ran (by name), their outputs (by id), the endpoint before and after."""

    steps: list[actions_workflow.Step]
    ran: dict[str, StepRun]
    outputs: dict[str, dict[str, str]]
    failed: bool
    initial: dict[str, Any]
    final: dict[str, Any]
    project: Path
    #: ``shadow-test status`` while the test ran.
    looking: str = ""
    #: Run after the workflow: the other verdict's step, and the drift guard on the SHADOW assembly.
    other_step: StepRun | None = None
    shadow_drift: StepRun | None = None
    stack_resources: set[str] = field(default_factory=set)
    #: The next push, with the app changed as the docs say: its SHADOW synth and drift guard (its deploy is not run:
    #: the emulator keeps the Glue database that the deploy of the PROMOTED or ROLLED_BACK phase removed, and then
    #: refuses to create it again).
    next_push: dict[str, StepRun] = field(default_factory=dict)

    def summary(self) -> str:
        return "\n".join(f"{name}: exit {r.code} in {r.seconds} s\n{r.output[-2000:]}" for name, r in self.ran.items())

    def step_with(self, *words: str) -> actions_workflow.Step:
        return next(s for s in self.steps if any(c[:len(words)] == list(words) for c in s.commands()))

    def output_of(self, *words: str) -> str:
        return self.ran[self.step_with(*words).name].output


#: The next candidate of the next push (any other XGBoost archive: this repository's v1 stands in).
NEXT_CANDIDATE = ("models/churn-v3/model.tar.gz", ROOT / "models" / "churn-v1" / "model.tar.gz")


def edited(app: str, *changes: tuple[str, str]) -> str:
    for before, after in changes:
        assert app.count(before) == 1, f"{before!r} is not once in the app"
        app = app.replace(before, after)
    return app


def next_after_promote(app: str) -> str:
    """The docs' next app after a PROMOTE: v2 (its ServingModel unchanged) in production, a new candidate v3."""
    return edited(app, ("production=Variant(model=v1, instance_count=2)", "production=Variant(model=v2, instance_count=2)"),
                  ("shadow=Variant(model=v2)", "shadow=Variant(model=v3)"),
                  ('        v1 = ServingModel(self, "V1", image=image, model_data="s3://my-models/churn/v1/model.tar.gz")\n',
                   f'        v3 = ServingModel(self, "V3", image=image, model_data="{NEXT_CANDIDATE[0]}")\n'))


def next_after_reject(app: str) -> str:
    """The docs' next app after a REJECT (and the ROLLED_BACK phase): another ``model_data`` for v2."""
    return edited(app, ('model_data="models/churn-v2/model.tar.gz"', f'model_data="{NEXT_CANDIDATE[0]}"'))


def push(package: InstalledPackage, folder: Path, candidate: Path, scenario: str,
         next_app: Callable[[str], str]) -> WorkflowRun:
    """One push to main: the getting-started project (changed as the workflow's header says, with ``candidate`` as
    its v2 archive) in an empty folder, the workflow's steps run in order against a fresh emulator; then the next
    push's SHADOW steps with the app changed by ``next_app``."""
    from scripts.demo import ACCOUNT, CLOCK_RATE, REGION, Console, Demo
    from shadow_emulator.ports import free_port

    steps = actions_workflow.steps()
    edit = DURATION_EDIT.search(actions_workflow.WORKFLOW.read_text().split("\nname:", 1)[0])
    assert edit, "the workflow's header says which duration the app's ShadowTest needs"
    files = doc_files(GETTING_STARTED)
    call = 'ShadowTest(self, "Test", endpoint=endpoint, '
    assert files["app.py"].count(call) == 1
    files["app.py"] = files["app.py"].replace(call, f"{call}{edit[1]}, ")
    project = write_project(folder / "churn-shadow", files)
    shutil.copy(candidate, project / CANDIDATE[0])
    demo = Demo(scenario, requests=REQUESTS, minutes=MINUTES, port=free_port(), workdir=folder / "emulator",
                console=Console(quiet=True), operator=False)
    runner = Runner(package, project, demo, folder)
    run = WorkflowRun(steps, {}, {}, False, {}, {}, project)
    try:
        demo.start_emulator()
        # The account, as a user's is before the first push: bootstrapped, the production model in its bucket.
        demo.cdk("bootstrap", f"aws://{ACCOUNT}/{REGION}", what="bootstrap the emulated account", app=False)
        demo.client("s3").create_bucket(Bucket=PRODUCTION_MODEL[0])
        demo.client("s3").put_object(Bucket=PRODUCTION_MODEL[0], Key=PRODUCTION_MODEL[1],
                                     Body=PRODUCTION_MODEL[2].read_bytes())
        for step in steps:
            if step.uses is not None:
                runner.check_action(step)
                continue
            if not actions_workflow.runs(step.condition, failed=run.failed, outputs=run.outputs):
                continue
            clock = runner.time_passes(CLOCK_RATE) if step.id == "verdict" else None
            try:
                run.ran[step.name] = result = runner.run(step, f"{step.number:02d}")
            finally:
                if clock is not None:
                    clock.stopped.set()
                    clock.join()
                    demo.emulator.control("POST", "clock", {"offset_seconds": 0})
            run.failed = run.failed or result.code != 0
            run.outputs[step.id or ""] = result.outputs
            if result.code == 0 and any(c[:2] == ["cdk", "deploy"] and "cdk.out.shadow" in c for c in step.commands()):
                run.looking = runner.the_test_runs()
        assert "verdict" in run.outputs, f"the job failed before its verdict:\n{run.summary()}"
        run.initial, run.final = demo.result.initial_config, demo.endpoint_config()
        run.stack_resources = {r["ResourceType"] for page in demo.client("cloudformation").get_paginator(
            "list_stack_resources").paginate(StackName=STACK) for r in page["StackResourceSummaries"]}
        # The step of the other verdict, run now (where it never runs): its drift guard must stop it before a deploy.
        other, = [s for s in steps if s.run and s.name not in run.ran and "shadow-phase=" in s.run]
        run.other_step = runner.run(other, "other-verdict")
        # The SHADOW phase again (the next push, had it not changed the app).
        again = actions_workflow.Step(0, "again", None, None, "shadow-test drift --stack ChurnShadow --app cdk.out.shadow",
                                      None)
        run.shadow_drift = runner.run(again, "shadow-again")
        # The next push, with the app changed as the docs say: the workflow's SHADOW steps again.
        (project / "app.py").write_text(next_app((project / "app.py").read_text()))
        (project / NEXT_CANDIDATE[0]).parent.mkdir(parents=True)
        shutil.copy(NEXT_CANDIDATE[1], project / NEXT_CANDIDATE[0])
        for step in steps:
            commands = step.commands()
            if any("cdk.out.shadow" in c for c in commands) and not any(c[:2] == ["cdk", "deploy"] for c in commands):
                run.next_push[step.name] = runner.run(step, f"next-{step.number:02d}")
    finally:
        demo.emulator.stop()
    assert only(template(project / "cdk.out.shadow"), "Custom::ShadowTestEnd")["DurationSeconds"] == \
        int(edit["hours"]) * 3600  # the test the job followed is the one the header asks for
    return run


@pytest.fixture(scope="module")
def promoted(package, tmp_path_factory) -> WorkflowRun:
    """A push whose candidate is v2 (healthy): PROMOTE."""
    return push(package, tmp_path_factory.mktemp("actions-promote"), CANDIDATE[1], "healthy", next_after_promote)


@pytest.fixture(scope="module")
def rejected(package, tmp_path_factory) -> WorkflowRun:
    """A push whose candidate is much slower (v2 grown to 800 trees, as ``make demo SCENARIO=regressed``): REJECT."""
    return push(package, tmp_path_factory.mktemp("actions-reject"), ROOT / "models" / "churn-v2-regressed" /
                "model.tar.gz", "regressed", next_after_reject)


def assert_the_next_push_may_deploy(run: WorkflowRun, production_model: str) -> None:
    """The next push's SHADOW phase synthesizes and passes the drift guard: production keeps ``production_model``."""
    assert [r.code for r in run.next_push.values()] == [0, 0], run.next_push
    drift = "".join(r.output for r in run.next_push.values())
    assert f"no drift: deploying cdk.out.shadow's {STACK} keeps model {production_model} " in drift, drift


def test_the_github_actions_workflow_promotes_a_healthy_candidate_on_the_emulator(promoted):
    run = promoted
    verdict_step, promoted_step = run.step_with("shadow-test", "run"), run.step_with("cdk", "synth", "--quiet", "-c",
                                                                                      "shadow-phase=promoted")
    assert list(run.ran) == [s.name for s in run.steps if s.run and "shadow-phase=rolled_back" not in s.run]
    assert not run.failed and run.outputs["verdict"] == {"code": "0"}, run.summary()
    verdict, status, phase = (run.ran[s.name].output for s in (verdict_step, run.step_with("shadow-test", "status"),
                                                               promoted_step))
    assert "decision PROMOTE" in verdict and "action promoted" in verdict, verdict
    assert re.search(r"last verdict +SUCCEEDED .*decision PROMOTE", status), status
    assert f"no drift: deploying cdk.out.promoted's {STACK} keeps model" in phase, phase
    # v2 serves in the production variant, on production's instances; no shadow; the test's workflow is gone.
    assert run.final["status"] == "InService" and run.final["shadow"] == []
    assert run.final["production"] == [{**run.initial["production"][0], "ModelName": run.initial["shadow"][0]["ModelName"]}]
    assert "AWS::StepFunctions::StateMachine" not in run.stack_resources
    # After a PROMOTE, neither ROLLED_BACK nor SHADOW (the old app) may deploy: each would put v1 back.
    for refused, assembly in ((run.other_step, "cdk.out.rolled_back"), (run.shadow_drift, "cdk.out.shadow")):
        assert refused is not None and refused.code == 1, refused
        assert f"drift: deploying {assembly}'s {STACK} would put model" in refused.output, refused.output
        assert "Stack ARN" not in refused.output  # nothing deployed
    # What the docs show a user sees.
    samples = doc_files(GETTING_STARTED, OUTPUT_MARKER)
    assert_sample(samples["shadow-test status"], run.looking, "shadow-test status while the test runs")
    assert_sample(samples["shadow-test run"], verdict, "shadow-test run")
    assert_sample(doc_files(LIFECYCLE, OUTPUT_MARKER)["shadow-test drift"], run.shadow_drift.output + phase,
                  "shadow-test drift after a PROMOTE")
    # The next push as the docs say (v2 in production, a new candidate): the guard lets it deploy, v2 keeps serving.
    assert_the_next_push_may_deploy(run, run.initial["shadow"][0]["ModelName"])


def test_the_github_actions_workflow_rolls_back_a_regressed_candidate_on_the_emulator(rejected):
    run = rejected
    rolled_back = run.step_with("cdk", "synth", "--quiet", "-c", "shadow-phase=rolled_back")
    assert list(run.ran) == [s.name for s in run.steps if s.run and "shadow-phase=promoted" not in s.run], run.summary()
    # The job fails at the verdict (exit 3: REJECT, the shadow removed); the ROLLED_BACK phase is deployed after it.
    assert run.failed and run.outputs["verdict"] == {"code": "3"}, run.summary()
    assert "decision REJECT" in run.output_of("shadow-test", "run")
    assert re.search(r"last verdict +SUCCEEDED .*decision REJECT", run.output_of("shadow-test", "status"))
    phase = run.ran[rolled_back.name]
    assert phase.code == 0 and f"no drift: deploying cdk.out.rolled_back's {STACK} keeps model" in phase.output, phase
    # Production untouched, on its model and instances; no shadow; the stack declares just that, without the test.
    assert run.final["status"] == "InService" and run.final["shadow"] == []
    assert run.final["production"] == run.initial["production"]
    assert "AWS::StepFunctions::StateMachine" not in run.stack_resources
    assert "AWS::SageMaker::Endpoint" in run.stack_resources
    # The PROMOTED phase may not deploy now: it would put the rejected model into production.
    assert run.other_step is not None and run.other_step.code == 1, run.other_step
    assert f"drift: deploying cdk.out.promoted's {STACK} would put model" in run.other_step.output
    # The SHADOW phase with the same candidate passes the guard (production keeps v1): it would test it again.
    assert run.shadow_drift is not None and run.shadow_drift.code == 0, run.shadow_drift
    # The next push as the docs say (a new candidate): the guard lets it deploy, v1 keeps serving.
    assert_the_next_push_may_deploy(run, run.initial["production"][0]["ModelName"])
