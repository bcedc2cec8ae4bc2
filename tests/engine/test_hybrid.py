"""The hybrid model: learned embedding ⊕ standardised multi-scale composition, computed by the ONNX graph itself.

Real pieces: the shipped checkpoint as the learned part, real Andorra and Porto areas for the statistics,
onnxruntime for the exported file, ``measure_model`` / ``loc2vec evaluate`` for the parts scored alone.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from loc2vec_engine.encoders.composition import (WINDOWS, CompositionStats, centred_window, hybrid_parts,
                                                 multiscale_fractions)
from loc2vec_engine.errors import Loc2VecError

from ..conftest import DATA, REPO

CHECKPOINT = REPO / "resources" / "models" / "loc2vec-default.pt"  # the shipped model's learned part
ANDORRA_PBF = DATA / "andorra_2020-05-01.osm.pbf"


def _tiles(n=6, size=64, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.random((n, 12, size, size)) < rng.random((n, 12, 1, 1)) * 0.4) * 255).astype(np.uint8)


def test_multiscale_fractions_numpy_and_torch_agree_and_use_centred_windows():
    import torch

    t = np.zeros((1, 12, 64, 64), np.uint8)
    w = centred_window(64, 0.3)
    t[0, 3, w, w] = 255  # only the innermost window is full
    f = multiscale_fractions(t).reshape(len(WINDOWS), 12)
    assert f[0, 3] == 1.0 and f[1, 3] == pytest.approx((20 * 20) / (38 * 38)) and f[2, 3] == pytest.approx(400 / 4096)
    assert f[:, :3].sum() == 0 and f[:, 4:].sum() == 0
    x = _tiles()
    np.testing.assert_allclose(multiscale_fractions(torch.from_numpy(x)).numpy(), multiscale_fractions(x), atol=1e-6)
    np.testing.assert_allclose(multiscale_fractions(torch.from_numpy(x).float() / 255).numpy(),
                               multiscale_fractions(x), atol=1e-6)


def test_statistics_come_equally_from_each_area_and_round_trip(andorra_area, porto_area):
    from loc2vec_engine.training.hybrid import composition_statistics

    st = composition_statistics([andorra_area, porto_area], 500.0, 64, tiles_per_area=40)
    assert st.tiles == 80 and st.mean.shape == (36,) and (st.std > 0).all()
    again = CompositionStats.from_meta(json.loads(json.dumps(st.to_meta())))
    np.testing.assert_array_equal(again.mean, st.mean)
    assert again.windows == WINDOWS
    # Porto is dense, Andorra mostly valley and forest: the pooled building share lies between the two alone
    a = composition_statistics([andorra_area], 500.0, 64, tiles_per_area=40).mean
    p = composition_statistics([porto_area], 500.0, 64, tiles_per_area=40).mean
    assert min(a[24 + 3], p[24 + 3]) <= st.mean[24 + 3] <= max(a[24 + 3], p[24 + 3])


@pytest.fixture(scope="module")
def hybrid_onnx(andorra_area, porto_area, tmp_path_factory):
    out = tmp_path_factory.mktemp("hybrid") / "hybrid.onnx"
    r = subprocess.run([sys.executable, "-m", "loc2vec_engine.cli", "export", str(CHECKPOINT), "--out", str(out),
                        "--hybrid-share", "0.4", "--composition-areas", str(andorra_area), str(porto_area)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "hybrid" in r.stdout
    return out


def _learned(x):
    """The learned part's own vectors, from the checkpoint with torch (not through the hybrid graph)."""
    import torch

    from loc2vec_engine.encoders import load_encoder

    model = load_encoder(CHECKPOINT).eval()
    with torch.no_grad():
        return model(torch.from_numpy(x).float() / 255).numpy()


def test_the_onnx_graph_computes_learned_part_and_composition(hybrid_onnx):
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder

    enc = OnnxEncoder(hybrid_onnx, "cpu")
    parts = hybrid_parts(enc.meta)
    assert [(p["name"], p["start"], p["stop"]) for p in parts] == [("learned", 0, 128), ("composition", 128, 164)]
    assert enc.embedding_size == 164 and enc.meta["hybrid"]["share"] == 0.4
    x = _tiles(7)
    got = enc.embed(x)
    st = CompositionStats.from_meta(enc.meta["hybrid"]["composition"])
    z = st.standardise(multiscale_fractions(x)) / np.sqrt(36)
    want = np.concatenate([np.sqrt(0.6) * _learned(x), np.sqrt(0.4) * z], axis=1)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-5)  # float32 graph against a float64 reference
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # the learned part, renormalised, is the learned model's own vector
    cut = got[:, :128] / np.linalg.norm(got[:, :128], axis=1, keepdims=True)
    np.testing.assert_allclose(cut, _learned(x), atol=1e-5)


