"""Embedding health (mean pairwise cosine, effective rank), in evaluate and in training's metrics.csv."""

import csv
from pathlib import Path

import numpy as np
import pytest

from loc2vec_engine.evaluation.health import embedding_health, effective_rank, mean_pairwise_cosine


def test_effective_rank_of_known_matrices():
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((50, 1)), rng.standard_normal((1, 16))
    assert effective_rank(u @ v) == pytest.approx(1.0, abs=1e-9)  # rank 1
    assert effective_rank(np.eye(16)) == pytest.approx(16.0, abs=1e-9)  # orthogonal, equal lengths
    q, _ = np.linalg.qr(rng.standard_normal((64, 8)))
    assert effective_rank(q.T * 3.0) == pytest.approx(8.0, abs=1e-9)  # orthonormal rows, any scale
    # two directions, singular values 3 and 1: exp(entropy of (0.75, 0.25))
    m = np.diag([3.0, 1.0])
    assert effective_rank(m) == pytest.approx(np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25))), abs=1e-12)
    assert np.isnan(effective_rank(np.zeros((4, 3))))


def test_mean_pairwise_cosine():
    assert mean_pairwise_cosine(np.tile([[1.0, 2.0, -1.0]], (10, 1)) * np.arange(1, 11)[:, None]) == \
        pytest.approx(1.0, abs=1e-12)  # collapsed: one direction, any lengths
    assert mean_pairwise_cosine(np.eye(5)) == pytest.approx(0.0, abs=1e-12)
    assert mean_pairwise_cosine(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-1.0, abs=1e-12)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 4))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = u @ u.T
    brute = (c.sum() - np.trace(c)) / (30 * 29)
    assert mean_pairwise_cosine(x) == pytest.approx(brute, abs=1e-12)
    assert np.isnan(mean_pairwise_cosine(x[:1]))


def test_health_takes_torch_and_reports_the_centred_rank():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    offset = np.zeros(6)
    offset[0] = 10.0
    x = offset + rng.standard_normal((40, 6)) * 0.1  # a big shared offset, spread in every direction
    h = embedding_health(torch.from_numpy(x).float())
    assert h["n"] == 40 and h["dim"] == 6
    assert h["mean_cos"] > 0.99 and h["eff_rank"] < 1.5  # looks collapsed (about 1.3) ...
    assert h["eff_rank_centred"] > 5.0  # ... but places differ in all six directions around the offset


# ---- training's metrics.csv --------------------------------------------------------------------------

def _rows(run):
    with open(Path(run) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_training_logs_health_at_each_validation(andorra_area, tmp_path):
    pytest.importorskip("torch")
    from loc2vec_engine.training.config import TrainConfig
    from loc2vec_engine.training.loop import METRIC_FIELDS, train

    cfg = TrainConfig(areas=[str(andorra_area)], out=str(tmp_path / "run"), steps=6, encoder="loc2vec",
                      embedding_dim=16, tile_size_px=32, batch_size=8, val_every=3, val_triplets=32, log_every=2,
                      lr=1e-3, device="cpu")
    train(cfg, progress=lambda f, m: False)
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == METRIC_FIELDS and header[-2:] == ["mean_cos", "eff_rank"]
    rows = _rows(tmp_path / "run")
    validated = [r for r in rows if r["val_acc"]]
    assert [r["step"] for r in validated] == ["0", "3", "6"]
    for r in validated:
        assert -1.0 <= float(r["mean_cos"]) <= 1.0 and 1.0 <= float(r["eff_rank"]) <= 16.0
    assert all(r["mean_cos"] == "" and r["eff_rank"] == "" for r in rows if not r["val_acc"])


def test_resume_rewrites_an_old_metrics_csv_with_the_new_columns(tmp_path):
    from loc2vec_engine.training.loop import METRIC_FIELDS, _truncate_metrics

    path = tmp_path / "metrics.csv"
    old = ["step", "elapsed_s", "lr", "train_loss", "train_acc", "active", "val_acc"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=old)
        w.writeheader()
        w.writerows([{"step": s, "elapsed_s": s, "lr": 0.001, "train_loss": 0.5, "train_acc": 0.6, "active": 0.1,
                      "val_acc": 0.7} for s in (10, 20, 30)])
    _truncate_metrics(path, 20)
    rows = _rows(tmp_path)
    assert list(rows[0]) == METRIC_FIELDS and [r["step"] for r in rows] == ["10", "20"]
    assert rows[1]["val_acc"] == "0.7" and rows[1]["mean_cos"] == ""
