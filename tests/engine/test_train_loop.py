"""Training end to end on real Andorra data: the loss falls, accuracy beats chance, runs resume exactly."""

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from loc2vec_engine.errors import Loc2VecError  # noqa: E402
from loc2vec_engine.training.checkpoint import load_checkpoint  # noqa: E402
from loc2vec_engine.training.config import TrainConfig  # noqa: E402
from loc2vec_engine.training.loop import train  # noqa: E402
from loc2vec_engine.training.prefetch import THREAD_NAME  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY = dict(encoder="loc2vec", embedding_dim=32, tile_size_px=32, batch_size=16, val_every=20, val_triplets=128,
            log_every=5, lr=1e-3, device="cpu")


def _free_port() -> int:
    """A port no one listens on now: a fixed one collides with another test run on the same machine."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(run):
    with open(Path(run) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _quiet(fraction, message):
    return False


@pytest.fixture(scope="module")
def trained(andorra_area, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "tiny"
    cfg = TrainConfig(areas=[str(andorra_area)], out=str(run), steps=120, **TINY)
    return train(cfg, progress=_quiet)


def test_loss_falls_and_validation_beats_chance(trained):
    rows = _rows(trained.run_dir)
    losses = [float(r["train_loss"]) for r in rows if r["train_loss"]]
    # Mined triplet losses are noisy window to window (mining hardens as the embedding improves), and
    # 120 steps follow another path on another CPU: compare the whole second half with the first windows.
    second_half = losses[len(losses) // 2:]
    assert sum(second_half) / len(second_half) < 0.85 * sum(losses[:4]) / 4, losses
    untrained = float(rows[0]["val_acc"])
    assert rows[0]["step"] == "0"
    assert trained.best_val_acc > 0.75  # held-out blocks, 32-px tiles, seconds on a CPU
    assert trained.best_val_acc > untrained + 0.05, (untrained, trained.best_val_acc)
    assert 0.5 < trained.baseline_val_acc <= 1.0
    for name in ("config.json", "metrics.csv", "curves.png", "last.pt", "best.pt", "summary.json"):
        assert (trained.run_dir / name).is_file(), name
    assert json.loads((trained.run_dir / "summary.json").read_text())["step"] == 120


def test_checkpoint_loads_weights_only(trained):
    ck = load_checkpoint(trained.run_dir / "best.pt")
    assert ck["meta"]["channel_names"][0] == "roads_major" and ck["meta"]["tile_size_px"] == 32
    assert ck["step"] % 20 == 0


def test_export_matches_torch(trained, tmp_path):
    import numpy as np
    import onnxruntime as ort

    from loc2vec_engine.encoders import create_encoder
    from loc2vec_engine.export.onnx import read_onnx_meta
    from loc2vec_engine.training.export import export_run

    out = export_run(trained.run_dir, tmp_path / "model.onnx")
    meta = read_onnx_meta(out)
    assert meta["channel_names"][:2] == ["roads_major", "roads_minor"]
    assert int(meta["tile_size_px"]) == 32
    ck = load_checkpoint(trained.run_dir / "best.pt")
    model = create_encoder(ck["meta"]["name"], in_channels=12, embedding_dim=32)
    model.load_state_dict(ck["model"])
    model.eval()
    x = torch.rand(3, 12, 32, 32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(got - model(x).detach().numpy()).max() < 1e-4


def _train_cmd(area, run, steps, resume=False, val_every=5):
    cmd = [sys.executable, "-m", "loc2vec_engine.cli", "train", str(area), "--out", str(run), "--steps", str(steps),
           "--encoder", "loc2vec", "--embedding-dim", "32", "--tile-size", "32", "--batch-size", "16",
           "--val-every", str(val_every), "--val-triplets", "32", "--lr", "1e-3", "--device", "cpu"]
    return cmd + (["--resume"] if resume else [])


def test_kill_9_then_resume_continues_exactly(andorra_area, tmp_path):
    """A run killed mid-way and resumed logs the same losses as one that never stopped."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    straight = tmp_path / "straight"
    subprocess.run(_train_cmd(andorra_area, straight, 20), check=True, env=env, capture_output=True)

    run = tmp_path / "killed"  # checkpoints at steps 5, 10, 15, 20: killed after 10, before 20
    proc = subprocess.Popen(_train_cmd(andorra_area, run, 20), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (run / "last.pt").exists() and load_checkpoint(run / "last.pt")["step"] >= 10:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = load_checkpoint(run / "last.pt")["step"]
    assert 10 <= stopped_at < 20
    subprocess.run(_train_cmd(andorra_area, run, 20, resume=True), check=True, env=env, capture_output=True)
    assert load_checkpoint(run / "last.pt")["step"] == 20
    a, b = _rows(straight), _rows(run)
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        for key in ("train_loss", "val_acc"):
            if ra[key]:
                assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-4, abs=1e-5), (ra["step"], key)


