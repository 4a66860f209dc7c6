"""The synthetic feature network: trains, exports, and serves as the FVD/KVD feature extractor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from s2dm_lightning.evaluation.features import build_backbone
from s2dm_lightning.evaluation.synthetic_features import (
    SyntheticAttributeDataset,
    SyntheticFeatureNet,
    export_feature_extractor,
    load_feature_extractor,
    metadata_path,
    train_feature_network,
)
from s2dm_lightning.metrics import FrechetVideoDistance, KernelVideoDistance
from s2dm_lightning.safe_load import LOADED_AS_DATA, ReceivedFileError, is_torchscript_file

REPO = Path(__file__).resolve().parents[2]


def tiny_args(tmp_path: Path, export: Path) -> list[str]:
    return [
        "--config", str(REPO / "configs" / "synthetic_features.yaml"),
        f"--data.init_args.root={tmp_path / 'data'}",
        "--data.init_args.num_videos=12",
        "--data.init_args.frames_per_video=8",
        "--data.init_args.image_size=16",
        "--data.init_args.resolution=16",
        "--data.init_args.num_frames=4",
        "--data.init_args.batch_size=4",
        "--model.init_args.feature_dim=8",
        "--model.init_args.width=4",
        f"--model.init_args.export_path={export}",
        "--trainer.max_steps=2",
        "--trainer.val_check_interval=2",
        "--trainer.logger=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={tmp_path}",
    ]


def test_train_two_steps_export_and_use_as_fvd_extractor(tmp_path):
    export = tmp_path / "features" / "net.safetensors"
    out = train_feature_network(tiny_args(tmp_path, export))
    assert Path(out["path"]) == export and export.is_file()
    assert 0.0 <= out["test"]["test/accuracy"] <= 1.0
    meta = json.loads(metadata_path(export).read_text())
    assert meta["feature_dim"] == 8 and "test/accuracy_motion" in meta["test"]
    assert meta["format"] == "safetensors" and not is_torchscript_file(export), "weights only, no program"

    extractor = load_feature_extractor(export)
    videos = torch.rand(3, 4, 3, 16, 16) * 2 - 1
    assert extractor(videos).shape == (3, 8)
    fvd = FrechetVideoDistance(feature_extractor=extractor, feature_dim=8)
    fvd.update(videos, real=True)
    fvd.update(videos.flip(1), real=False)
    assert torch.isfinite(fvd.compute())
    kvd = KernelVideoDistance(feature_extractor=extractor)
    kvd.update(videos, real=True)
    kvd.update(-videos, real=False)
    assert torch.isfinite(kvd.compute()[0])
    backbone = build_backbone(feature_extractor_file=str(export), metric_suffix="synthetic")  # no opt-in needed
    assert backbone.metric_suffix == "_synthetic" and backbone.module(videos).shape == (3, 8)
    assert backbone.weights["loaded_as"] == LOADED_AS_DATA and backbone.identity["kind"] == "custom_state_dict"


def test_export_and_load_give_the_same_network(tmp_path):
    net = SyntheticFeatureNet(feature_dim=8, width=4).eval()
    path = export_feature_extractor(net, tmp_path / "net.safetensors")
    loaded = load_feature_extractor(path)
    videos = torch.rand(2, 4, 3, 16, 16) * 2 - 1
    # same weights, same batch, same CPU kernels: equal up to float32 rounding
    assert torch.allclose(loaded(videos), net(videos), atol=1e-6, rtol=0)
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"class": "Other"})
    with pytest.raises(ReceivedFileError, match=r"metrics\.feature_extractor_file='.*other\.safetensors'.*'Other'"):
        load_feature_extractor(tmp_path / "other.safetensors", "metrics.feature_extractor_file")


def test_network_shapes_and_clear_errors(tmp_path):
    net = SyntheticFeatureNet(feature_dim=8, width=4)
    assert net(torch.zeros(2, 16, 3, 32, 32)).shape == (2, 8)
    assert [t.shape[1] for t in net.classify(torch.zeros(1, 3, 3, 8, 8))] == [4, 3, 4]
    with pytest.raises(ValueError, match=r"\(B, F, 3, H, W\)"):
        net(torch.zeros(2, 3, 32, 32))
    with pytest.raises(FileNotFoundError, match="synthetic_features"):
        load_feature_extractor(tmp_path / "missing.pt")
    (tmp_path / "metadata.csv").write_text("video_id,path,caption,split\nv,v,c,train\n")
    with pytest.raises(ValueError, match="attribute column"):
        SyntheticAttributeDataset(tmp_path, "train")
