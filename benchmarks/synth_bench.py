"""Synthesis time of the example app against an empty CDK app, and where the difference goes.

Three parts, each sample in a fresh process (the machine may be shared: every figure is the best of
``--runs`` samples, taken alternating so that drift hits every case alike; medians in brackets):

1. ``cdk synth`` with the real CLI (node_modules/.bin/cdk) and CDK's defaults: an empty CDK app (one
   empty stack) against the example app (cdk.json as it is: both stacks, cdk-nag on, CDK's built-in
   template validation on); the example's templates re-created from raw ``CfnResource``s (what the
   templates alone cost); the example with cdk-nag off (``-c nag=false``); the same with the built-in
   validation off (``CDK_VALIDATION=false``); and the empty app with the V8 thread pool app.py sets for its
   jsii kernel (``NODE_OPTIONS=--v8-pool-size=0``), the like-for-like floor. Wall time and CPU time
   (user + system of the CLI, Python and Node).
2. A profile of one synthesis (``_synth_profile.py``, run with the environment the CLI gives the app):
   Python-side phases (imports, each stack's construction, ``app.synth()``), CDK's own performance
   counters (built-in validation, the cdk-nag plugin, asset staging) and the jsii round trips (count,
   time, who makes them).
3. With ``--node-profile``: a V8 CPU profile of the jsii kernel's Node process, in buckets (validation
   engine start, template validation, cdk-nag's rules, loading JavaScript modules, waiting for Python, ...).

    .venv/bin/python benchmarks/synth_bench.py [--runs 3] [--skip-cli] [--skip-profile] [--node-profile]
                                               [--compare DIR]

Target: example / empty app <= 1.8 under CDK's defaults.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDK = ROOT / "node_modules" / ".bin" / "cdk"
PROFILER = Path(__file__).resolve().parent / "_synth_profile.py"
EMPTY_APP = "import aws_cdk as cdk\napp = cdk.App()\ncdk.Stack(app, 'Empty')\napp.synth()\n"
# The same, giving its jsii kernel the V8 thread pool app.py gives the example's (the like-for-like floor).
EMPTY_POOL_APP = "import os\nos.environ['NODE_OPTIONS'] = '--v8-pool-size=0'\n" + EMPTY_APP
# The example's own templates re-created from raw CfnResources (same stacks, resources, types and properties,
# none of our constructs, no cdk-nag): what the templates alone cost, validation included.
RAW_L1_APP = """
import json, aws_cdk as cdk
app = cdk.App()
for name, path in {templates!r}.items():
    template = json.load(open(path))
    stack = cdk.Stack(app, name, description=template.get("Description"))
    for mapping, body in template.get("Mappings", {{}}).items():
        cdk.CfnMapping(stack, mapping, mapping=body)
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CDK::Metadata":  # CDK adds its own
            cdk.CfnResource(stack, logical_id, type=resource["Type"], properties=resource.get("Properties"))
