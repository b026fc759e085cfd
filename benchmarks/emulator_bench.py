"""How fast the local emulator serves InvokeEndpoint (the demo's and the lifecycle tests' traffic).

Starts ``python -m shadow_emulator`` on a free port, deploys the reference endpoint (churn v1 in
production, v2 as a 50% shadow, capture on) through the SageMaker API, then sends the demo's CSV rows
with the demo's concurrency and prints requests per second and milliseconds per request, and the CPU time
per request of the emulator and of this driver: on a shared machine the wall time is noisy, the CPU time
much less so. The driver sends as the demo does (``--client sender``: scripts/demo.py's
InvokeEndpointSender, botocore's serializer, SigV4 signer and parser on kept-alive connections) or
through boto3's ``invoke_endpoint`` (``--client boto3``).

    .venv/bin/python benchmarks/emulator_bench.py [--requests 3000] [--threads 4] [--client sender|boto3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from scripts.build_models import churn_data  # noqa: E402
from scripts.demo import InvokeEndpointSender  # noqa: E402
from shadow_emulator.ports import free_port  # noqa: E402

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def deploy(url: str) -> tuple[object, str]:
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    config = Config(retries={"max_attempts": 2}, max_pool_connections=8)
    s3, sagemaker = (session.client(s, endpoint_url=url, config=config) for s in ("s3", "sagemaker"))
    s3.create_bucket(Bucket="models")
    for version in ("v1", "v2"):
        s3.put_object(Bucket="models", Key=f"churn-{version}.tar.gz",
                      Body=(ROOT / "models" / f"churn-{version}" / "model.tar.gz").read_bytes())
        sagemaker.create_model(ModelName=f"churn-{version}", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": IMAGE, "ModelDataUrl": f"s3://models/churn-{version}.tar.gz"})
    sagemaker.create_endpoint_config(
        EndpointConfigName="bench", ProductionVariants=[{
            "VariantName": "production", "ModelName": "churn-v1", "InstanceType": "ml.m5.xlarge",
            "InitialInstanceCount": 2, "InitialVariantWeight": 1.0}],
        ShadowProductionVariants=[{"VariantName": "shadow", "ModelName": "churn-v2", "InstanceType": "ml.m5.xlarge",
                                   "InitialInstanceCount": 1, "InitialVariantWeight": 0.5}],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://models/capture",
                           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
    sagemaker.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
    return session.client("sagemaker-runtime", endpoint_url=url, config=config), "bench"


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (Linux's /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--client", choices=("sender", "boto3"), default="sender",
                        help="how the driver sends: as the demo does (default), or with boto3's invoke_endpoint")
    parser.add_argument("--py-spy", metavar="FILE", help="record the emulator with py-spy (if installed) into FILE "
                                                        "(speedscope JSON) while the traffic runs")
    args = parser.parse_args(argv)
    port = free_port()
    url = f"http://localhost:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    emulator = subprocess.Popen([sys.executable, "-m", "shadow_emulator", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/_shadow_emulator/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        runtime, endpoint = deploy(url)
        if args.client == "sender":
            from botocore.credentials import Credentials

            runtime = InvokeEndpointSender(runtime, Credentials("testing", "testing"))
        features, _ = churn_data(args.requests, seed=2026)
        rows = [",".join(f"{value:g}" for value in row) for row in features.tolist()]

        def invoke(index: int) -> None:
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=rows[index].encode(),
                                    InferenceId=f"bench-{index}")["Body"].read()

        invoke(0)  # loads both models
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(emulator.pid), "--format", "raw", "--output",
                                args.py_spy, "--rate", "200", "--nonblocking"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) if args.py_spy else None
        cpu_emulator, cpu_driver = process_cpu_seconds(emulator.pid), time.process_time()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            list(pool.map(invoke, range(1, args.requests)))
        seconds = time.perf_counter() - started
        cpu_emulator = process_cpu_seconds(emulator.pid) - cpu_emulator
        cpu_driver = time.process_time() - cpu_driver
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=60)
        counts = json.loads(urllib.request.urlopen(f"{url}/_shadow_emulator/counts").read())["counts"][endpoint]
        served = ", ".join(f"{variant} {numbers['invocations']}" for variant, numbers in counts.items())
        print(f"{args.requests - 1} requests, {args.threads} threads: {seconds:.1f} s, "
              f"{(args.requests - 1) / seconds:.0f} requests/s, {1000 * seconds / (args.requests - 1):.1f} ms each "
              f"(served: {served}); CPU per request: emulator {1000 * cpu_emulator / (args.requests - 1):.1f} ms, "
              f"driver ({args.client}) {1000 * cpu_driver / (args.requests - 1):.1f} ms; load average {os.getloadavg()[0]:.1f}")
    finally:
        emulator.terminate()
        emulator.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