def test_full_disk_keeps_the_previous_checkpoint(andorra_area, tmp_path):
    """A checkpoint write that fails (file size limit = a full disk) leaves last.pt as it was."""
    run = tmp_path / "full"
    script = f"""
import resource, signal, sys
from loc2vec_engine.training.config import TrainConfig
from loc2vec_engine.training.loop import train
from loc2vec_engine.errors import Loc2VecError
cfg = TrainConfig(areas=[{str(andorra_area)!r}], out={str(run)!r}, steps=5, **{TINY!r})
train(cfg, progress=lambda f, m: False)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
cfg.steps = 20
try:
    train(cfg, resume=True, progress=lambda f, m: False)
except Loc2VecError as e:
    print("ERROR", e.problem)
    sys.exit(3)
"""
    TINY_VAL5 = dict(TINY, val_every=5, val_triplets=32)
    script = script.replace(repr(TINY), repr(TINY_VAL5))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "could not write checkpoint" in proc.stdout and "previous checkpoint is intact" in proc.stdout
    assert load_checkpoint(run / "last.pt")["step"] == 5
    assert not list(run.glob("*.part"))


def test_two_process_ddp_on_gloo(andorra_area, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "loc2vec_engine.cli"] + _train_cmd(andorra_area, run, 10)[3:]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_checkpoint(run / "last.pt")["step"] == 10
    assert len([r for r in _rows(run) if r["val_acc"]]) == 3  # steps 0, 5, 10: rank 0 alone writes the log


@pytest.mark.parametrize("change, message", [
    (dict(encoder="no_such_net"), "unknown encoder"),
    (dict(embedding_dim=8), "embedding size 8 is out of range"),
    (dict(batch_size=1), "batch size 1 is too small"),
])
def test_bad_settings(andorra_area, tmp_path, change, message):
    cfg = TrainConfig(areas=[str(andorra_area)], out=str(tmp_path / "run"), steps=5, **dict(TINY, **change))
    with pytest.raises(Loc2VecError, match=message):
        train(cfg, progress=_quiet)


def test_wrong_band_count(tmp_path):
    from osgeo import gdal

    bad = tmp_path / "rgb.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(bad), 64, 64, 3, gdal.GDT_Byte)
    ds.SetGeoTransform((0, 2, 0, 128, 0, -2))
    ds = None
    cfg = TrainConfig(areas=[str(bad)], out=str(tmp_path / "run"), steps=5, **TINY)
    with pytest.raises(Loc2VecError, match="has 3 bands but channel spec"):
        train(cfg, progress=_quiet)


def test_resume_without_a_run(andorra_area, tmp_path):
    cfg = TrainConfig(areas=[str(andorra_area)], out=str(tmp_path / "empty"), steps=5, **TINY)
    with pytest.raises(Loc2VecError, match="nothing to resume"):
        train(cfg, resume=True, progress=_quiet)


def test_run_folder_in_use(trained):
    cfg = TrainConfig(areas=["x.tif"], out=str(trained.run_dir), steps=5, **TINY)
    with pytest.raises(Loc2VecError, match="already holds a run"):
        train(cfg, progress=_quiet)


def test_small_area_trains_but_is_not_held_out(andorra_area, porto_area, tmp_path):
    """Porto's test piece is too small for three splits: it only trains; validation is Andorra's."""
    from loc2vec_engine.training.loop import _blocks, _load_areas

    cfg = TrainConfig(areas=[str(andorra_area), str(porto_area)], out=str(tmp_path / "two"), steps=10, **TINY)
    blocks, train_only = _blocks(cfg, _load_areas(cfg))
    assert train_only == [1]
    assert blocks[1].counts()["val"] == 0 and blocks[0].counts()["val"] > 0
    result = train(cfg, progress=_quiet)
    assert result.step == 10 and 0.0 <= result.best_val_acc <= 1.0


def test_score_on_an_unseen_area(trained, porto_area):
    """The trained model and the baseline, measured on the same triplets of a city never trained on."""
    from loc2vec_engine.encoders import load_encoder
    from loc2vec_engine.training.unseen import score_on_area

    model = load_encoder(trained.run_dir / "best.pt")
    s = score_on_area(model, model.meta, porto_area, n=64, seed=1, batch_size=32, neg_min_m=700)  # a small piece
    assert s.triplets == 64 and 0.0 <= s.model_acc <= 1.0
    assert s.baseline_acc > 0.5 and 0.0 <= s.hybrid_acc <= 1.0


def test_early_stopping(andorra_area, tmp_path):
    """With a learning rate of 0 nothing improves: the run stops after `patience` stale validations."""
    cfg = TrainConfig(areas=[str(andorra_area)], out=str(tmp_path / "early"), steps=200,
                      **dict(TINY, lr=0.0, val_every=5, patience=2, val_triplets=32))
    result = train(cfg, progress=_quiet)
    assert (result.stopped, result.step) == ("early", 15)
    assert load_checkpoint(tmp_path / "early" / "last.pt")["step"] == 15


