"""The frame geometry a network was trained under travels with it: checkpoint, loaded module, exported pipeline;
a checkpoint met by data under another policy is refused, naming both."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from s2dm_lightning.config import load_module
from s2dm_lightning.data import VideoFolderDataModule
from s2dm_lightning.data.geometry import CHECKPOINT_KEY
from s2dm_lightning.models import S2DM
from s2dm_lightning.models.export import load_pretrained, save_pretrained
from tests.conftest import HashTextEncoder
from tests.data.conftest import disc_video, write_avi
from tests.pipelines.conftest import S2DM_YAML, SIZE, tiny_s2dm


def _folder_data(root, geometry: str) -> VideoFolderDataModule:
    if not (root / "metadata.csv").exists():
        root.mkdir(parents=True, exist_ok=True)
        write_avi(root / "disc.avi", disc_video(num_frames=4, height=24, width=32, radius=8))
        (root / "metadata.csv").write_text("path,caption,split,video_id\n"
                                           "disc.avi,a disc,train,disc\ndisc.avi,a disc,val,disc_val\n")
    return VideoFolderDataModule(str(root), resolution=SIZE, flow_size=SIZE, num_frames=4, batch_size=1,
                                 dis_preset="ultrafast", frame_geometry=geometry)


def _trainer(tmp_path) -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, max_steps=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                     limit_val_batches=1, default_root_dir=str(tmp_path))


def test_training_records_the_data_geometry_in_checkpoint_loaded_module_and_export(tmp_path):
    model = tiny_s2dm()
    assert model.frame_geometry == "crop", "the default, until data or a checkpoint says otherwise"
    trainer = _trainer(tmp_path)
    trainer.fit(model, datamodule=_folder_data(tmp_path / "data", "pad"))
    assert model.frame_geometry == "pad", "while attached: the data module's"
    trainer.save_checkpoint(tmp_path / "pad.ckpt")
    checkpoint = torch.load(tmp_path / "pad.ckpt", weights_only=True)
    assert checkpoint[CHECKPOINT_KEY] == "pad"

    config = tmp_path / "s2dm.yaml"
    config.write_text(S2DM_YAML)
    loaded = load_module(config, tmp_path / "pad.ckpt", S2DM)
    assert loaded.frame_geometry == "pad"
    save_pretrained(loaded, tmp_path / "export")
    assert load_pretrained(tmp_path / "export", text_encoder=HashTextEncoder()).frame_geometry == "pad"


def test_a_checkpoint_under_another_geometry_is_refused_naming_both(tmp_path):
    model = tiny_s2dm()
    data = _folder_data(tmp_path / "data", "pad")
    trainer = _trainer(tmp_path)
    trainer.fit(model, datamodule=data)
    trainer.save_checkpoint(tmp_path / "pad.ckpt")
    with pytest.raises(ValueError, match=r"pad\.ckpt was trained on frames made square by frame_geometry='pad', "
                                         r"but the data module now uses 'crop'.*--data.init_args.frame_geometry=pad"):
        _trainer(tmp_path).validate(tiny_s2dm(), datamodule=_folder_data(tmp_path / "data", "crop"),
                                    ckpt_path=str(tmp_path / "pad.ckpt"))
    # the same data policy loads
    _trainer(tmp_path).validate(tiny_s2dm(), datamodule=_folder_data(tmp_path / "data", "pad"),
                                ckpt_path=str(tmp_path / "pad.ckpt"))
