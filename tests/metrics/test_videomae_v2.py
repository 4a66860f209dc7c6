"""VideoMAE-v2 (cd-fvd's network): the checkpoint layout, outputs against cd-fvd's own code, loading, errors.

The facts come from cd-fvd 0.1.1 (PyPI; ``cdfvd/third_party/VideoMAEv2``), run unchanged outside the repository
(its code is not in it):

* ``reference_data/videomae_v2_vit_g_layout.json``: every key and shape of the network cd-fvd's
  ``load_videomae_model`` builds to load ``vit_g_hybrid_pt_1200e_ssv2_ft.pth`` (strictly);
* ``reference_data/videomae_v2_small_reference.json``: a small configuration of the same code (width 32, depth 2,
  2 heads, 7 classes; 224 x 224 input and 14-pixel patches, which cd-fvd's time interpolation of the position
  table hard-codes) on seeded random weights: ``preprocess_videomae`` + ``forward_features`` (and the head) of
  seeded uint8 videos of 16 frames (the table as made), 8 and 10 frames (the table interpolated in time).

Tolerance of the output comparison: 1e-5 absolute on features of magnitude ~2 (LayerNorm outputs). Both sides run
in float32; the only differences are the order of float operations (our attention is
``scaled_dot_product_attention``, cd-fvd's an explicit softmax; batch make-up), measured at <= 4e-7.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from s2dm_lightning.metrics.videomae_v2 import (
    VIDEOMAE_V2_FILE,
    VIDEOMAE_V2_WEIGHTS_CONFIG_KEY,
    VIDEOMAE_V2_WEIGHTS_ENV,
    VIT_G_SSV2,
    VideoMAEv2,
    VideoMAEv2FeatureExtractor,
    load_videomae_v2,
    preprocess_for_videomae_v2,
    resolve_videomae_v2_weights,
    sinusoid_position_table,
)
from s2dm_lightning.safe_load import ReceivedFileError
from tests.metrics.videomae_v2_helpers import REFERENCE, SMALL, SMALL_REFERENCE, small_model

ATOL = 1e-5


def reference_videos(case: dict) -> torch.Tensor:
    generator = torch.Generator().manual_seed(case["video_seed"])
    return torch.randint(0, 256, tuple(case["video_shape"]), generator=generator, dtype=torch.uint8)


def test_key_and_shape_layout_equals_the_checkpoint_cd_fvd_loads() -> None:
    layout = json.loads((REFERENCE / "videomae_v2_vit_g_layout.json").read_text())
    assert layout["checkpoint"] == VIDEOMAE_V2_FILE
    with torch.device("meta"):
        model = VideoMAEv2(**VIT_G_SSV2)
    ours = [[key, list(value.shape)] for key, value in model.state_dict().items()]
    assert ours == layout["keys"]  # every key, every shape, same order
    assert sum(p.numel() for p in model.parameters()) == layout["num_parameters"] == 1_011_855_918
    # and a state dict of exactly that layout loads strictly (on the meta device: no 4 GB)
    state = {key: torch.empty(shape, device="meta") for key, shape in layout["keys"]}
    model.load_state_dict(state, strict=True, assign=True)
    assert model.pos_embed.shape == (2048, 1408) and model.pos_embed.device.type == "cpu"  # not in the checkpoint


def test_position_table_is_the_numpy_sinusoid_table() -> None:
    n, d = 12, 10
    angles = np.array([[p / np.power(10000, 2 * (j // 2) / d) for j in range(d)] for p in range(n)])
    angles[:, 0::2], angles[:, 1::2] = np.sin(angles[:, 0::2]), np.cos(angles[:, 1::2])
    assert torch.equal(sinusoid_position_table(n, d), torch.tensor(angles, dtype=torch.float32))


def test_seeded_weights_and_videos_are_those_of_the_reference_run() -> None:
    _, state = small_model()
    assert sum(float(v.double().sum()) for v in state.values()) == pytest.approx(
        SMALL_REFERENCE["weights"]["sum"], rel=1e-12)
    for case in SMALL_REFERENCE["cases"]:
        videos = reference_videos(case)
        assert int(videos.long().sum()) == case["video_sum"]
        x = preprocess_for_videomae_v2(videos)
        assert list(x.shape) == case["preprocessed_shape"]
        assert float(x.double().sum()) == pytest.approx(case["preprocessed_sum"], rel=1e-6)


@pytest.mark.parametrize("case", SMALL_REFERENCE["cases"], ids=lambda c: f"{c['frames']}frames")
def test_features_and_logits_equal_cd_fvd_on_the_same_random_weights(case: dict) -> None:
    model, _ = small_model()
    videos = reference_videos(case)
    features = VideoMAEv2FeatureExtractor(model, chunk_size=1)(videos)
    expected = torch.tensor(case["features"], dtype=torch.float32)
    assert features.shape == expected.shape == (2, 32)
    torch.testing.assert_close(features, expected, atol=ATOL, rtol=0)
    with torch.no_grad():
        logits = model.classify(preprocess_for_videomae_v2(videos))
    torch.testing.assert_close(logits, torch.tensor(case["logits"], dtype=torch.float32), atol=ATOL, rtol=0)


def test_float_videos_in_minus_one_one_give_the_uint8_features() -> None:
    """The evaluation holds (B, F, 3, H, W) in [-1, 1] on uint8 levels; mapped to [0, 1] it is x / 255 up to rounding."""
    model, _ = small_model()
    videos = reference_videos(SMALL_REFERENCE["cases"][1])
    as_float = videos.permute(0, 1, 4, 2, 3).float() / 127.5 - 1.0  # BTCHW
    uint8 = VideoMAEv2FeatureExtractor(model)(videos)
    floats = VideoMAEv2FeatureExtractor(model, value_range=(-1.0, 1.0), layout="BTCHW")(as_float)
    torch.testing.assert_close(floats, uint8, atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="value_range"):
        preprocess_for_videomae_v2(as_float, layout="BTCHW")


@pytest.mark.parametrize("fmt", ["pth_model", "pth_module", "pth_bare", "safetensors"])
def test_load_reads_the_file_strictly_and_pickle_free(tmp_path: Path, fmt: str) -> None:
    model, state = small_model()
    path = tmp_path / ("w.safetensors" if fmt == "safetensors" else "w.pth")
    if fmt == "safetensors":
        save_file(state, str(path))
    else:
        torch.save({"pth_model": {"model": state}, "pth_module": {"module": state}, "pth_bare": state}[fmt], path)
    loaded = load_videomae_v2(path, **SMALL)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    x = preprocess_for_videomae_v2(reference_videos(SMALL_REFERENCE["cases"][0]))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)


def test_load_refuses_a_missing_or_misshaped_key_and_pickled_objects(tmp_path: Path) -> None:
    _, state = small_model()
    missing = dict(state)
    del missing["blocks.1.attn.v_bias"]
    torch.save({"model": missing}, tmp_path / "missing.pth")
    with pytest.raises(ReceivedFileError, match=r"missing.pth.*blocks\.1\.attn\.v_bias"):
        load_videomae_v2(tmp_path / "missing.pth", **SMALL)
    misshaped = {**state, "head.weight": torch.zeros(5, 32)}
    torch.save(misshaped, tmp_path / "shape.pth")
    with pytest.raises(ReceivedFileError, match=r"shape.pth.*head\.weight"):
        load_videomae_v2(tmp_path / "shape.pth", **SMALL)
    torch.save({"model": state, "args": Path("x")}, tmp_path / "pickled.pth")  # an object: refused, not run
    with pytest.raises(ReceivedFileError, match=f"{VIDEOMAE_V2_WEIGHTS_CONFIG_KEY}=.*pickled.pth.*pickled Python"):
        load_videomae_v2(tmp_path / "pickled.pth", **SMALL)


def test_missing_file_names_the_file_to_fetch_and_where_to_put_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VIDEOMAE_V2_WEIGHTS_ENV, raising=False)
    for path in (None, tmp_path / "absent.pth"):
        with pytest.raises(FileNotFoundError) as info:
            load_videomae_v2(path)
        message = str(info.value)
        for needle in (VIDEOMAE_V2_FILE, VIDEOMAE_V2_WEIGHTS_CONFIG_KEY, VIDEOMAE_V2_WEIGHTS_ENV, "never downloaded"):
            assert needle in message
    assert "absent.pth" in message
    assert resolve_videomae_v2_weights(None) is None
    monkeypatch.setenv(VIDEOMAE_V2_WEIGHTS_ENV, str(tmp_path / "env.pth"))
    assert resolve_videomae_v2_weights(None) == str(tmp_path / "env.pth")
    assert resolve_videomae_v2_weights(tmp_path / "cfg.pth") == str(tmp_path / "cfg.pth")  # the config value wins


def test_wrong_input_shape_is_named() -> None:
    model, _ = small_model()
    with pytest.raises(ValueError, match="preprocess_for_videomae_v2"):
        model(torch.zeros(1, 3, 16, 112, 112))
    with pytest.raises(ValueError, match="at least 2 frames"):
        model(torch.zeros(1, 3, 1, 224, 224))
