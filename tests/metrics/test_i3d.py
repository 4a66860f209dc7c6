"""I3D: reference parameter names, strict loading (state dict and TorchScript), output, preprocessing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from s2dm_lightning.metrics import (
    I3DFeatureExtractor,
    InceptionI3d,
    TorchScriptI3D,
    bilinear_resize_matrix,
    load_i3d,
    preprocess_for_i3d,
    resolve_i3d_weights,
)

# Typed from piergiaj/pytorch-i3d `InceptionI3d` (the layout of `i3d_pretrained_400.pt`):
# block -> (in channels, [b0, b1a, b1b, b2a, b2b, b3b]).
_REFERENCE_MIXED = {
    "Mixed_3b": (192, [64, 96, 128, 16, 32, 32]),
    "Mixed_3c": (256, [128, 128, 192, 32, 96, 64]),
    "Mixed_4b": (128 + 192 + 96 + 64, [192, 96, 208, 16, 48, 64]),
    "Mixed_4c": (192 + 208 + 48 + 64, [160, 112, 224, 24, 64, 64]),
    "Mixed_4d": (160 + 224 + 64 + 64, [128, 128, 256, 24, 64, 64]),
    "Mixed_4e": (128 + 256 + 64 + 64, [112, 144, 288, 32, 64, 64]),
    "Mixed_4f": (112 + 288 + 64 + 64, [256, 160, 320, 32, 128, 128]),
    "Mixed_5b": (256 + 320 + 128 + 128, [256, 160, 320, 32, 128, 128]),
    "Mixed_5c": (256 + 320 + 128 + 128, [384, 192, 384, 48, 128, 128]),
}

# A hard list of known keys and shapes of the reference state dict.
_KNOWN_KEYS = {
    "Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7),
    "Conv3d_1a_7x7.bn.weight": (64,),
    "Conv3d_1a_7x7.bn.bias": (64,),
    "Conv3d_1a_7x7.bn.running_mean": (64,),
    "Conv3d_1a_7x7.bn.running_var": (64,),
    "Conv3d_2b_1x1.conv3d.weight": (64, 64, 1, 1, 1),
    "Conv3d_2c_3x3.conv3d.weight": (192, 64, 3, 3, 3),
    "Conv3d_2c_3x3.bn.running_var": (192,),
    "Mixed_3b.b0.conv3d.weight": (64, 192, 1, 1, 1),
    "Mixed_3b.b1a.conv3d.weight": (96, 192, 1, 1, 1),
    "Mixed_3b.b1b.conv3d.weight": (128, 96, 3, 3, 3),
    "Mixed_3b.b2a.conv3d.weight": (16, 192, 1, 1, 1),
    "Mixed_3b.b2b.conv3d.weight": (32, 16, 3, 3, 3),
    "Mixed_3b.b3b.conv3d.weight": (32, 192, 1, 1, 1),
    "Mixed_3b.b3b.bn.bias": (32,),
    "Mixed_3c.b1b.bn.running_mean": (192,),
    "Mixed_4b.b0.conv3d.weight": (192, 480, 1, 1, 1),
    "Mixed_4c.b1b.conv3d.weight": (224, 112, 3, 3, 3),
    "Mixed_4d.b2b.bn.weight": (64,),
    "Mixed_4e.b1b.conv3d.weight": (288, 144, 3, 3, 3),
    "Mixed_4f.b3b.conv3d.weight": (128, 528, 1, 1, 1),
    "Mixed_5b.b0.conv3d.weight": (256, 832, 1, 1, 1),
    "Mixed_5c.b0.conv3d.weight": (384, 832, 1, 1, 1),
    "Mixed_5c.b1b.conv3d.weight": (384, 192, 3, 3, 3),
    "Mixed_5c.b2b.bn.running_mean": (128,),
    "Mixed_5c.b3b.bn.running_var": (128,),
    "logits.conv3d.weight": (400, 1024, 1, 1, 1),
    "logits.conv3d.bias": (400,),
}


def _expected_reference_keys() -> dict[str, tuple[int, ...]]:
    """Every key of the reference state dict with its shape, built from the table above."""
    keys: dict[str, tuple[int, ...]] = {}

    def unit(name: str, cin: int, cout: int, k: int) -> None:
        keys[f"{name}.conv3d.weight"] = (cout, cin, k, k, k)
        for p in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{name}.bn.{p}"] = (cout,)
        keys[f"{name}.bn.num_batches_tracked"] = ()

    unit("Conv3d_1a_7x7", 3, 64, 7)
    unit("Conv3d_2b_1x1", 64, 64, 1)
    unit("Conv3d_2c_3x3", 64, 192, 3)
    for block, (cin, c) in _REFERENCE_MIXED.items():
        unit(f"{block}.b0", cin, c[0], 1)
        unit(f"{block}.b1a", cin, c[1], 1)
        unit(f"{block}.b1b", c[1], c[2], 3)
        unit(f"{block}.b2a", cin, c[3], 1)
        unit(f"{block}.b2b", c[3], c[4], 3)
        unit(f"{block}.b3b", cin, c[5], 1)
    keys["logits.conv3d.weight"] = (400, 1024, 1, 1, 1)
    keys["logits.conv3d.bias"] = (400,)
    return keys


@pytest.fixture(scope="module")
def i3d() -> InceptionI3d:
    torch.manual_seed(0)
    return InceptionI3d()


def test_state_dict_matches_reference_names_and_shapes(i3d: InceptionI3d) -> None:
    ours = {k: tuple(v.shape) for k, v in i3d.state_dict().items()}
    for key, shape in _KNOWN_KEYS.items():
        assert ours.get(key) == shape, key
    assert ours == _expected_reference_keys()
    assert len(ours) == 344


def test_network_is_frozen_and_stays_in_eval(i3d: InceptionI3d) -> None:
    i3d.train()
    assert not i3d.training and not any(m.training for m in i3d.modules())
    assert not any(p.requires_grad for p in i3d.parameters())
    nn.Sequential(i3d).train(True)  # a parent switching to train mode does not flip it either
    assert not i3d.training


def test_state_dict_file_loads_strict_and_gives_400_features(i3d: InceptionI3d, tmp_path: Path) -> None:
    state = {k: v.clone() for k, v in i3d.state_dict().items()}
    for k, v in state.items():  # non-trivial BN statistics so a mismatch would show
        if k.endswith("running_var"):
            v.uniform_(0.5, 2.0)
        elif k.endswith("running_mean"):
            v.normal_(0.0, 0.1)
    path = tmp_path / "i3d_pretrained_400.pt"
    torch.save(state, path)
    net = load_i3d(str(path))
    assert isinstance(net, InceptionI3d)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())
    assert not net.training and not any(p.requires_grad for p in net.parameters())

    # One real-size forward: B=1, 16 frames of 64 x 64 uint8, resized to 224 inside the extractor.
    video = torch.randint(
        0, 256, (1, 16, 64, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    feats = I3DFeatureExtractor(net)(video)
    assert feats.shape == (1, 400) and feats.dtype == torch.float32 and torch.isfinite(feats).all()


def test_old_files_without_num_batches_tracked_and_with_module_prefix_load(
    i3d: InceptionI3d, tmp_path: Path
) -> None:
    state = {f"module.{k}": v for k, v in i3d.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pt"
    torch.save(state, path)
    net = load_i3d(path)
    assert torch.equal(
        net.state_dict()["Mixed_5c.b3b.bn.running_var"], i3d.state_dict()["Mixed_5c.b3b.bn.running_var"]
    )


def test_state_dict_with_wrong_keys_is_rejected(i3d: InceptionI3d, tmp_path: Path) -> None:
    state = dict(i3d.state_dict())
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"metrics\.i3d_weights='.*bad\.pt'.*extra\.weight"):
        load_i3d(tmp_path / "bad.pt")


def test_short_clips_raise_a_clear_error(i3d: InceptionI3d) -> None:
    with pytest.raises(ValueError, match="at least 9 frames"):
        i3d(torch.zeros(1, 3, 8, 224, 224))


class _FakeScriptI3D(nn.Module):
    """Stands in for StyleGAN-V's i3d_torchscript.pt; checks it gets the documented kwargs."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 400)

    def forward(
        self, x: torch.Tensor, rescale: bool = True, resize: bool = True, return_features: bool = False
    ):
        if rescale or resize or not return_features:
            raise RuntimeError("expected rescale=False, resize=False, return_features=True")
        return self.proj(x.mean(dim=(2, 3, 4)))


