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