def test_time_budget(andorra_area, tmp_path):
    cfg = TrainConfig(areas=[str(andorra_area)], out=str(tmp_path / "budget"), steps=10_000, max_minutes=0.05,
                      **dict(TINY, val_triplets=32))
    result = train(cfg, progress=_quiet, prefetch=True)
    assert result.stopped == "time" and 0 < result.step < 10_000
    assert load_checkpoint(tmp_path / "budget" / "last.pt")["step"] == result.step
    assert not [t for t in threading.enumerate() if t.name == THREAD_NAME], "the prefetch thread outlived the run"


def test_infonce_with_uniformity_and_composition_head_learns_and_resumes(andorra_area, tmp_path):
    """The contrastive recipe: its loss falls, the composition head's error falls below predicting the mean,
    validation beats the untrained model, and a resumed run restores the head (kept in last.pt)."""
    run = tmp_path / "nce"
    common = dict(areas=[str(andorra_area)], out=str(run), loss="infonce", temperature=0.1, uniformity_weight=0.1,
                  composition_weight=1.0, **TINY)
    first = train(TrainConfig(steps=60, **common), progress=_quiet)
    rows = _rows(run)
    losses = [float(r["train_loss"]) for r in rows if r["train_loss"]]
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses
    assert first.best_val_acc > float(rows[0]["val_acc"]) + 0.03
    ck = load_checkpoint(run / "last.pt")
    assert set(ck["aux"]) == {"weight", "bias"} and ck["config"]["loss"] == "infonce"
    train(TrainConfig(steps=80, **common), resume=True, progress=_quiet)
    assert int(_rows(run)[-1]["step"]) == 80


def test_unknown_loss_is_refused(andorra_area, tmp_path):
    with pytest.raises(Loc2VecError, match="unknown loss"):
        train(TrainConfig(areas=[str(andorra_area)], out=str(tmp_path / "x"), loss="cosine", **TINY))


def test_training_through_the_hybrid_exports_that_hybrid(andorra_area, tmp_path):
    """--hybrid-share at training: the loss sees learned ⊕ composition; the export is that hybrid by default,
    with the statistics it trained with (even once the areas are gone), and share 0 gives the learned part."""
    import shutil

    import numpy as np

    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder
    from loc2vec_engine.export.runtime import read_onnx_meta
    from loc2vec_engine.training.export import export_run

    area = tmp_path / "andorra.tif"
    shutil.copy(andorra_area, area)
    run = tmp_path / "hyb"
    cfg = TrainConfig(areas=[str(area)], out=str(run), steps=20, loss="infonce", hybrid_share=0.5,
                      composition_transform="sqrt", uniformity_weight=0.05, **TINY)
    result = train(cfg, progress=_quiet)
    ck = load_checkpoint(run / "last.pt")
    # the learned part was trained through the hybrid: its weights left their seeded initialisation
    from loc2vec_engine.encoders import create_encoder

    torch.manual_seed(cfg.seed)
    init = create_encoder("loc2vec", in_channels=12, embedding_dim=32).state_dict()
    moved = [k for k, v in ck["model"].items() if v.is_floating_point() and not torch.equal(v, init[k])]
    assert len(moved) > len(init) // 2, moved
    assert set(ck["model"]) and not any(k.startswith("comp_") for k in ck["model"])  # the learned part only
    assert ck["meta"]["trained_hybrid"]["share"] == 0.5
    area.unlink()  # the export must not need the training areas any more
    hybrid = export_run(run, tmp_path / "hybrid.onnx")
    meta = read_onnx_meta(hybrid)
    assert meta["hybrid"]["share"] == 0.5 and meta["hybrid"]["composition"]["transform"] == "sqrt"
    assert meta["hybrid"]["composition"]["mean"] == ck["meta"]["trained_hybrid"]["composition"]["mean"]
    assert meta["embedding_size"] == 32 + 36
    alone = export_run(run, tmp_path / "alone.onnx", hybrid_share=0)
    assert "hybrid" not in read_onnx_meta(alone) and read_onnx_meta(alone)["embedding_size"] == 32
    # the learned columns of the hybrid are the stand-alone model's, scaled by sqrt(1 - a) before the joint
    # normalisation: the same direction
    x = ((np.random.default_rng(0).random((4, 12, 32, 32)) < 0.2) * 255).astype(np.uint8)
    h, a = OnnxEncoder(hybrid, "cpu").embed(x), OnnxEncoder(alone, "cpu").embed(x)
    cos = (h[:, :32] * a).sum(1) / np.linalg.norm(h[:, :32], axis=1) / np.linalg.norm(a, axis=1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-4)
    assert result.best_val_acc > 0.5


def test_hybrid_training_refuses_the_composition_head(andorra_area, tmp_path):
    cfg = TrainConfig(areas=[str(andorra_area)], out=str(tmp_path / "x"), steps=5, loss="infonce", hybrid_share=0.5,
                      composition_weight=1.0, **TINY)
    with pytest.raises(Loc2VecError, match="exclude each other") as e:
        train(cfg, progress=_quiet)
    assert e.value.fix and not (tmp_path / "x").exists()