def test_torchscript_file_loads_through_jit_only_on_opt_in(tmp_path: Path) -> None:
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(_FakeScriptI3D()), str(path))
    with pytest.raises(ValueError, match=r"metrics\.i3d_weights='.*i3d_torchscript\.pt'.*metrics\.allow_torchscript: true"):
        load_i3d(path)
    net = load_i3d(path, allow_torchscript=True)
    assert isinstance(net, TorchScriptI3D) and net.loaded_as == "torchscript (opted in)"
    net.train()
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    x = preprocess_for_i3d(torch.zeros(2, 4, 8, 8, 3, dtype=torch.uint8))
    out = I3DFeatureExtractor(net)(torch.zeros(2, 4, 8, 8, 3, dtype=torch.uint8))
    assert out.shape == (2, 400) and torch.allclose(out, net(x))


def test_missing_weights_error_names_config_key_and_env_var(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("S2DM_I3D_WEIGHTS", raising=False)
    for path in (None, str(tmp_path / "nope.pt")):
        with pytest.raises(FileNotFoundError) as info:
            load_i3d(resolve_i3d_weights(path))
        msg = str(info.value)
        for needle in (
            "metrics.i3d_weights",
            "S2DM_I3D_WEIGHTS",
            "i3d_pretrained_400.pt",
            "i3d_torchscript.pt",
        ):
            assert needle in msg


def test_resolve_i3d_weights_prefers_config_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("S2DM_I3D_WEIGHTS", raising=False)
    assert resolve_i3d_weights(None) is None and resolve_i3d_weights("") is None
    monkeypatch.setenv("S2DM_I3D_WEIGHTS", "/env/i3d.pt")
    assert resolve_i3d_weights(None) == "/env/i3d.pt"
    assert resolve_i3d_weights("/cfg/i3d.pt") == "/cfg/i3d.pt"
    assert resolve_i3d_weights("~/i3d.pt") == os.path.expanduser("~/i3d.pt")


def test_preprocess_uint8_range_layout_and_size() -> None:
    video = torch.zeros(2, 3, 10, 12, 3, dtype=torch.uint8)
    video[:, :, :, :6] = 255  # left half of the width white
    out = preprocess_for_i3d(video)  # tf1: output column d reads source column d * 12 / 224
    assert out.shape == (2, 3, 3, 224, 224) and out.dtype == torch.float32
    assert out.min().item() == -1.0 and out.max().item() == 1.0
    assert torch.all(out[..., :94] == 1.0) and torch.all(out[..., 112:] == -1.0)
    # float input needs an explicit range; [0, 1] and [-1, 1] map to the same result
    f01 = video.float() / 255
    with pytest.raises(ValueError, match="value_range"):
        preprocess_for_i3d(f01)
    assert torch.allclose(preprocess_for_i3d(f01, value_range=(0.0, 1.0)), out, atol=1e-6)
    assert torch.allclose(preprocess_for_i3d(f01 * 2 - 1, value_range=(-1.0, 1.0)), out, atol=1e-6)
    # other layouts give the same tensor
    btchw = video.permute(0, 1, 4, 2, 3)
    assert torch.equal(preprocess_for_i3d(btchw, layout="BTCHW"), out)
    assert torch.equal(preprocess_for_i3d(btchw.transpose(1, 2), layout="BCTHW"), out)
    with pytest.raises(ValueError, match="channels"):
        preprocess_for_i3d(btchw)


def test_resize_conventions() -> None:
    # On a ramp x[i] = i, bilinear resizing returns the source coordinate of each output sample.
    ramp = torch.arange(7, dtype=torch.float64)
    d = torch.arange(16, dtype=torch.float64)
    tf1 = bilinear_resize_matrix(7, 16, "tf1") @ ramp
    assert torch.allclose(tf1, (d * 7 / 16).clamp(max=6))  # TF1 resize_bilinear, half_pixel_centers=False
    th = bilinear_resize_matrix(7, 16, "torch") @ ramp
    assert torch.allclose(th, ((d + 0.5) * 7 / 16 - 0.5).clamp(0, 6))
    # "torch" equals F.interpolate(bilinear, align_corners=False), up- and downsampling
    for h, w in ((37, 53), (300, 260)):
        video = torch.rand(1, 2, h, w, 3, generator=torch.Generator().manual_seed(h))
        ours = preprocess_for_i3d(video, value_range=(0.0, 1.0), resize_convention="torch")
        frames = video.permute(0, 1, 4, 2, 3).reshape(-1, 3, h, w)
        ref = F.interpolate(frames, size=(224, 224), mode="bilinear", align_corners=False) * 2 - 1
        assert torch.allclose(ours, ref.reshape(1, 2, 3, 224, 224).transpose(1, 2), atol=1e-4)
