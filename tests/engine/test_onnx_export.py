"""ONNX export: round trip against torch, metadata in the file, dynamic batch, refusing foreign files."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import loc2vec_engine  # noqa: E402
from loc2vec_engine.encoders import create_encoder  # noqa: E402
from loc2vec_engine.errors import Loc2VecError  # noqa: E402
from loc2vec_engine.export import onnx as onnx_export  # noqa: E402
from loc2vec_engine.export.onnx import export_onnx, onnx_session, read_onnx_meta  # noqa: E402

S = 64
CHANNELS = ["roads_major", "roads_minor", "paths", "rail", "buildings", "water", "parks", "forest",
            "farmland", "industrial", "residential", "amenities"]


def _export(enc, path, **kw):
    args = dict(tile_size_px=S, metres_per_px=1.953125, channel_names=CHANNELS[:enc.meta["in_channels"]],
                training_areas=["porto.tif", {"name": "lisbon.tif", "bbox": [-9.2, 38.7, -9.1, 38.8]}],
                extra_meta={"checkpoint": "best.pt", "step": 1200})
    args.update(kw)
    return export_onnx(enc, path, **args)


@pytest.mark.parametrize("name", ["loc2vec", "mobilenetv3_small_100", "resnet18"])
def test_round_trip_metadata_and_dynamic_batch(name, tmp_path):
    enc = create_encoder(name, embedding_dim=32)
    enc.train()  # export must not depend on (nor change) the caller's mode
    out = _export(enc, tmp_path / f"{name}.onnx")
    assert out == tmp_path / f"{name}.onnx" and out.is_file()
    assert enc.training
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]

    sess = onnx_session(out, device="cpu")
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert [i.name for i in sess.get_inputs()] == ["tiles"] and [o.name for o in sess.get_outputs()] == ["embedding"]
    enc.eval()
    for batch in (1, 5):
        x = torch.rand(batch, 12, S, S)
        got = sess.run(["embedding"], {"tiles": x.numpy()})[0]
        with torch.no_grad():
            expected = enc(x).numpy()
        assert got.shape == (batch, 32)
        assert np.abs(got - expected).max() <= 1e-4
        assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)

    meta = read_onnx_meta(out)
    assert meta["channel_names"] == CHANNELS
    assert meta["tile_size_px"] == S and meta["metres_per_px"] == 1.953125 and meta["tile_size_m"] == 125.0
    assert meta["embedding_size"] == 32 and meta["in_channels"] == 12
    assert meta["encoder"] == name and meta["encoder_meta"]["name"] == name
    assert meta["input_normalisation"] == "uint8/255"
    assert meta["training_areas"] == ["porto.tif", {"name": "lisbon.tif", "bbox": [-9.2, 38.7, -9.1, 38.8]}]
    assert meta["loc2vec_version"] == loc2vec_engine.__version__
    assert meta["attribution"] == loc2vec_engine.ATTRIBUTION and "ODbL" in meta["attribution"]
    assert meta["checkpoint"] == "best.pt" and meta["step"] == 1200


def test_auto_device_session_works_here(tmp_path):
    out = _export(create_encoder("loc2vec", embedding_dim=16), tmp_path / "m.onnx")
    sess = onnx_session(out)  # "auto": CUDA only where it really works, else CPU without complaint
    expected = "CUDAExecutionProvider" if torch.cuda.is_available() else "CPUExecutionProvider"
    assert sess.get_providers()[0] == expected
    assert sess.run(None, {"tiles": np.random.rand(3, 12, S, S).astype(np.float32)})[0].shape == (3, 16)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_for_without_cuda_is_an_error(tmp_path):
    out = _export(create_encoder("loc2vec", embedding_dim=16), tmp_path / "m.onnx")
    with pytest.raises(Loc2VecError, match="cannot use CUDA"):
        onnx_session(out, device="cuda")
    with pytest.raises(Loc2VecError, match="unknown device"):
        onnx_session(out, device="tpu")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy exporter announces its deprecation
def test_plain_onnx_without_metadata_is_refused(tmp_path):
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(4, 2), (torch.rand(1, 4),), str(plain), dynamo=False,
                      input_names=["x"], output_names=["y"])
    with pytest.raises(Loc2VecError, match="not a loc2vec model") as e:
        read_onnx_meta(plain)
    assert "loc2vec export" in e.value.fix

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all \x00\xff" * 10)
    with pytest.raises(Loc2VecError, match="not a readable ONNX file"):
        read_onnx_meta(junk)
    with pytest.raises(Loc2VecError, match="not found"):
        read_onnx_meta(tmp_path / "missing.onnx")


def test_bad_arguments_are_refused_before_writing(tmp_path):
    enc = create_encoder("loc2vec", embedding_dim=16)
    out = tmp_path / "m.onnx"
    with pytest.raises(Loc2VecError, match="11 channel names given for an encoder with 12"):
        _export(enc, out, channel_names=CHANNELS[:11])
    with pytest.raises(Loc2VecError, match="tile size"):
        _export(enc, out, tile_size_px=16)
    with pytest.raises(Loc2VecError, match="metres per pixel"):
        _export(enc, out, metres_per_px=0)
    with pytest.raises(Loc2VecError, match="reserved"):
        _export(enc, out, extra_meta={"channel_names": ["x"]})
    with pytest.raises(Loc2VecError, match="cannot be stored as JSON"):
        _export(enc, out, extra_meta={"when": object()})
    assert not out.exists()


def test_a_failed_check_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)  # every comparison now "fails"
    out = tmp_path / "m.onnx"
    with pytest.raises(Loc2VecError, match="differs from torch"):
        _export(create_encoder("loc2vec", embedding_dim=16), out)
    assert list(tmp_path.iterdir()) == []


def test_custom_channels_and_odd_tile_size(tmp_path):
    enc = create_encoder("loc2vec", in_channels=5, embedding_dim=16)
    out = _export(enc, tmp_path / "five.onnx", tile_size_px=100)  # 100 px: a 4x4 last map; 200 px: 7x7
    assert read_onnx_meta(out)["channel_names"] == CHANNELS[:5]
    out = _export(enc, tmp_path / "odd.onnx", tile_size_px=200)
    assert onnx_session(out, "cpu").run(None, {"tiles": np.zeros((2, 5, 200, 200), np.float32)})[0].shape == (2, 16)
