"""One instrumented synthesis, in this process; prints where its time went as one JSON line.

``synth_bench.py`` runs this in a fresh process per sample, with the environment the CDK CLI gives an
app (``CDK_CONTEXT_JSON`` with cdk.json's context and the CLI's own keys, ``CDK_DEFAULT_REGION``, ...),
so the app builds what ``cdk synth`` builds. It measures:

- the phases, on the Python side: the imports (``import aws_cdk`` starts Node and the jsii kernel and loads
  aws-cdk-lib; the example imports app.py first, as ``cdk synth`` runs it, and with it the stacks and the
  aws_cdk service modules), cdk_nag's import, each stack's construction, cdk-nag's plugin, ``app.synth()``;
- every jsii round trip (the kernel's ``send`` wrapped): count and time per kind, per phase, per caller;
- CDK's own performance counters (``CDK_PERF_COUNTERS_FILE``, written when the synth is "slow", i.e. always
  with the ``@aws-cdk/core.slowSynthThreshold`` context set to 0): built-in template validation
  (``validateTemplates``, which also runs the cdk-nag plugin, and ``CloudFormationValidate.validate``), asset
  fingerprinting and staging, ``Stack.resolve``.

    python benchmarks/_synth_profile.py example|empty [--node-profile DIR]
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import collections  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SLOW_SYNTH_CONTEXT = "@aws-cdk/core.slowSynthThreshold"


class JsiiCounter:
    """Wraps the jsii kernel's ``send``: each call is one round trip to Node and back."""

    def __init__(self) -> None:
        self.phase = "start"
        self.calls: collections.Counter = collections.Counter()  # (phase, kind)
        self.seconds: collections.Counter = collections.Counter()  # kind
        self.callers: collections.Counter = collections.Counter()  # "file:function" of ours
        self.targets: collections.Counter = collections.Counter()  # "kind fqn/member"

    def install(self) -> None:
        from jsii._kernel.providers import process

        original = process._NodeProcess.send
        counter = self

        def send(node_process, request, response_type):
            start = time.perf_counter()
            try:
                return original(node_process, request, response_type)
            finally:
                counter.record(request, time.perf_counter() - start)

        process._NodeProcess.send = send

    def record(self, request, seconds: float) -> None:
        kind = type(request).__name__.removesuffix("Request").lstrip("_").lower()
        self.calls[(self.phase, kind)] += 1
        self.seconds[kind] += seconds
        member = getattr(request, "method", None) or getattr(request, "property", None) or ""
        self.targets[f"{kind} {getattr(request, 'fqn', '') or ''}{'.' if member else ''}{member}".strip()] += 1
        frame = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith(str(ROOT)) and "/.venv/" not in name and "/benchmarks/" not in name:
                self.callers[f"{os.path.relpath(name, ROOT)}:{frame.f_code.co_name}"] += 1
                break
            frame = frame.f_back


def timed(factory, label: str, phases: dict[str, float], counter: JsiiCounter):
    """``factory`` (a class) wrapped so that each call's time lands in ``phases[label]``."""

    def make(*args, **kwargs):
        previous, counter.phase = counter.phase, label
        start = time.perf_counter()
        try:
            return factory(*args, **kwargs)
        finally:
            phases[label] = phases.get(label, 0.0) + time.perf_counter() - start
            counter.phase = previous

    return make


def main() -> None:
    which = sys.argv[1]
    wrapper = None
    if "--node-profile" in sys.argv:  # a V8 CPU profile of the jsii kernel's Node process
        folder = sys.argv[sys.argv.index("--node-profile") + 1]
        wrapper = Path(tempfile.mkdtemp(prefix="node-prof-")) / "node"
        wrapper.write_text(f'#!/bin/sh\nexec node --cpu-prof --cpu-prof-dir={folder} --cpu-prof-interval 500 "$@"\n')
        wrapper.chmod(0o755)
        os.environ["JSII_NODE"] = str(wrapper)
    counters_file = Path(tempfile.mkdtemp(prefix="perf-")) / "counters.json"
    os.environ["CDK_PERF_COUNTERS_FILE"] = str(counters_file)
    context = json.loads(os.environ.get("CDK_CONTEXT_JSON", "{}"))
    context[SLOW_SYNTH_CONTEXT] = 0  # always write the counters file (context changes no template)
    os.environ["CDK_CONTEXT_JSON"] = json.dumps(context)

    counter = JsiiCounter()
    counter.install()
    phases: dict[str, float] = {}

    def phase(label: str, start: float) -> float:
        now = time.perf_counter()
        phases[label] = phases.get(label, 0.0) + now - start
        return now

    t = time.perf_counter()
    phases["python start"] = t - T_START
    counter.phase = "import"
    if which == "empty":
        import aws_cdk as cdk

        t = phase("import", t)
        counter.phase = "construct"
        app = cdk.App()
        cdk.Stack(app, "Empty")
        t = phase("construct", t)
    else:
        import app as example  # first, as `cdk synth` runs it: it imports aws_cdk (starting Node) its own way

        cdk = example.cdk

        t = phase("import", t)
        nag = str(context.get("nag", "true")).lower() != "false"
        if nag:
            counter.phase = "import cdk_nag"
            import cdk_nag

            t = phase("import cdk_nag", t)
            cdk_nag.AwsSolutionsChecks = timed(cdk_nag.AwsSolutionsChecks, "construct: cdk-nag plugin", phases,
                                               counter)
        example.ShadowTestStack = timed(example.ShadowTestStack, "construct: ChurnShadowTest", phases, counter)
        example.ManagedShadowTestStack = timed(example.ManagedShadowTestStack, "construct: ChurnManagedShadowTest",
                                               phases, counter)
        counter.phase = "construct: rest"
        start = time.perf_counter()
        app = example.build_app(cdk.App())
        t = time.perf_counter()
        phases["construct: rest"] = (t - start) - sum(v for k, v in phases.items() if k.startswith("construct: "))
    counter.phase = "synth"
    app.synth()
    t = phase("app.synth()", t)
    counters = json.loads(counters_file.read_text())["counters"] if counters_file.exists() else {}
    for scratch in (counters_file, wrapper):
        if scratch is not None:
            shutil.rmtree(scratch.parent, ignore_errors=True)
    print(json.dumps({
        "phases": phases,
        "total_in_process": time.perf_counter() - T_START,
        "cdk_counters": counters,
        "jsii_calls": {f"{p}|{k}": n for (p, k), n in counter.calls.items()},
        "jsii_seconds": dict(counter.seconds),
        "jsii_callers": dict(counter.callers.most_common(25)),
        "jsii_targets": dict(counter.targets.most_common(25)),
    }))


if __name__ == "__main__":
    main()
