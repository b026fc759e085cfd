"""The documentation's examples run: every ```python block of README.md, docs/**/*.md and
shadow_emulator/README.md is executed (construct snippets inside a stack of one shared App, synthesized
once), every `shadow-test` / `shadow-report` line of a ```bash block parses with the command's own
parser, every `make` line names a Makefile target, and every relative link resolves.

What a python block is, is said by an HTML comment on the line before its fence:

- no comment: a complete program, run as is in a fresh namespace (so a missing import fails). A
  `cdk.App()` it makes writes into a scratch folder and is synthesized (if the program did not);
- ``<!-- example: in-stack -->``: runs in a fresh namespace holding only ``stack``, a new `cdk.Stack`
  of the shared App;
- ``<!-- example: continues -->``: runs in the namespace (and stack) of the previous python block of
  the same file, as a reader who ran that one would;
- ``<!-- example: skip REASON -->``: not run (only for content Python cannot run; the reason is required).

Any other marker fails, and so does a block that does not run.
"""

from __future__ import annotations

import json
import re
import shlex
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import cx_api
from conftest import ROOT
from constructs import Construct

from shadow_cli.shadow_test import build_parser as shadow_test_parser
from shadow_report.cli import parser as shadow_report_parser

DOCS = sorted([ROOT / "README.md", ROOT / "shadow_emulator" / "README.md", *(ROOT / "docs").rglob("*.md")])
MARKER = re.compile(r"^<!--\s*example:\s*(?P<kind>[\w-]+)\s*(?P<arg>.*?)\s*-->$")
KINDS = {"in-stack", "continues", "skip"}
PYTHON = {"python", "py", "python3"}
SHELL = {"bash", "sh", "shell", "console"}


@dataclass
class Block:
    path: Path
    line: int  # the opening fence's, 1-based
    lang: str
    code: str
    marker: str | None  # the comment's text, if any
    kind: str = "program"
    arg: str = ""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = re.match(r"^\s*```(\S*)", lines[i])
        if not fence:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = previous if previous.startswith("<!--") and "example:" in previous else None
        block = Block(path, start + 1, fence.group(1).lower(), "\n".join(lines[start + 1:i]) + "\n", marker)
        if marker and (m := MARKER.match(marker)):
            block.kind, block.arg = m.group("kind"), m.group("arg")
        found.append(block)
        i += 1
    return found


BLOCKS = [b for path in DOCS for b in blocks_of(path)]
PYTHON_BLOCKS = [b for b in BLOCKS if b.lang in PYTHON]


def python_block(path: str, containing: str) -> Block:
    blocks = [b for b in PYTHON_BLOCKS if b.path == ROOT / path and containing in b.code]
    assert len(blocks) == 1, f"expected one python block of {path} with {containing!r}, found {len(blocks)}"
    return blocks[0]


def test_every_marker_is_known_and_stands_before_a_python_block():
    for block in BLOCKS:
        if block.marker is None:
            continue
        assert MARKER.match(block.marker) and block.kind in KINDS, \
            f"{block.id}: unknown marker {block.marker!r}; use in-stack, continues or skip REASON"
        assert block.lang in PYTHON, f"{block.id}: a marker stands before a {block.lang or 'plain'} block"
        if block.kind == "skip":
            assert block.arg, f"{block.id}: a skipped block must say why"
        else:
            assert not block.arg, f"{block.id}: {block.kind} takes no argument, got {block.arg!r}"


def test_the_docs_hold_python_examples_of_every_kind():
    # Guards the parser above: if it stopped finding blocks, every test below would pass on nothing.
    kinds = {b.kind for b in PYTHON_BLOCKS}
    assert {"program", "in-stack", "continues"} <= kinds
    assert len(PYTHON_BLOCKS) >= 12


@dataclass
class Run:
    namespace: dict[str, Any]
    stack: cdk.Stack | None = None
    error: str | None = None
    apps: list[cdk.App] = field(default_factory=list)
    assemblies: list[cx_api.CloudAssembly] = field(default_factory=list)


def unused_constructs(namespace: dict[str, Any], apps: list[cdk.App]) -> str | None:
    """A construct class the example defines but never instantiates would run nothing of its body."""
    defined = {v for v in namespace.values()
               if isinstance(v, type) and issubclass(v, Construct) and v.__module__ == namespace["__name__"]}
    if not defined:
        return None
    used = {type(node) for app in apps for node in app.node.find_all()}
    unused = sorted(c.__name__ for c in defined - used)
    return f"defines {', '.join(unused)} but never instantiates it in an App" if unused else None


