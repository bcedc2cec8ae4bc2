"""Encoders: the registry/factory, unit-norm outputs, pretrained weights (offline) and checkpoints."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from loc2vec_engine.encoders import (  # noqa: E402
    create_encoder, list_encoders, load_encoder, set_trainable)
from loc2vec_engine.encoders.loc2vec_cnn import grid_pool  # noqa: E402
from loc2vec_engine.errors import Loc2VecError  # noqa: E402

NAMED = ["loc2vec", "resnet18", "resnet34", "efficientnet_b0", "mobilenetv3_small_100"]
FIRST_CONV = {"resnet18": "conv1", "mobilenetv3_small_100": "conv_stem"}
S = 64  # the smallest tile size the encoders promise to take


def tiles(n=2, c=12, s=S, seed=0):
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def no_network(monkeypatch):
    """No test may reach the internet: sockets refuse to connect and the Hugging Face hub is offline."""
    import huggingface_hub.constants as hf

    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)


def test_registry_lists_the_named_encoders():
    assert list_encoders()[:5] == NAMED


@pytest.mark.parametrize("dim", [16, 128])
@pytest.mark.parametrize("name", NAMED)
def test_named_encoders_give_unit_vectors(name, dim):
    enc = create_encoder(name, in_channels=12, embedding_dim=dim).eval()
    with torch.no_grad():
        out = enc(tiles())
    assert out.shape == (2, dim) and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    assert enc.meta["name"] == name and enc.meta["in_channels"] == 12 and enc.meta["embedding_dim"] == dim
    assert enc.meta["input_normalisation"] == "uint8/255" and enc.meta["pretrained"] is None


@pytest.mark.parametrize("name", NAMED)
def test_gradients_reach_every_parameter(name):
    enc = create_encoder(name, embedding_dim=16).train()
    anchor = enc(tiles(seed=1))
    (anchor[:, 0].sum() + (anchor - enc(tiles(seed=2))).pow(2).sum()).backward()
    missing = [n for n, p in enc.named_parameters() if p.grad is None]
    assert not missing
    assert enc.head.weight.grad.abs().sum() > 0


def test_loc2vec_baseline_is_small_and_takes_any_tile_size():
    enc = create_encoder("loc2vec").eval()
    assert 300_000 < sum(p.numel() for p in enc.parameters()) < 800_000
    with torch.no_grad():
        for s in (32, 64, 100, 200, 256):
            assert enc(tiles(s=s)).shape == (2, 128)


@pytest.mark.parametrize("size", [1, 2, 7, 8])
def test_grid_pool_is_adaptive_average_pooling(size):
    x = torch.rand(2, 5, size, size)
    expected = torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)
    assert torch.allclose(grid_pool(x), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["loc2vec", "resnet18", "resnet10t"])  # resnet10t: any timm name works
def test_custom_channel_count(name):
    enc = create_encoder(name, in_channels=5, embedding_dim=32).eval()
    with torch.no_grad():
        assert enc(tiles(c=5)).shape == (2, 32)
    assert enc.meta["in_channels"] == 5


def test_unknown_name_is_refused_clearly():
    with pytest.raises(Loc2VecError) as e:
        create_encoder("resnet_does_not_exist")
    assert "unknown encoder 'resnet_does_not_exist'" in e.value.problem
    assert "loc2vec" in e.value.fix and "mobilenetv3_small_100" in e.value.fix and "timm" in e.value.fix


@pytest.mark.parametrize("dim", [8, 15, 513, 128.0, "128", True, None])
def test_bad_embedding_size_is_refused(dim):
    with pytest.raises(Loc2VecError, match=r"embedding_dim must be an integer 16\.\.512"):
        create_encoder("loc2vec", embedding_dim=dim)


@pytest.mark.parametrize("channels", [0, -1, 3.0])
def test_bad_channel_count_is_refused(channels):
    with pytest.raises(Loc2VecError, match="in_channels must be an integer >= 1"):
        create_encoder("loc2vec", in_channels=channels)


# ---- ImageNet weights, offline --------------------------------------------------------------------

def _save(state_dict, path):
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))
    else:
        torch.save(state_dict, path)
    return path


@pytest.mark.parametrize("name,suffix", [("resnet18", ".pth"), ("mobilenetv3_small_100", ".safetensors")])
def test_imagenet_weights_from_a_file(name, suffix, tmp_path, no_network):
    torch.manual_seed(123)
    rgb = timm.create_model(name, pretrained=False).state_dict()  # stands in for timm's ImageNet weights
    file = _save(rgb, tmp_path / f"weights{suffix}")
    enc = create_encoder(name, in_channels=12, embedding_dim=16, pretrained=f"imagenet:{file}")
    got = enc.backbone.state_dict()
    conv = FIRST_CONV[name] + ".weight"
    assert got[conv].shape[1] == 12
    assert torch.equal(got[conv], timm.models.adapt_input_conv(12, rgb[conv]))
    later = [k for k in got if k != conv]
    assert later and all(torch.equal(got[k], rgb[k]) for k in later)
    assert enc.meta["pretrained"] == f"imagenet:{file.resolve()}"


def test_imagenet_weights_missing_parts_are_refused(tmp_path, no_network):
    rgb = timm.create_model("resnet18", pretrained=False).state_dict()
    file = _save({k: v for k, v in rgb.items() if not k.startswith("layer4.")}, tmp_path / "partial.pth")
    with pytest.raises(Loc2VecError, match="did not cover resnet18: layer4"):
        create_encoder("resnet18", pretrained=f"imagenet:{file}")


def test_imagenet_weights_of_another_model_are_refused(tmp_path, no_network):
    file = _save(timm.create_model("mobilenetv3_small_100").state_dict(), tmp_path / "other.pth")
    with pytest.raises(Loc2VecError, match="could not be loaded into resnet18") as e:
        create_encoder("resnet18", pretrained=f"imagenet:{file}")
    assert "imagenet:" in e.value.fix


def test_imagenet_weights_file_not_found(tmp_path):
    with pytest.raises(Loc2VecError, match="ImageNet weights file .*nope.pth not found"):
        create_encoder("resnet18", pretrained=f"imagenet:{tmp_path / 'nope.pth'}")


def test_imagenet_weights_without_hub_give_the_clear_error(tmp_path, monkeypatch, no_network):
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(Loc2VecError) as e:
        create_encoder("resnet18", pretrained="imagenet")
    assert "could not get the ImageNet weights of resnet18" in e.value.problem
    assert "--pretrained imagenet:" in e.value.fix and "internet" in e.value.fix


def test_baseline_has_no_imagenet_weights():
    with pytest.raises(Loc2VecError, match="no ImageNet weights"):
        create_encoder("loc2vec", pretrained="imagenet")


# ---- loc2vec checkpoints --------------------------------------------------------------------------

def _checkpoint(enc, path, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(enc.meta, tile_size_px=S, channel_names=[f"c{i}" for i in range(enc.meta["in_channels"])])
    torch.save({"model": enc.state_dict(), "meta": meta, "step": 7, **extra}, path)
    return path


@pytest.mark.parametrize("name", ["loc2vec", "mobilenetv3_small_100"])
def test_start_from_a_run_folder(name, tmp_path):
    trained = create_encoder(name, embedding_dim=16)
    with torch.no_grad():
        trained.head.bias.fill_(0.5)
    _checkpoint(trained, tmp_path / "run" / "last.pt")  # only last.pt: the fallback
    enc = create_encoder(name, embedding_dim=16, pretrained=tmp_path / "run")
    assert all(torch.equal(a, b) for a, b in zip(enc.state_dict().values(), trained.state_dict().values()))
    assert enc.meta["pretrained"] == f"checkpoint:{(tmp_path / 'run' / 'last.pt').resolve()}"

    _checkpoint(create_encoder(name, embedding_dim=16), tmp_path / "run" / "best.pt")  # best.pt wins
    enc = create_encoder(name, embedding_dim=16, pretrained=str(tmp_path / "run"))
    assert enc.meta["pretrained"].endswith("best.pt")
    assert not torch.equal(enc.head.bias, trained.head.bias)


def test_load_encoder_rebuilds_the_model(tmp_path):
    trained = create_encoder("loc2vec", in_channels=5, embedding_dim=32, hidden=128, widths=[16, 32, 32, 64, 64])
    path = _checkpoint(trained, tmp_path / "best.pt")
    enc = load_encoder(path).eval()
    trained.eval()
    with torch.no_grad():
        assert torch.equal(enc(tiles(c=5)), trained(tiles(c=5)))
    assert enc.meta["channel_names"] == [f"c{i}" for i in range(5)]


@pytest.mark.parametrize("change,word", [
    (dict(embedding_dim=32), "embedding_dim"), (dict(in_channels=5), "in_channels"), (dict(name="resnet18"), "name")])
def test_mismatched_checkpoint_is_refused(change, word, tmp_path):
    enc = create_encoder("loc2vec", embedding_dim=16)
    path = _checkpoint(enc, tmp_path / "best.pt")
    kwargs = dict(name="loc2vec", in_channels=12, embedding_dim=16) | change
    with pytest.raises(Loc2VecError, match="was made for another model") as e:
        create_encoder(kwargs.pop("name"), pretrained=path, **kwargs)
    assert word in e.value.problem


def test_foreign_files_are_not_checkpoints(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save(create_encoder("loc2vec").state_dict(), plain)
    with pytest.raises(Loc2VecError, match="not a loc2vec checkpoint") as e:
        create_encoder("loc2vec", pretrained=plain)
    assert "imagenet:FILE" in e.value.fix

    pickled = tmp_path / "code.pt"
    torch.save({"model": {}, "meta": {}, "evil": socket.socket}, pickled)  # not loadable with weights_only
    with pytest.raises(Loc2VecError, match="cannot read checkpoint"):
        create_encoder("loc2vec", pretrained=pickled)

    with pytest.raises(Loc2VecError, match="no such checkpoint file or run folder"):
        create_encoder("loc2vec", pretrained=tmp_path / "missing")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(Loc2VecError, match="has no best.pt or last.pt"):
        create_encoder("loc2vec", pretrained=tmp_path / "empty_run")


# ---- progressive unfreezing ---------------------------------------------------------------------

LAST_STAGE = {"loc2vec": ("features.4.", "features.3."), "resnet18": ("layer4.", "layer3."),
              "mobilenetv3_small_100": ("conv_head.", "blocks.3.")}


@pytest.mark.parametrize("name", list(LAST_STAGE))
def test_set_trainable_stages(name):
    enc = create_encoder(name, embedding_dim=16)
    trainable = lambda: {n for n, p in enc.named_parameters() if p.requires_grad}  # noqa: E731
    everything = {n for n, _ in enc.named_parameters()}
    head = {n for n in everything if n.startswith("head.")}

    set_trainable(enc, "head")
    assert trainable() == head
    set_trainable(enc, "last")
    inside, before = LAST_STAGE[name]
    t = trainable()
    assert head < t < everything
    assert any(n.startswith("backbone." + inside) for n in t)
    assert not any(n.startswith("backbone." + before) for n in t)
    n_all = set_trainable(enc, "all")
    assert trainable() == everything and n_all == sum(p.numel() for p in enc.parameters())
    with pytest.raises(Loc2VecError, match="unknown training stage"):
        set_trainable(enc, "middle")


def test_engine_imports_without_torch():
    code = ("import sys, loc2vec_engine, loc2vec_engine.encoders, loc2vec_engine.export, "
            "loc2vec_engine.export.runtime; assert 'torch' not in sys.modules and 'timm' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
