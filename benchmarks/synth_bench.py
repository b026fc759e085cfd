"""Synthesis time of the example app against the floor: an empty CDK app (Node + jsii start-up).

Runs each app in a fresh Python process, alternating, several times, and prints the medians
and their ratio. Target: example / empty <= 1.3 (synthesis does no training, no network).

    .venv/bin/python benchmarks/synth_bench.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The example's own template re-created from raw CfnResources: the same resources and types
# without our constructs, so the difference to the example app is the library's own cost.
RAW_TEMPLATE_APP = """
import json, aws_cdk as cdk
t = json.load(open({template!r}))
app = cdk.App(); stack = cdk.Stack(app, "ChurnShadowTest")
for name, body in t.get("Mappings", {{}}).items():
    cdk.CfnMapping(stack, name, mapping=body)
for logical_id, r in t["Resources"].items():
    res = cdk.CfnResource(stack, logical_id, type=r["Type"], properties=r.get("Properties"))
    res.override_logical_id(logical_id)
app.synth()
"""
APPS = {
    "empty CDK app": "import aws_cdk as cdk; cdk.App().synth()",
    "same template, raw L1": RAW_TEMPLATE_APP,
    "example app, cdk-nag off": "import app; app.build_app(app.cdk.App(context={'nag': 'false'})).synth()",
    "example app (with cdk-nag)": "import app; app.build_app().synth()",
}


def run_once(code: str, validation: bool) -> float:
    env = dict(os.environ, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
               CDK_OUTDIR=tempfile.mkdtemp(prefix="bench-"))
    if not validation:
        env["CDK_VALIDATION"] = "false"  # CDK's built-in CloudFormation schema validation
    else:
        env.pop("CDK_VALIDATION", None)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    outdir = tempfile.mkdtemp(prefix="bench-template-")
    subprocess.run([sys.executable, "-c", "import app, aws_cdk as cdk; app.build_app(cdk.App(context={'nag': 'false'})).synth()"],
                   cwd=ROOT, env=dict(os.environ, CDK_OUTDIR=outdir, CDK_VALIDATION="false"), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    APPS["same template, raw L1"] = RAW_TEMPLATE_APP.format(template=str(Path(outdir) / "ChurnShadowTest.template.json"))
    modes = {"CDK defaults (built-in validation on)": True, "built-in validation off (CDK_VALIDATION=false)": False}
    times = {(mode, name): [] for mode in modes for name in APPS}
    for _ in range(args.runs):
        for mode, validation in modes.items():
            for name, code in APPS.items():  # alternate, so drift hits every app alike
                times[(mode, name)].append(run_once(code, validation))
    print(f"{args.runs} runs each, alternating; ratio = median / median of the empty app in the same mode")
    for mode in modes:
        floor = statistics.median(times[(mode, "empty CDK app")])
        print(f"\n{mode}")
        print(f"  {'app':<30} {'median s':>9} {'min s':>7} {'max s':>7} {'ratio':>6}")
        for name in APPS:
            samples = times[(mode, name)]
            median = statistics.median(samples)
            print(f"  {name:<30} {median:>9.2f} {min(samples):>7.2f} {max(samples):>7.2f} {median / floor:>6.2f}")


if __name__ == "__main__":
    main()
