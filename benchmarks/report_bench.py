"""Benchmark shadow-report's engine against a plain-Python json loop on generated capture data.

    .venv/bin/python benchmarks/report_bench.py                      # 100,000 then 1,000,000 records
    .venv/bin/python benchmarks/report_bench.py --records 200000 --smaller 20000

Generates capture files in SageMaker's layout (CSV feature rows in, churn probabilities out; production gets
every request, the shadow a 50% sample, so two thirds of the records are production's; 24 hours, files of at
most 2,000 records), then runs, each in a fresh process whose peak memory (max RSS) the kernel reports:

- the engine: the ``shadow-report`` command itself (DuckDB, report and plots written);
- the baseline: a plain-Python loop, ``json.loads`` per line into dicts, pairing in memory, the same measures.

Both compute the same mean absolute difference and agreement (printed, to show they agree). Run by hand;
nothing here is timed in the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "shadow-report"
FILE_RECORDS = 2000
HOURS = 24


def generate(folder: Path, records: int, seed: int = 1) -> int:
    """Write ``records`` capture records (production and a 50% shadow) under ``folder``; returns bytes written."""
    rng = random.Random(seed)
    requests = math.ceil(records / 1.5)
    per_hour = math.ceil(requests / HOURS)
    written, left, bytes_written = 0, records, 0
    for hour in range(HOURS):
        batch = {"production": [], "shadow": []}
        for i in range(hour * per_hour, min((hour + 1) * per_hour, requests)):
            if left <= 0:
                break
            tenure, charges, calls = rng.randint(1, 72), rng.uniform(18, 120), rng.randint(0, 6)
            features = (f"{tenure},{charges:.2f},{tenure * charges:.2f},{rng.choice((1, 12, 24))},{calls},"
                        f"{rng.randint(1, 5)},{rng.randint(0, 1)},{rng.randint(0, 4)}")
            p = 1 / (1 + math.exp(-(calls * 0.6 - tenure * 0.05 + rng.gauss(0, 1))))
            s = min(1.0, max(0.0, p + rng.gauss(0, 0.02)))
            minute, second = divmod((i - hour * per_hour) * 3600 // per_hour, 60)
            stamp = f"2026-11-25T{hour:02d}:{minute:02d}:{second:02d}Z"
            for variant, value in (("production", p), ("shadow", s)):
                if variant == "shadow" and (i % 2 or left <= 0):
                    continue
                batch[variant].append(
                    f'{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{features}",'
                    f'"encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT",'
                    f'"data":"{value:.7f}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{rng.getrandbits(32):08x}-{variant[0]}",'
                    f'"inferenceId":"req-{i}","inferenceTime":"{stamp}"}},"eventVersion":"0"}}')
                left -= 1
                written += 1
        for variant, lines in batch.items():
            folder_hour = folder / "datacapture" / "churn" / variant / "2026" / "11" / "25" / f"{hour:02d}"
            folder_hour.mkdir(parents=True, exist_ok=True)
            for start in range(0, len(lines), FILE_RECORDS):
                path = folder_hour / f"{start // FILE_RECORDS:04d}-{variant}.jsonl"
                text = "\n".join(lines[start:start + FILE_RECORDS]) + "\n"
                path.write_text(text)
                bytes_written += len(text)
    assert written == records, (written, records)
    return bytes_written


BASELINE = r'''
import json, os, sys, base64
root = sys.argv[1]
values = {"production": {}, "shadow": {}}
for directory, _, names in os.walk(root):
    for name in sorted(names):
        variant = directory.split(os.sep)[-5]
        with open(os.path.join(directory, name)) as handle:
            for line in handle:
                record = json.loads(line)
                output = record["captureData"]["endpointOutput"]
                data = output["data"] if output["encoding"] != "BASE64" else base64.b64decode(output["data"]).decode()
                values[variant][record["eventMetadata"]["inferenceId"]] = float(data)
production, shadow = values["production"], values["shadow"]
pairs = [(production[i], shadow[i]) for i in shadow if i in production]
diffs = sorted(abs(s - p) for p, s in pairs)
n = len(diffs)
mean = sum(diffs) / n
def quantile(q):
    h = (n - 1) * q
    lo = int(h)
    return diffs[lo] + (h - lo) * (diffs[min(lo + 1, n - 1)] - diffs[lo])
agreement = sum((p >= 0.5) == (s >= 0.5) for p, s in pairs) / n
print(json.dumps({"paired": n, "mean_abs_diff": mean, "median_abs_diff": quantile(0.5), "p99_abs_diff": quantile(0.99),
                  "agreement": agreement}))
'''


def run_measured(command: list[str]) -> tuple[float, float, str]:
    """Run ``command`` in a fresh process: (seconds, its own peak RSS in MiB via os.wait4, stdout)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out_chunks, err_chunks = [], []
    # Read pipes to the end before waiting, so the child cannot block on a full pipe.
    out_chunks.append(child.stdout.read())
    err_chunks.append(child.stderr.read())
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if child.returncode:
        raise SystemExit(f"{command[0]} failed: {b''.join(err_chunks).decode().strip()}")
    return elapsed, usage.ru_maxrss / 1024, b"".join(out_chunks).decode()