app.synth()
"""
TARGET = 1.8

# (name, validation mode, extra CLI arguments or an app for --app, extra environment)
NAG_OFF = ["-c", "nag=false"]
VALIDATION_OFF = {"CDK_VALIDATION": "false"}
EMPTY, EMPTY_POOL, RAW_L1 = "empty", "empty, V8 pool", "raw L1"  # apps given with --app
V8_POOL = {"NODE_OPTIONS": "--v8-pool-size=0"}  # what app.py sets for its jsii kernel
EMPTY_V8_POOL = "empty app, V8 pool as app.py"
CLI_CASES = [
    ("empty CDK app", "defaults", EMPTY, {}),
    (EMPTY_V8_POOL, "defaults", EMPTY_POOL, {}),
    ("same templates, raw L1", "defaults", RAW_L1, {}),
    ("example app", "defaults", [], {}),
    ("example app, cdk-nag off", "defaults", NAG_OFF, {}),
    ("empty CDK app", "validation off", EMPTY, VALIDATION_OFF),
    ("same templates, raw L1", "validation off", RAW_L1, VALIDATION_OFF),
    ("example app", "validation off", [], VALIDATION_OFF),
    ("example app, cdk-nag off", "validation off", NAG_OFF, VALIDATION_OFF),
]
COMPARED = " (--compare)"


def cli_cases(compare: Path | None) -> list:
    """The CLI cases; with ``--compare DIR``, the example app of another checkout (e.g. the last commit) too."""
    if compare is None:
        return CLI_CASES
    return CLI_CASES[:4] + [("example app" + COMPARED, "defaults", [], {})] + CLI_CASES[4:]


# (column, app, cdk-nag on, built-in validation on, context overrides)
ONE_STACK = {"managed-test": {"endpoint_name": None}}  # leaves ChurnManagedShadowTest out
PROFILE_CASES = [  # "empty+pool": the empty app with the V8 pool app.py sets, the floor of the "ex.-floor" column
    ("empty", "empty", False, True, {}),
    ("empty+pool", "empty", False, True, {}),
    ("example", "example", True, True, {}),
    ("nag off", "example", False, True, {}),
    ("valid. off", "example", True, False, {}),
    ("1 stack", "example", True, True, ONE_STACK),
]


def base_env() -> dict[str, str]:
    env = dict(os.environ, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_CLI_TELEMETRY="true")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # cdk.json runs `python3 app.py`
    for key in ("CDK_VALIDATION", "JSII_NODE", "CDK_CONTEXT_JSON", "CDK_OUTDIR", "NODE_OPTIONS"):
        env.pop(key, None)
    return env


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux): a jsii kernel whose Python gave up waiting for it (jsii waits 5 s, then
    signals it and leaves) is then still waited for, so that its CPU time counts and it cannot slow the next sample."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap_orphans() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def timed_run(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU seconds (user + system of the whole process tree, orphans included) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done


def empty_app_file(source: str = EMPTY_APP) -> Path:
    path = Path(tempfile.mkdtemp(prefix="empty-app-")) / "empty_app.py"
    path.write_text(source)
    return path


def raw_l1_app_file() -> Path:
    """The raw-L1 app, over the templates of one (untimed) `cdk synth` of the example."""
    folder = Path(tempfile.mkdtemp(prefix="raw-l1-app-"))
    subprocess.run([str(CDK), "synth", "-q", "-o", str(folder / "cdk.out")], cwd=ROOT, env=base_env(), check=True,
                   capture_output=True)
    templates = {p.name.removesuffix(".template.json"): str(p) for p in sorted((folder / "cdk.out").glob("*.template.json"))}
    path = folder / "raw_l1_app.py"
    path.write_text(RAW_L1_APP.format(templates=templates))
    return path


# Part 1: the CLI


def cli_samples(runs: int, compare: Path | None) -> dict[tuple[str, str], list[tuple[float, float]]]:
    apps = {EMPTY: empty_app_file(), EMPTY_POOL: empty_app_file(EMPTY_POOL_APP), RAW_L1: raw_l1_app_file()}
    samples: dict[tuple[str, str], list[tuple[float, float]]] = collections.defaultdict(list)
    for _ in range(runs):
        for name, mode, args, extra in cli_cases(compare):
            outdir = tempfile.mkdtemp(prefix="bench-cdk-out-")
            cmd = [str(CDK), "synth", "-q", "-o", outdir]
            cmd += ["--app", f"{sys.executable} {apps[args]}"] if isinstance(args, str) else args
            cwd = compare if compare is not None and name.endswith(COMPARED) else ROOT
            wall, cpu, _ = timed_run(cmd, {**base_env(), **extra}, cwd)
            samples[(name, mode)].append((wall, cpu))
            shutil.rmtree(outdir, ignore_errors=True)
    return samples


def print_cli(samples, runs: int, compare: Path | None) -> dict[str, float]:
    print(f"1. `cdk synth` (real CLI), best of {runs} (median in brackets); ratio = best / best of the empty app "
          "in the same mode")
    if compare is not None:
        print(f"   {COMPARED.strip()}: {compare}")
    print(f"   {'app':<30} {'mode':<15} {'wall s':>14} {'CPU s':>14} {'wall ratio':>10} {'CPU ratio':>9}")
    ratios = {}
    for name, mode, _, _ in cli_cases(compare):
        walls = [w for w, _ in samples[(name, mode)]]
        cpus = [c for _, c in samples[(name, mode)]]
        floor_wall = min(w for w, _ in samples[("empty CDK app", mode)])
        floor_cpu = min(c for _, c in samples[("empty CDK app", mode)])
        ratio = min(walls) / floor_wall
        ratios[f"{name} | {mode}"] = ratio
        print(f"   {name:<30} {mode:<15} {min(walls):>6.2f} ({statistics.median(walls):>5.2f}) "
              f"{min(cpus):>6.2f} ({statistics.median(cpus):>5.2f}) {ratio:>10.2f} {min(cpus) / floor_cpu:>9.2f}")
    verdict = "met" if ratios["example app | defaults"] <= TARGET else "NOT met"
    print(f"   target: example app / empty CDK app <= {TARGET} under CDK's defaults: "
          f"{ratios['example app | defaults']:.2f}, {verdict}")
    same_pool = min(w for w, _ in samples[("example app", "defaults")]) / min(w for w, _ in samples[(EMPTY_V8_POOL, "defaults")])
    print(f"   example app / empty app with the V8 pool app.py sets (--v8-pool-size=0): {same_pool:.2f}")
    return ratios


# Part 2: the profile


def cli_app_environment() -> dict[str, str]:
    """The CDK_* environment the CLI gives an app (cdk.json's context and the CLI's own keys), captured once."""
    folder = Path(tempfile.mkdtemp(prefix="cli-env-"))
    dump = folder / "env.json"
    script = folder / "dump_env.py"
    script.write_text("import json, os\n"
                      f"json.dump({{k: v for k, v in os.environ.items() if k.startswith('CDK_')}}, open({str(dump)!r}, 'w'))\n")
    subprocess.run([str(CDK), "synth", "-q", "-o", str(folder / "out"), "--app", f"{sys.executable} {script}"],
                   cwd=ROOT, env=base_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fails: no stacks
    captured = json.loads(dump.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    for key in ("CDK_OUTDIR", "CDK_ERROR_FILE", "CDK_PERF_COUNTERS_FILE"):
        captured.pop(key, None)
    return captured


def profile_once(app: str, nag: bool, validation: bool, cli_env: dict[str, str], overrides: dict | None = None,
                 extra_args: list[str] | None = None, pool: bool = False) -> dict:
    env = {**base_env(), **cli_env, "CDK_OUTDIR": tempfile.mkdtemp(prefix="bench-profile-")}
    context = {**json.loads(env.get("CDK_CONTEXT_JSON", "{}")), **(overrides or {})}
    if not nag:
        context["nag"] = "false"
    env["CDK_CONTEXT_JSON"] = json.dumps(context)
    if not validation:
        env.update(VALIDATION_OFF)
    if pool:
        env.update(V8_POOL)
    wall, cpu, done = timed_run([sys.executable, str(PROFILER), app, *(extra_args or [])], env)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"], result["cpu"] = wall, cpu
    outdir = Path(env["CDK_OUTDIR"])
    result["resources"] = {p.name.removesuffix(".template.json"): len(json.loads(p.read_text()).get("Resources", {}))
                           for p in sorted(outdir.glob("*.template.json"))}
    shutil.rmtree(outdir, ignore_errors=True)
    return result


def rows_of(result: dict) -> dict[str, float]:
    """The profile's rows (seconds) of one sample."""
    phases, counters = result["phases"], result["cdk_counters"]
    ms = lambda key: counters.get(key, 0) / 1000  # noqa: E731
    synth = phases["app.synth()"]
    rows = {
        "whole process (wall)": result["wall"],
        "whole process (CPU, user+sys)": result["cpu"],
        "Python start; exit (waits for Node to exit)": result["wall"] - result["total_in_process"] + phases["python start"],
        "import aws_cdk (Node, jsii, aws-cdk-lib), app modules": phases["import"],
        "import cdk_nag (+ jsii load)": phases.get("import cdk_nag", 0.0),
        "construct ChurnShadowTest": phases.get("construct: ChurnShadowTest", 0.0),
        "construct ChurnManagedShadowTest": phases.get("construct: ChurnManagedShadowTest", 0.0),
        "construct the rest (App, cdk-nag plugin)": sum(v for k, v in phases.items()
                                                        if k in ("construct", "construct: rest",
                                                                 "construct: cdk-nag plugin")),
        "app.synth()": synth,
        "  built-in validation + plugins (validateTemplates)": ms("validateTemplates"),
        "    CloudFormation validate of the templates": ms("CloudFormation" + "Validate.validate"),
        "    engine start, cdk-nag plugin, report": ms("validateTemplates") - ms("CloudFormationValidate.validate"),
        "  synthesis proper (prepare, resolve, write)": synth - ms("validateTemplates"),
        "    of which Stack.resolve": ms("Stack.resolve"),
        "    of which asset fingerprint + staging copy": ms("FileSystem.fingerprint") + ms("FileSystem.copyDirectory")
        + ms("FileSystem.copyFile"),
        "jsii round trips (time in send, all phases)": sum(result["jsii_seconds"].values()),
    }
    return rows


