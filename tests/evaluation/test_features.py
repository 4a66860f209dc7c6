"""Choosing the feature network: names, notices and identities of trained, untrained and custom ones."""

from __future__ import annotations

import json
import math

import pytest
import torch

from s2dm_lightning.evaluation import (
    RandomConv3dFeatures,
    VideoMetricsCallback,
    build_backbone,
    extract_features,
    quantize_to_uint8_levels,
)
from s2dm_lightning.io import file_sha256
from s2dm_lightning.metrics import InceptionI3d
from s2dm_lightning.safe_load import (
    LOADED_AS_DATA,
    LOADED_TORCHSCRIPT_OPTED_IN,
    ReceivedFileError,
)
from tests.evaluation.helpers import ClipDataModule, FakeGenerator, cpu_trainer


@pytest.fixture(scope="module")
def i3d_state_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "i3d_pretrained_400.pt"
    torch.save(InceptionI3d().state_dict(), path)  # random, but with the real file's key names
    return path


def test_a_weight_file_gives_fvd_named_fvd(i3d_state_file, monkeypatch):
    monkeypatch.delenv("S2DM_I3D_WEIGHTS", raising=False)
    backbone = build_backbone(i3d_weights=str(i3d_state_file))
    assert backbone.is_fvd and backbone.metric_suffix == "" and backbone.notice.startswith("FVD/KVD with")
    assert backbone.weights["sha256"] == file_sha256(i3d_state_file) == backbone.identity["sha256"]
    assert backbone.identity["format"] == "state_dict" and "224" in backbone.identity["resize"]
    assert backbone.weights["loaded_as"] == LOADED_AS_DATA
    assert "FVD-standard" not in backbone.notice, "a state dict whose hash is not known is not called the standard"
    # the environment variable is the fallback, and allow_random_backbone does not override a file
    monkeypatch.setenv("S2DM_I3D_WEIGHTS", str(i3d_state_file))
    assert build_backbone(allow_random_backbone=True).kind == "i3d"


def test_a_missing_weight_file_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("S2DM_I3D_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError, match="not found at"):
        build_backbone(i3d_weights=str(tmp_path / "nope.pt"))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_custom_extractors_by_module_or_torchscript_file(tmp_path):
    module = RandomConv3dFeatures(feature_dim=5, width=4, seed=3)
    backbone = build_backbone(feature_extractor=module, metric_suffix="synthetic")
    assert backbone.kind == "custom" and backbone.metric_suffix == "_synthetic" and not backbone.is_fvd
    same = build_backbone(feature_extractor=RandomConv3dFeatures(feature_dim=5, width=4, seed=3))
    other = build_backbone(feature_extractor=RandomConv3dFeatures(feature_dim=5, width=4, seed=4))
    assert same.identity["fingerprint"] == backbone.identity["fingerprint"] != other.identity["fingerprint"]

    videos = torch.rand(2, 4, 3, 8, 8) * 2 - 1
    path = tmp_path / "features.pt"
    torch.jit.trace(module, videos).save(str(path))
    with pytest.raises(ReceivedFileError, match="metrics.allow_torchscript"):
        build_backbone(feature_extractor_file=str(path))  # a program: only on opt-in
    scripted = build_backbone(feature_extractor_file=str(path), allow_torchscript=True)
    assert scripted.weights["loaded_as"] == LOADED_TORCHSCRIPT_OPTED_IN
    assert scripted.identity["kind"] == "custom_torchscript" and scripted.identity["sha256"] == file_sha256(path)
    assert torch.allclose(extract_features(scripted, videos, "cpu"), extract_features(backbone, videos, "cpu"))
    with pytest.raises(ValueError, match="choose one"):
        build_backbone(i3d_weights="x.pt", feature_extractor=module)


def test_quantization_to_uint8_levels():
    x = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.5])
    q = quantize_to_uint8_levels(x)
    assert torch.equal(((q + 1) * 127.5).round(), (q + 1) * 127.5)  # exactly on the 256 levels
    assert q[0] == -1 and q[-1] == 1 and q[-2] == 1 and torch.equal(quantize_to_uint8_levels(q), q)