def bench(records: int, workdir: Path) -> dict:
    data = workdir / f"capture-{records}"
    started = time.perf_counter()
    size = generate(data, records)
    generated = time.perf_counter() - started
    out = workdir / f"report-{records}"
    engine_s, engine_mb, _ = run_measured([str(SCRIPT), str(data / "datacapture"), "--out", str(out), "--no-progress"])
    report = json.loads((out / "report.json").read_text())
    baseline_s, baseline_mb, baseline_out = run_measured([sys.executable, "-c", BASELINE, str(data / "datacapture")])
    baseline = json.loads(baseline_out)
    return {"records": records, "mb": size / 1e6, "generated_s": generated,
            "engine_s": engine_s, "engine_mb": engine_mb, "baseline_s": baseline_s, "baseline_mb": baseline_mb,
            "paired": report["pairing"]["paired"], "baseline_paired": baseline["paired"],
            "mean_abs_diff": report["numeric"]["mean_abs_diff"], "baseline_mean_abs_diff": baseline["mean_abs_diff"],
            "agreement": report["labels"]["agreement"], "baseline_agreement": baseline["agreement"]}


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--records", type=int, default=1_000_000, help="records to generate (default: 1,000,000)")
    cli.add_argument("--smaller", type=int, default=None, help="the second, smaller size (default: records / 10)")
    cli.add_argument("--dir", help="where to generate (default: a temporary folder, removed afterwards)")
    args = cli.parse_args()
    sizes = [args.smaller or max(args.records // 10, 1000), args.records]
    with tempfile.TemporaryDirectory(prefix="report-bench-", dir=args.dir) as workdir:
        results = [bench(n, Path(workdir)) for n in sizes]
    print(f"cpu cores: {os.cpu_count()}, python {sys.version.split()[0]}")
    print("| records | capture MB | engine records/s | engine peak RSS | baseline records/s | baseline peak RSS |"
          " paired (engine / baseline) | mean abs diff (engine / baseline) | agreement (engine / baseline) |")
    print("|---:|---:|---:|---:|---:|---:|---|---|---|")
    for r in results:
        print(f"| {r['records']:,} | {r['mb']:,.0f} | {r['records'] / r['engine_s']:,.0f} ({r['engine_s']:.1f} s) | "
              f"{r['engine_mb']:,.0f} MiB | {r['records'] / r['baseline_s']:,.0f} ({r['baseline_s']:.1f} s) | "
              f"{r['baseline_mb']:,.0f} MiB | {r['paired']:,} / {r['baseline_paired']:,} | "
              f"{r['mean_abs_diff']:.9f} / {r['baseline_mean_abs_diff']:.9f} | {r['agreement']:.6f} / {r['baseline_agreement']:.6f} |")


if __name__ == "__main__":
    main()
