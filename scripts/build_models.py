"""Train the two churn models of the example shadow test and package them for SageMaker.

Writes ``models/churn-v1/model.tar.gz`` (version 1, in production),
``models/churn-v2/model.tar.gz`` (version 2, the candidate) and
``models/churn-v2-regressed/model.tar.gz`` (a candidate gone wrong: the same data as
version 2 grown into 800 deep trees, so every prediction costs several times more; the
demo's ``SCENARIO=regressed`` shadows production with it). Each archive holds one
file, ``xgboost-model``, in XGBoost's JSON model format: the layout the SageMaker
XGBoost container (image ``sagemaker-xgboost:1.7-1``) loads in algorithm mode.

The data is synthetic and generated here from a fixed seed, so the archives are
byte-for-byte reproducible: same seed, same XGBoost version, same bytes. Run by
hand after changing the data or the training; synthesis never trains.

    .venv/bin/python scripts/build_models.py
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import xgboost as xgb

ROOT = Path(__file__).resolve().parent.parent
FEATURES = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "contract_months",
    "support_calls_90d",
    "products",
    "paperless_billing",
    "late_payments_12m",
)
# Version 1 is small and shallow; version 2 sees more data and more trees.
VERSIONS = {
    "churn-v1": {"rows": 4000, "params": {"max_depth": 3, "eta": 0.3}, "rounds": 30},
    "churn-v2": {"rows": 12000, "params": {"max_depth": 4, "eta": 0.2}, "rounds": 80},
    "churn-v2-regressed": {"rows": 12000, "params": {"max_depth": 7, "eta": 0.05}, "rounds": 800},
}


def churn_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Customers with a churn label drawn from a known logistic model plus noise."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    monthly = rng.uniform(18, 120, rows).round(2)
    total = (monthly * tenure * rng.uniform(0.9, 1.1, rows)).round(2)
    contract = rng.choice([1, 12, 24], rows, p=[0.55, 0.25, 0.20])
    calls = rng.poisson(1.2, rows)
    products = rng.integers(1, 6, rows)
    paperless = rng.integers(0, 2, rows)
    late = rng.poisson(0.6, rows)
    logit = (
        -1.2
        - 0.045 * tenure
        + 0.018 * monthly
        - 0.06 * contract
        + 0.45 * calls
        - 0.25 * products
        + 0.3 * paperless
        + 0.5 * late
        + rng.normal(0, 0.5, rows)
    )
    label = (rng.uniform(0, 1, rows) < 1 / (1 + np.exp(-logit))).astype(int)
    x = np.column_stack([tenure, monthly, total, contract, calls, products, paperless, late])
    return x.astype(np.float32), label


def train(name: str, seed: int) -> bytes:
    spec = VERSIONS[name]
    x, y = churn_data(spec["rows"], seed)
    dtrain = xgb.DMatrix(x, label=y, feature_names=list(FEATURES))
    params = {"objective": "binary:logistic", "eval_metric": "auc", "seed": seed, "nthread": 1}
    params.update(spec["params"])
    booster = xgb.train(params, dtrain, num_boost_round=spec["rounds"])
    # Feature names would make the container reject headerless CSV rows; serve by position.
    booster.feature_names = None
    return bytes(booster.save_raw(raw_format="json"))


def deterministic_tar_gz(members: dict[str, bytes]) -> bytes:
    """A tar.gz whose bytes depend only on the members (no timestamps, owners or modes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for member_name, data in sorted(members.items()):
            info = tarfile.TarInfo(member_name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "models")
    args = parser.parse_args(argv)
    for seed, name in enumerate(sorted(VERSIONS), start=7):
        model = train(name, seed)
        json.loads(model)  # fail here, not in SageMaker, if the format ever changes
        target = args.out / name / "model.tar.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(deterministic_tar_gz({"xgboost-model": model}))
        print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: "
              f"{target.stat().st_size} bytes, xgboost {xgb.__version__}")


if __name__ == "__main__":
    main()
