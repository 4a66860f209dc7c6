"""Training the synthetic feature network from its config, and its attribute dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from s2dm_lightning.evaluation.features import build_backbone
from s2dm_lightning.metrics import FrechetVideoDistance, KernelVideoDistance
from s2dm_lightning.safe_load import LOADED_AS_DATA, is_torchscript_file
from s2dm_lightning.synthetic.feature_training import SyntheticAttributeDataset, train_feature_network
from s2dm_lightning.synthetic.features import load_feature_extractor, metadata_path

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


def test_attribute_dataset_needs_the_attribute_columns(tmp_path):
    (tmp_path / "metadata.csv").write_text("video_id,path,caption,split\nv,v,c,train\n")
    with pytest.raises(ValueError, match="attribute column"):
        SyntheticAttributeDataset(tmp_path, "train")