def test_the_sqrt_transform_is_in_the_graph_too(andorra_area, porto_area, tmp_path):
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder

    out = tmp_path / "sqrt.onnx"
    r = subprocess.run([sys.executable, "-m", "loc2vec_engine.cli", "export", str(CHECKPOINT), "--out", str(out),
                        "--hybrid-share", "0.5", "--composition-transform", "sqrt",
                        "--composition-areas", str(andorra_area), str(porto_area)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    enc = OnnxEncoder(out, "cpu")
    st = CompositionStats.from_meta(enc.meta["hybrid"]["composition"])
    assert st.transform == "sqrt"
    x = _tiles(5, seed=3)
    z = (np.sqrt(multiscale_fractions(x)) - st.mean) / st.std / np.sqrt(36)  # the transform by hand
    want = np.concatenate([np.sqrt(0.5) * _learned(x), np.sqrt(0.5) * z], axis=1)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(enc.embed(x), want, atol=1e-5)


def test_statistics_meta_without_a_transform_reads_as_linear_and_a_bad_one_is_refused():
    meta = CompositionStats.fit(np.random.default_rng(0).random((10, 36))).to_meta()
    del meta["transform"]  # as written before transforms existed
    assert CompositionStats.from_meta(meta).transform == "linear"
    with pytest.raises(Loc2VecError, match="inconsistent"):
        CompositionStats.from_meta({**meta, "transform": "cube"})
    with pytest.raises(Loc2VecError, match="unknown composition transform"):
        CompositionStats.fit(np.ones((3, 36)), transform="cube")


class Learned:
    """The shipped learned part alone (torch), as measure_model takes any encoder."""

    tile_size_px, tile_size_m = 64, 500.0

    def __init__(self):
        from loc2vec_engine.channels import get_spec

        self.channel_names = list(get_spec().names)
        self.meta = {"encoder": "loc2vec", "embedding_size": 128, "channel_names": self.channel_names}

    def embed(self, tiles):
        return _learned(np.ascontiguousarray(tiles))


def test_measure_scores_each_part_alone_beside_the_hybrid(hybrid_onnx, andorra_area):
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder
    from loc2vec_engine.evaluation import measure_model

    m = measure_model(OnnxEncoder(hybrid_onnx, "cpu"), andorra_area, ANDORRA_PBF, max_cells=200, max_queries=60,
                      seed=1, device="cpu", ablation=False)
    row = m["metrics"]["recall@10"]
    for s in ("model", "model_learned", "model_composition", "random_init"):
        assert row[s]["value"] is not None, s
    assert m["health"]["model_learned"]["dim"] == 128 and m["health"]["model_composition"]["dim"] == 36
    # the learned part, back at unit length, is the learned model itself: it scores what that model scores
    # (to float32 rounding, which can flip a near-tie, hence the tolerance)
    alone = measure_model(Learned(), andorra_area, ANDORRA_PBF, max_cells=200, max_queries=60, seed=1,
                          device="cpu", ablation=False)
    for key in ("recall@10", "triplet_acc_0.5-1km", "probe_macro_f1"):
        assert m["metrics"][key]["model_learned"]["value"] == pytest.approx(alone["metrics"][key]["model"]["value"],
                                                                           abs=0.02), key
    # the random-init twin is of the learned part (128-D), so "learned part vs random init" is like for like
    assert {v["baseline"] for v in m["learned_part_verdicts"]} == {"random_init", "random_conv"}
    assert all(v["text"].startswith("The learned part") for v in m["learned_part_verdicts"])


def test_a_plain_model_has_no_part_columns(andorra_area):
    from loc2vec_engine.evaluation.report import present_sets

    r = {"metrics": {"recall@10": {"model": {"value": 0.5}, "fractions": {"value": 0.4}}}}
    assert "model_learned" not in present_sets(r) and "fractions" in present_sets(r)
    assert hybrid_parts({"encoder": "loc2vec"}) == [] and hybrid_parts({"hybrid": {"parts": [{"x": 1}]}}) == []


@pytest.mark.parametrize("args, problem", [
    (["--hybrid-share", "1.5"], "must be in (0, 1)"),
    (["--composition-areas", "{andorra}"], "without --hybrid-share"),
    (["--composition-transform", "sqrt"], "without --hybrid-share"),
    (["--hybrid-share", "0.5", "--composition-areas", "{missing}"], "not found"),
    (["--hybrid-share", "0.5"], "training areas"),  # the shipped checkpoint's training areas are not here
])
def test_export_refuses_bad_hybrid_options(args, problem, andorra_area, tmp_path):
    out = tmp_path / "h.onnx"
    args = [a.format(andorra=andorra_area, missing=tmp_path / "nope.tif") for a in args]
    r = subprocess.run([sys.executable, "-m", "loc2vec_engine.cli", "export", str(CHECKPOINT), "--out", str(out),
                        *args], capture_output=True, text=True)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "error:" in r.stderr and "fix:" in r.stderr and "Traceback" not in r.stderr
    assert problem in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_hybrid_encoder_checks_its_inputs():
    import torch

    from loc2vec_engine.encoders import create_encoder
    from loc2vec_engine.encoders.hybrid import HybridEncoder

    enc = create_encoder("loc2vec", in_channels=12, embedding_dim=16)
    st = CompositionStats(np.zeros(36), np.ones(36))
    with pytest.raises(Loc2VecError, match="share"):
        HybridEncoder(enc, st, share=0.0)
    with pytest.raises(Loc2VecError, match="36"):
        HybridEncoder(enc, CompositionStats(np.zeros(12), np.ones(12)), share=0.5)
    h = HybridEncoder(enc, st, share=0.5).eval()
    with torch.no_grad():
        assert h(torch.rand(2, 12, 64, 64)).shape == (2, 16 + 36)