def stack_id(block: Block) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", f"{block.path.relative_to(ROOT).with_suffix('')}-L{block.line}")


def run_examples() -> dict[str, Run]:
    """Every python block run in document order; the shared App (every in-stack block's stack) synthesized once."""
    shared = cdk.App(outdir=tempfile.mkdtemp(prefix="docs-examples-"))
    made: list[cdk.App] = []

    class ScratchApp(cdk.App):  # a program's `cdk.App()`: same App, written into a scratch folder
        def __init__(self, **props: Any) -> None:
            props.setdefault("outdir", tempfile.mkdtemp(prefix="docs-example-app-"))
            super().__init__(**props)
            made.append(self)

    results: dict[str, Run] = {}
    last: dict[Path, Run] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # examples name the project's files relative to its root (models/…, lambda)
        patch.setattr(cdk, "App", ScratchApp)
        for block in PYTHON_BLOCKS:
            if block.kind == "skip":
                continue
            if block.kind == "continues":
                before = last.get(block.path)
                if before is None or before.error:
                    results[block.id] = last[block.path] = Run({}, error="the block it continues did not run")
                    continue
                run = Run(before.namespace, before.stack)
            elif block.kind == "in-stack":
                stack = cdk.Stack(shared, stack_id(block))
                run = Run({"__name__": "docs_example", "stack": stack}, stack)
            else:
                run = Run({"__name__": "docs_example"})
            made.clear()
            try:
                exec(compile(block.code, block.id, "exec"), run.namespace)  # noqa: S102 - the docs' own examples
                run.apps = list(made)
                run.assemblies = [app.synth() for app in run.apps]  # cached when the program synthesized
                run.error = unused_constructs(run.namespace, run.apps or [shared])
            except Exception:
                run.error = traceback.format_exc(limit=-3)
            results[block.id] = last[block.path] = run
    try:
        assembly = shared.synth()
    except Exception:
        error = traceback.format_exc(limit=-3)
        for run in results.values():
            if run.stack is not None and run.error is None:
                run.error = f"the shared App's synthesis failed:\n{error}"
    else:
        for run in results.values():
            if run.stack is not None and run.error is None:
                run.assemblies = [assembly]
    return results


def errors_of(assembly: cx_api.CloudAssembly, stack_names: set[str] | None) -> list[str]:
    return [f"{message.id}: {message.entry.data}"
            for artifact in assembly.stacks_recursively
            if stack_names is None or artifact.stack_name in stack_names
            for message in artifact.messages if message.level == cx_api.SynthesisMessageLevel.ERROR]


def problem_of(run: Run) -> str | None:
    if run.error is not None:
        return f"did not run:\n{run.error}"
    if run.stack is not None and not run.assemblies[0].get_stack_by_name(run.stack.stack_name).template.get("Resources"):
        return "its stack synthesized no resources"
    names = {run.stack.stack_name} if run.stack is not None else None
    errors = [e for assembly in run.assemblies for e in errors_of(assembly, names)]
    return f"synthesis reported errors: {errors}" if errors else None


def template_in(run: Run, name: str) -> dict:
    return next(a for assembly in run.assemblies for a in assembly.stacks_recursively if a.stack_name == name).template


def resources(template: dict, kind: str) -> list[dict]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


# What some examples say they show, checked on what they made (block: file and a string only it holds).

def the_readme_example_is_a_shadow_test_that_ends_itself(run: Run) -> None:
    template = template_in(run, "ChurnShadow")
    (config,) = resources(template, "AWS::SageMaker::EndpointConfig")
    assert config["Properties"]["ShadowProductionVariants"][0]["InitialVariantWeight"] == 0.5
    assert len(resources(template, "AWS::StepFunctions::StateMachine")) == 1
    assert len(resources(template, "Custom::ShadowTestEnd")) == 1


def the_phase_example_renders_the_promoted_phase(run: Run) -> None:
    (config,) = resources(template_in(run, run.stack.stack_name), "AWS::SageMaker::EndpointConfig")
    assert "ShadowProductionVariants" not in config["Properties"]
    assert config["Properties"]["ProductionVariants"][0]["ModelName"] == run.stack.resolve(run.namespace["v2"].model_name)


