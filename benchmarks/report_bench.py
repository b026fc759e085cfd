"""Benchmark shadow-report against a plain-Python json loop and the bare DuckDB pairing query, on generated capture data.

    .venv/bin/python benchmarks/report_bench.py                      # 1,000,000 then 10,000,000 records
    .venv/bin/python benchmarks/report_bench.py --records 200000 --smaller 20000 --runs 1
    .venv/bin/python benchmarks/report_bench.py --data /tmp/capture  # keep (and reuse) the generated data there

Generates capture files in SageMaker's layout (CSV feature rows in, churn probabilities out; production gets
every request, the shadow a 50% sample, so two thirds of the records are production's; 24 hours, files of at
most 2,000 records), then runs three commands, each in a fresh process whose own peak memory (max RSS) and CPU time
(user and system, all threads) the kernel reports (``os.wait4``), each ``--runs`` times, taking turns (the best time
is kept, the largest peak RSS and the least CPU time; the load average before and after is printed with them):

- shadow-report: the ``shadow-report`` command itself (DuckDB, every measure, report.md / report.json and the
  three PNGs written);
- loop: a plain-Python loop, ``json.loads`` per line into dicts, pairing in memory, mean / median / p99 absolute
  difference and agreement;
- bare query: the one DuckDB query a user would write, the fastest way DuckDB reads these files: ``read_text`` of the
  files, each line parsed as JSON for the two fields it needs (``json_extract_string`` of the inferenceId and the
  output's data), the two variants joined on inferenceId, mean absolute difference and agreement. No problem
  records, duplicates, windows, hours, quantiles, KS, PSI, samples or plots. ``--bare read_json`` runs it with
  ``read_json`` and an explicit schema of the same two fields instead (about 15% more CPU here: it builds the structs
  of every record; its options records=true, compression='none', maximum_object_size change nothing measurable).

All three print the same paired count, mean absolute difference and agreement (shown, to prove they agree).
Targets of shadow-report (printed; nothing here is timed in the test suite): at least 5 times faster than the
loop, within 3 times the bare query, and a peak RSS of at most 500 MB at 10,000,000 records.
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


# The bare query, in the two ways DuckDB reads the files (--bare chooses; read_text is the faster, measured side by
# side on the bench data: about 15% less CPU). Both read every line of the same files, parse it as JSON, take only the
# inferenceId and the output's data, and pair by inferenceId with one hash join.
_PAIR_AND_MEASURE = r'''
connection = duckdb.connect()
connection.execute("SET enable_progress_bar = false")  # it would print on stdout
paired, mean, agreement = connection.execute(f"""
    SELECT count(*), avg(abs(s.x - p.x)), avg(CASE WHEN (p.x >= 0.5) = (s.x >= 0.5) THEN 1.0 ELSE 0.0 END)
    FROM ({variant('production')}) p JOIN ({variant('shadow')}) s USING (id)""").fetchone()
print(json.dumps({"paired": paired, "mean_abs_diff": mean, "agreement": float(agreement)}))
'''
BARE = {"read_text": r'''
import json, sys, duckdb
root = sys.argv[1]
def variant(name):
    return (f"SELECT f[1] AS id, f[2]::DOUBLE AS x FROM ("
            f"SELECT json_extract_string(line, ['$.eventMetadata.inferenceId', '$.captureData.endpointOutput.data']) AS f "
            f"FROM (SELECT unnest(string_split(content, chr(10))) AS line FROM read_text('{root}/*/{name}/*/*/*/*/*.jsonl')) "
            f"WHERE line <> '')")
''' + _PAIR_AND_MEASURE, "read_json": r'''
import json, sys, duckdb
root = sys.argv[1]
columns = "{'captureData': 'STRUCT(endpointOutput STRUCT(data VARCHAR))', 'eventMetadata': 'STRUCT(inferenceId VARCHAR)'}"
def variant(name):
    return (f"SELECT eventMetadata.inferenceId AS id, captureData.endpointOutput.data::DOUBLE AS x "
            f"FROM read_json('{root}/*/{name}/*/*/*/*/*.jsonl', format = 'newline_delimited', columns = {columns})")
''' + _PAIR_AND_MEASURE}

def run_measured(command: list[str]) -> tuple[float, float, str, float]:
    """Run ``command`` in a fresh process: (seconds, its own peak RSS in MiB via os.wait4, stdout, its CPU seconds:
    user and system, all its threads)."""
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
    return elapsed, usage.ru_maxrss / 1024, b"".join(out_chunks).decode(), usage.ru_utime + usage.ru_stime


def best_of(runs: int, commands: dict[str, list[str]]) -> dict[str, tuple[float, float, str, float]]:
    """Each command run ``runs`` times, the commands taking turns (so a change of load on the machine touches them
    alike): for each, the best time, the largest peak RSS, the last run's stdout and the least CPU time."""
    measured: dict[str, list[tuple[float, float, str, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            measured[name].append(run_measured(command))
    return {name: (min(m[0] for m in runs_), max(m[1] for m in runs_), runs_[-1][2], min(m[3] for m in runs_))
            for name, runs_ in measured.items()}


def bench(records: int, workdir: Path, runs: int, bare: str = "read_text") -> dict:
    data = workdir / f"capture-{records}"
    started = time.perf_counter()
    if (data / "datacapture").is_dir():  # kept from an earlier run with --data
        size = sum(p.stat().st_size for p in (data / "datacapture").rglob("*.jsonl"))
    else:
        size = generate(data, records)
    generated = time.perf_counter() - started
    load_before = os.getloadavg()[0]
    root, out = str(data / "datacapture"), workdir / f"report-{records}"
    results = best_of(runs, {"report": [str(SCRIPT), root, "--out", str(out), "--no-progress"],
                             "loop": [sys.executable, "-c", BASELINE, root], "bare": [sys.executable, "-c", BARE[bare], root]})
    (report_s, report_mb, _, report_cpu), (loop_s, loop_mb, loop_out, loop_cpu), (bare_s, bare_mb, bare_out, bare_cpu) = (
        results["report"], results["loop"], results["bare"])
    report, loop, bare = json.loads((out / "report.json").read_text()), json.loads(loop_out), json.loads(bare_out)
    return {"records": records, "mb": size / 1e6, "generated_s": generated,
            "report_s": report_s, "report_mb": report_mb, "loop_s": loop_s, "loop_mb": loop_mb, "bare_s": bare_s, "bare_mb": bare_mb,
            "report_cpu": report_cpu, "loop_cpu": loop_cpu, "bare_cpu": bare_cpu, "load": (load_before, os.getloadavg()[0]),
            "paired": (report["pairing"]["paired"], loop["paired"], bare["paired"]),
            "mean_abs_diff": (report["numeric"]["mean_abs_diff"], loop["mean_abs_diff"], bare["mean_abs_diff"]),
            "agreement": (report["labels"]["agreement"], loop["agreement"], bare["agreement"])}


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--records", type=int, default=10_000_000, help="records of the larger run (default: 10,000,000)")
    cli.add_argument("--smaller", type=int, default=None, help="the smaller run (default: records / 10)")
    cli.add_argument("--runs", type=int, default=3, help="runs of each command; the best time is kept (default: 3)")
    cli.add_argument("--dir", help="where to generate (default: a temporary folder, removed afterwards)")
    cli.add_argument("--data", help="a folder to generate into and keep; data already there is reused")
    cli.add_argument("--bare", choices=sorted(BARE), default="read_text",
                     help="how the bare query reads the files (default: read_text, the faster)")
    args = cli.parse_args()
    sizes = sorted({args.smaller or max(args.records // 10, 1000), args.records})
    if args.data:
        Path(args.data).mkdir(parents=True, exist_ok=True)
        results = [bench(n, Path(args.data), args.runs, args.bare) for n in sizes]
    else:
        with tempfile.TemporaryDirectory(prefix="report-bench-", dir=args.dir) as workdir:
            results = [bench(n, Path(workdir), args.runs, args.bare) for n in sizes]
    print(f"cpu cores: {os.cpu_count()}, python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}, "
          f"best of {args.runs} runs, bare query by {args.bare}")
    print("wall: best of the runs; CPU: user + system of all threads, least of the runs; load: load average before / after")
    print("| records | capture MB | load | shadow-report wall, CPU (peak RSS) | loop wall, CPU (peak RSS) |"
          " bare query wall, CPU (peak RSS) | loop / shadow-report |"
          " shadow-report / bare | paired (report / loop / bare) | mean abs diff (report / loop / bare) |"
          " agreement (report / loop / bare) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
    for r in results:
        print(f"| {r['records']:,} | {r['mb']:,.0f} | {r['load'][0]:.1f} / {r['load'][1]:.1f} | "
              f"{r['report_s']:.2f} s, {r['report_cpu']:.2f} s ({r['report_mb']:,.0f} MiB) | "
              f"{r['loop_s']:.2f} s, {r['loop_cpu']:.2f} s ({r['loop_mb']:,.0f} MiB) | "
              f"{r['bare_s']:.2f} s, {r['bare_cpu']:.2f} s ({r['bare_mb']:,.0f} MiB) | "
              f"{r['loop_s'] / r['report_s']:.1f}x | {r['report_s'] / r['bare_s']:.1f}x | "
              f"{' / '.join(f'{v:,}' for v in r['paired'])} | {' / '.join(f'{v:.9f}' for v in r['mean_abs_diff'])} | "
              f"{' / '.join(f'{v:.6f}' for v in r['agreement'])} |")
    print("targets: loop / shadow-report >= 5x, shadow-report / bare <= 3x at 1,000,000 records; "
          "shadow-report peak RSS <= 500 MB at 10,000,000")


if __name__ == "__main__":
    main()