def print_profile(samples: dict[str, list[dict]], runs: int) -> None:
    print(f"\n2. Profile of one synthesis in a fresh process (the CLI's environment for the app), best of {runs} "
          "per row and column; seconds")
    columns = [name for name, *_ in PROFILE_CASES]
    best: dict[str, dict[str, float]] = {}
    for name in columns:
        per_row = collections.defaultdict(list)
        for result in samples[name]:
            for row, value in rows_of(result).items():
                per_row[row].append(value)
        best[name] = {row: min(values) for row, values in per_row.items()}
    rows = list(best[columns[0]])
    print(f"   {'':<52}" + "".join(f"{c:>11}" for c in columns) + f"{'ex.-floor':>11}")
    for row in rows:
        values = [best[c][row] for c in columns]
        extra = best["example"][row] - best["empty+pool"][row]
        print(f"   {row:<52}" + "".join(f"{v:>11.2f}" for v in values) + f"{extra:>11.2f}")
    example = samples["example"][0]
    print(f"   resources: {example['resources']}; constructs: {example['cdk_counters'].get('count:Constructs(cnt)')}; "
          f"1 stack: ChurnShadowTest only (managed-test context without endpoint_name)")
    nag_wall = best["example"]["whole process (wall)"] - best["nag off"]["whole process (wall)"]
    nag_cpu = best["example"]["whole process (CPU, user+sys)"] - best["nag off"]["whole process (CPU, user+sys)"]
    val_wall = best["example"]["whole process (wall)"] - best["valid. off"]["whole process (wall)"]
    print(f"   cdk-nag costs {nag_wall:.2f} s wall / {nag_cpu:.2f} s CPU (example - nag off); the built-in validation "
          f"{val_wall:.2f} s wall (example - valid. off), of which the empty app pays "
          f"{best['empty+pool']['  built-in validation + plugins (validateTemplates)']:.2f} s too (V8 pool as app.py), "
          f"{best['empty']['  built-in validation + plugins (validateTemplates)']:.2f} s with Node's default pool")
    print("   ex.-floor: example - empty+pool (the same Node settings); the example runs app.py, which sets the pool")

    calls = collections.Counter()
    by_phase = collections.Counter()
    for key, count in example["jsii_calls"].items():
        phase, kind = key.split("|")
        calls[kind] += count
        by_phase[phase] += count
    total = sum(calls.values())
    print(f"\n   jsii round trips of the example (defaults): {total} "
          f"({', '.join(f'{k} {n}' for k, n in calls.most_common())})")
    print(f"     by phase: {', '.join(f'{k} {n}' for k, n in by_phase.most_common())}")
    seconds = sum(example["jsii_seconds"].values())
    construct_calls = sum(n for p, n in by_phase.items() if p.startswith("construct"))
    construct_time = sum(v for k, v in example["phases"].items() if k.startswith("construct"))
    print(f"     time in send: {seconds:.2f} s (Node's work for the call included); construction: "
          f"{construct_calls} calls in {construct_time:.2f} s = {1000 * construct_time / max(1, construct_calls):.2f} ms "
          "per call, Python and Node together")
    print("     most calls from:  " + ", ".join(f"{k} {n}" for k, n in list(example["jsii_callers"].items())[:10]))
    print("     most called:      " + ", ".join(f"{k} {n}" for k, n in list(example["jsii_targets"].items())[:10]))