def the_pipeline_example_stops_unless_promoted(run: Run) -> None:
    (pipeline,) = resources(template_in(run, "ShadowPipeline"), "AWS::CodePipeline::Pipeline")
    stages = pipeline["Properties"]["Stages"]
    assert [s["Name"] for s in stages][-2:] == ["Shadow", "Promoted"]
    verdict = next(a for a in stages[-2]["Actions"] if a["ActionTypeId"]["Provider"] == "StepFunctions")
    assert json.loads(verdict["Configuration"]["Input"]) == {"follow": True, "fail_unless_promoted": True}
    # Both stages deploy the same CloudFormation stack: the Promoted stage updates what the Shadow stage made.
    deployed = {a["Configuration"]["StackName"] for s in stages[-2:] for a in s["Actions"]
                if a["ActionTypeId"]["Provider"] == "CloudFormation"}
    assert deployed == {"ChurnShadow"}


def the_verdict_example_shows_what_its_comments_say(run: Run) -> None:
    verdict = run.namespace["verdict"]
    assert (verdict.decision, verdict.score, run.namespace["latency"].status) == ("PROMOTE", 100.0, "lower")


def the_criteria_example_fills_the_defaults(run: Run) -> None:
    criteria = run.namespace["criteria"]
    assert (criteria.confidence, criteria.latency_tolerance, criteria.min_agreement) == (0.98, 0.1, 0.95)


CLAIMS = {
    ("README.md", "class ChurnShadowStack"): the_readme_example_is_a_shadow_test_that_ends_itself,
    ("docs/lifecycle.md", "phase=TestPhase.PROMOTED"): the_phase_example_renders_the_promoted_phase,
    ("docs/lifecycle.md", "ShadowVerdictStep("): the_pipeline_example_stops_unless_promoted,
    ("docs/verdict.md", "compare("): the_verdict_example_shows_what_its_comments_say,
    ("docs/verdict.md", "Criteria.from_mapping("): the_criteria_example_fills_the_defaults,
}


def test_every_python_example_runs_and_synthesizes():
    # One test, not one per block: the examples share one App and one synthesis, so they run in one
    # pytest-xdist worker; every failing block is listed.
    runs = run_examples()
    problems = {block_id: problem for block_id, run in runs.items() if (problem := problem_of(run))}
    for (path, containing), claim in CLAIMS.items():
        block_id = python_block(path, containing).id
        if block_id not in problems:
            try:
                claim(runs[block_id])
            except AssertionError:
                problems[block_id] = f"{claim.__name__} does not hold:\n{traceback.format_exc(limit=-1)}"
    assert not problems, "\n\n".join(f"{block_id}: {problem}" for block_id, problem in problems.items())


# ---- shell blocks ----------------------------------------------------------------------------------

def shell_commands(block: Block) -> list[list[str]]:
    """The command lines of a shell block: continuations joined, comments and leading VAR=value dropped."""
    commands = []
    for line in block.code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words.pop(0)
        if words:
            commands.append(words)
    return commands


SHELL_LINES = [(b, words) for b in BLOCKS if b.lang in SHELL for words in shell_commands(b)]
PARSERS = {"shadow-test": shadow_test_parser, "shadow-report": shadow_report_parser}


@pytest.mark.parametrize(("block", "words"), [(b, w) for b, w in SHELL_LINES if Path(w[0]).name in PARSERS],
                         ids=lambda x: x.id if isinstance(x, Block) else " ".join(x[:2]))
def test_every_command_line_of_the_docs_parses(block, words):
    parser = PARSERS[Path(words[0]).name]()
    try:
        parser.parse_args(words[1:])
    except SystemExit as exit_:
        pytest.fail(f"{block.id}: {' '.join(words)!r} does not parse (exit {exit_.code})")


def makefile_targets() -> set[str]:
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M)}


def test_every_make_line_of_the_docs_names_a_target():
    lines = [(b, w) for b, w in SHELL_LINES if w[0] == "make"]
    assert any(w[1:2] == ["demo"] for _, w in lines) and any(w[1:2] == ["test"] for _, w in lines)
    for block, words in lines:
        targets = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
        assert set(targets) <= makefile_targets(), f"{block.id}: {' '.join(words)!r} names an unknown target"


def test_ci_runs_the_readme_commands():
    readme = [w for b, w in SHELL_LINES if b.path.name == "README.md" and b.path.parent == ROOT and w[0] == "make"]
    ci = [shlex.split(line) for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make")]
    assert sorted(ci) == sorted(readme) == [["make", "demo"], ["make", "test"]]


# ---- size and links --------------------------------------------------------------------------------

def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_bytes()) <= 20 * 1024


def anchors_of(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return {re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc):
    text = re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.M | re.S))  # no code
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (doc.parent / file).resolve() if file else doc
        assert linked.exists(), f"{doc.relative_to(ROOT)}: link to {target} names no file"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors_of(linked), f"{doc.relative_to(ROOT)}: link to {target} names no heading"