@pytest.mark.slow
def test_untrained_i3d_end_to_end(tmp_path, monkeypatch):
    """The real (untrained) Inception I3D at 224 x 224 through trainer.test: seconds per video on a CPU."""
    monkeypatch.delenv("S2DM_I3D_WEIGHTS", raising=False)
    monkeypatch.setattr("tests.evaluation.helpers.FRAMES", 16)
    callback = VideoMetricsCallback(allow_random_backbone=True)
    cpu_trainer(tmp_path, [callback]).test(FakeGenerator(), datamodule=ClipDataModule(num_test=2))
    text = callback.last_report_path.read_text()
    report = json.loads(text)
    assert text.startswith('{"notice": "NOT FVD/KVD: UNTRAINED')
    assert report["feature_extractor"]["kind"] == "untrained_i3d"
    assert report["num_real_videos"] == 2 and math.isfinite(report["metrics"]["fvd_untrained_i3d"])
    assert report["metrics"]["fvd_untrained_i3d"] > 0, "generated noise and real clips cannot have equal statistics"


def test_metrics_features_chooses_videomae_v2_from_its_file(tmp_path, monkeypatch):
    """``features=videomae_v2``: the file loaded (at the small test size), cd-fvd's features, named metrics."""
    from s2dm_lightning.evaluation import features as features_module
    from tests.metrics.videomae_v2_helpers import load_small_videomae_v2, small_model, small_weight_file

    monkeypatch.setattr(features_module, "load_videomae_v2", load_small_videomae_v2)
    path = small_weight_file(tmp_path / "vit_g_hybrid_pt_1200e_ssv2_ft.pth")
    backbone = build_backbone(features="videomae_v2", videomae_v2_weights=str(path), i3d_weights="ignored.pt")
    assert backbone.kind == "videomae_v2" and backbone.metric_suffix == "_videomae_v2" and not backbone.is_fvd
    assert backbone.identity["sha256"] == backbone.weights["sha256"] == file_sha256(path)
    assert backbone.weights["loaded_as"] == LOADED_AS_DATA
    assert backbone.notice.startswith("Content-debiased FVD/KVD") and "not comparable with I3D" in backbone.notice
    videos = torch.rand(2, 16, 3, 20, 24) * 2 - 1  # the evaluation's (B, F, 3, H, W) in [-1, 1]
    levels = quantize_to_uint8_levels(videos)
    uint8 = ((levels + 1) * 127.5).round().to(torch.uint8).permute(0, 1, 3, 4, 2)  # (B, T, H, W, C) as cd-fvd takes
    from s2dm_lightning.metrics.videomae_v2 import VideoMAEv2FeatureExtractor

    expected = VideoMAEv2FeatureExtractor(small_model()[0])(uint8).double()
    torch.testing.assert_close(extract_features(backbone, videos, "cpu"), expected, atol=1e-5, rtol=0)


def test_metrics_features_errors_name_the_key_and_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("S2DM_VIDEOMAE_V2_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError, match=r"vit_g_hybrid_pt_1200e_ssv2_ft\.pth.*metrics\.videomae_v2_weights"):
        build_backbone(features="videomae_v2", allow_random_backbone=True)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_backbone(features="videomae_v2", videomae_v2_weights=str(tmp_path / "nope.pth"))
    with pytest.raises(ValueError, match="metrics.features='custom' needs metrics.feature_extractor"):
        build_backbone(features="custom")
    with pytest.raises(ValueError, match="metrics.features='i3d' and a custom metrics.feature_extractor"):
        build_backbone(features="i3d", feature_extractor=RandomConv3dFeatures())
    with pytest.raises(ValueError, match="metrics.features='s3d' is not one of i3d, videomae_v2, custom"):
        build_backbone(features="s3d")
    assert build_backbone(features="custom", feature_extractor=RandomConv3dFeatures()).kind == "custom"