# Part 3: a V8 profile of the jsii kernel


BUCKETS = [  # (bucket, pattern on the function labels of a sample's stack); first match wins
    ("validation engine start (wasm, same in every app)", r"^WasmCompositeEngine "),
    ("CloudFormation validation of the templates (wasm)", r"^validateTemplate .*bindings_wasm"),
    ("cdk-nag rules", r"^walkTree .*cdk-nag"),
    ("waiting for Python (jsii request read)", r"^readSync "),
    ("writing jsii responses", r"^writeSync "),
    ("loading JavaScript modules (require)", r"^Module\._load "),
    ("garbage collection", r"^\(garbage collector\)"),
    ("synthesis (prepare, resolve, write, stage)", r"^synthesize .*synthesis\.js"),
    ("construction (aws-cdk-lib code, jsii kernel)", r"."),
]


def node_profile_buckets(path: Path) -> dict[str, float]:
    profile = json.loads(path.read_text())
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {child: n["id"] for n in profile["nodes"] for child in n.get("children", [])}

    def label(node: dict) -> str:
        frame = node["callFrame"]
        url = re.sub(r".*/node_modules/", "", frame["url"])
        return f"{frame['functionName'] or '(anonymous)'} {url}"

    self_time = collections.Counter()
    for sample, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        self_time[sample] += delta
    buckets = collections.Counter()
    for node_id, micros in self_time.items():
        leaf = label(nodes[node_id])
        if leaf.startswith("(idle)"):
            buckets["idle"] += micros
            continue
        stack = []
        current = node_id
        while current is not None:
            stack.append(label(nodes[current]))
            current = parent.get(current)
        for bucket, pattern in BUCKETS:
            if any(re.search(pattern, frame) for frame in stack):
                buckets[bucket] += micros
                break
    return {bucket: micros / 1e6 for bucket, micros in buckets.items()}


