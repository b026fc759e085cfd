"""The demo's cloud assembly, synthesized in the test worker's jsii process (shared by the lifecycle tests)."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from conftest import ROOT

from app import build_app

#: Traffic of the lifecycle tests whose healthy candidate must be PROMOTED: 15 paired minutes of 300 requests (the
#: shadow gets 150 a minute). CloudWatch's p99 of a minute is its ~99th-ranked request: of 75 shadow requests (2,250 in
#: all) that is the slowest one, and one request stalled by a busy 2-core CI machine (the suite's other worker,
#: pyright) moved a minute's p99 ratio enough to leave ModelLatency:p99 INCONCLUSIVE (CI: +13.8%, CI -5.2% to
#: +36.7% against the +30% tolerance). Of 150, p99 skips the slowest: the same machine's intervals narrowed from
#: ±11-17% to ±8-15% in paired runs with a busy core.
VERDICT_REQUESTS, VERDICT_MINUTES = 4500, 15


def synthesize(scenario: str, outdir: Path, phase: str | None = None, **settings: object) -> Path:
    """The cloud assembly ``make demo``'s ``cdk synth`` writes for the scenario (byte for byte the same template,
    asset manifest, manifest, metadata and tree): cdk.json's context, the demo's, and what the CLI adds; but in
    this worker's jsii process, not in a new CLI, Python and Node (about 10 s of CPU less). ``phase`` ("promoted",
    "rolled_back") as the demo's next-phase synth gives it (``-c shadow-test={"phase": ...}``), with any other
    ``ShadowTestConfig`` ``settings`` beside it."""
    context = {**json.loads((ROOT / "cdk.json").read_text())["context"],
               "shadow-test-config": f"scenarios/{scenario}.json", "managed-test": {"endpoint_name": None},
               "aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True,
               "aws:cdk:version-reporting": False, "aws:cdk:bundling-stacks": ["**"]}
    if phase is not None:
        context["shadow-test"] = {"phase": phase}
    if settings:  # over the scenario's own (its file is read after the context): a file of both, beside the assembly
        merged = {**json.loads((ROOT / "scenarios" / f"{scenario}.json").read_text()), **settings}
        outdir.parent.mkdir(parents=True, exist_ok=True)
        (outdir.parent / f"{scenario}-settings.json").write_text(json.dumps(merged))
        context["shadow-test-config"] = str(outdir.parent / f"{scenario}-settings.json")
    build_app(cdk.App(outdir=str(outdir), context=context)).synth()
    return outdir
