"""The committed churn models: SageMaker's archive layout, real predictions, reproducible bytes."""

from __future__ import annotations

import importlib.util
import io
import tarfile

import numpy as np
import pytest
import xgboost as xgb
from conftest import MODELS, ROOT

spec = importlib.util.spec_from_file_location("build_models", ROOT / "scripts" / "build_models.py")
build_models = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_models)


def booster_of(name: str) -> xgb.Booster:
    with tarfile.open(MODELS / name / "model.tar.gz") as tar:
        assert tar.getnames() == ["xgboost-model"]  # the file the SageMaker XGBoost container loads
        raw = tar.extractfile("xgboost-model").read()
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    return booster


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@pytest.mark.parametrize("name", ["churn-v1", "churn-v2", "churn-v2-regressed"])
def test_model_answers_headerless_csv_rows_with_probabilities(name):
    booster = booster_of(name)
    rows = "5,99.0,495.0,1,4,1,1,2\n60,30.0,1800.0,24,0,4,0,0\n"
    features = np.loadtxt(io.StringIO(rows), delimiter=",", dtype=np.float32)
    scores = booster.predict(xgb.DMatrix(features))
    assert scores.shape == (2,) and np.all((scores > 0) & (scores < 1))
    assert scores[0] > 0.5 > scores[1]  # a new, unhappy customer churns; a loyal one stays


def test_candidate_ranks_churners_better_than_production():
    x, y = build_models.churn_data(5000, seed=99)
    dmatrix = xgb.DMatrix(x)
    v1, v2 = (auc(y, booster_of(n).predict(dmatrix)) for n in ("churn-v1", "churn-v2"))
    assert 0.7 < v1 < v2


def test_build_script_reproduces_the_committed_archives(tmp_path):
    build_models.main(["--out", str(tmp_path)])
    for name in ("churn-v1", "churn-v2", "churn-v2-regressed"):
        assert (tmp_path / name / "model.tar.gz").read_bytes() == (MODELS / name / "model.tar.gz").read_bytes()


def test_regressed_candidate_is_a_much_larger_model_than_version_2():
    # What makes SCENARIO=regressed slower: ten times the trees, deeper, so each prediction walks far more nodes.
    sizes = {name: len(booster_of(name).get_dump()) for name in ("churn-v2", "churn-v2-regressed")}
    assert sizes["churn-v2-regressed"] == 800 and sizes["churn-v2"] == 80