def print_node_profile(cli_env: dict[str, str]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="node-profile-"))
    result = profile_once("example", True, True, cli_env, extra_args=["--node-profile", str(folder)])
    profiles = sorted(folder.glob("*.cpuprofile"), key=lambda p: p.stat().st_size)
    buckets = node_profile_buckets(profiles[-1])  # the kernel's child process does the work
    total = sum(buckets.values())
    print(f"\n3. V8 CPU profile of the jsii kernel (Node) during one example synth (wall {result['wall']:.2f} s, "
          "profiling slows it down); seconds")
    for bucket, _ in BUCKETS + [("idle", "")]:
        if bucket in buckets:
            print(f"   {bucket:<52} {buckets[bucket]:>6.2f}  {100 * buckets[bucket] / total:>4.0f}%")
    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="samples per case (the best is shown)")
    parser.add_argument("--skip-cli", action="store_true", help="skip part 1 (the CLI timings)")
    parser.add_argument("--skip-profile", action="store_true", help="skip part 2 (the profile)")
    parser.add_argument("--node-profile", action="store_true", help="add part 3 (a V8 profile of the kernel)")
    parser.add_argument("--compare", type=Path, help="part 1 also times the example app of this checkout "
                        "(e.g. `git worktree add /tmp/base HEAD`; it needs node_modules, e.g. a symlink)")
    args = parser.parse_args()
    tempfile.tempdir = tempfile.mkdtemp(prefix="synth-bench-")  # every scratch folder of this run, removed at the end
    try:
        run(args)
    finally:
        shutil.rmtree(tempfile.tempdir, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    if not become_subreaper():
        print("(not Linux: CPU times may miss a jsii kernel that outlives its Python)")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if not args.skip_cli:
        print_cli(cli_samples(args.runs, args.compare), args.runs, args.compare)
    cli_env = cli_app_environment() if not args.skip_profile or args.node_profile else {}
    if not args.skip_profile:
        samples: dict[str, list[dict]] = collections.defaultdict(list)
        for _ in range(args.runs):
            for name, app, nag, validation, overrides in PROFILE_CASES:
                samples[name].append(profile_once(app, nag, validation, cli_env, overrides, pool=name.endswith("+pool")))
        print_profile(samples, args.runs)
    if args.node_profile:
        print_node_profile(cli_env)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
