"""SampleVideosCallback inside a real (CPU) Trainer."""

import lightning.pytorch as pl
import numpy as np
import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from s2dm_lightning.callbacks import SampleVideosCallback, sample_videos
from s2dm_lightning.io import safe_file_stem


def make_trainer(tmp_path, callback, **kwargs):
    options = dict(
        accelerator="cpu",
        devices=1,
        max_steps=1,
        limit_train_batches=1,
        limit_val_batches=2,
        num_sanity_val_steps=1,
        logger=TensorBoardLogger(str(tmp_path), name="tb"),
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    options.update(kwargs)
    return pl.Trainer(**options)


def test_logs_gifs_and_writes_files(tmp_path, module, loader, monkeypatch):
    messages = []
    monkeypatch.setattr(sample_videos, "rank_zero_info", messages.append)
    # 3 videos from batches of 2: the second batch is sliced to one video
    callback = SampleVideosCallback(num_videos=3, fps=4, scale=2, seed=1)
    trainer = make_trainer(tmp_path, callback)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)

    # sanity check skipped, then 2 + 1 videos in the one validation epoch
    assert module.sample_calls == [2, 1]

    events = EventAccumulator(trainer.logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    assert sorted(events.Tags()["images"]) == ["samples/0", "samples/1", "samples/2"]
    image = events.Images("samples/0")[0]
    # generated | real | flow | occlusion, 16 px frames upscaled 2x, 2 px separators
    assert (image.height, image.width) == (32, 4 * 32 + 3 * 2)
    assert image.step == trainer.global_step == 1

    folder = tmp_path / "tb" / "version_0" / "samples" / "epoch=0000-step=000001"
    assert callback.last_sample_dir == folder
    names = sorted(p.name for p in folder.iterdir())
    stems = [f"{i:02d}_{safe_file_stem(f'subject{i}/take{i:03d}')}" for i in range(3)]  # ids hold "/"
    assert stems[0].startswith("00_subject0_take000-")
    assert names == sorted([f"{stem}{ext}" for stem in stems for ext in (".gif", ".mp4")] + ["contact_sheet.png"])
    sheet = np.asarray(Image.open(folder / "contact_sheet.png"))
    # 3 rows of 4 frames, 16 px upscaled by min(scale, 128 // 16) = 2, caption bands of 18 px
    assert sheet.shape == (3 * (18 + 32) + 2 * 2, 4 * 32 + 3 * 2, 3)
    # at the end of fit the user is told where the samples are
    assert any(str(folder.parent) in m for m in messages)


def test_rounds_use_the_same_seed(tmp_path, module, loader):
    callback = SampleVideosCallback(num_videos=1, write_files=False, seed=3)
    trainer = make_trainer(tmp_path, callback, max_steps=-1, max_epochs=2, limit_val_batches=1)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    events = EventAccumulator(trainer.logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    first, second = events.Images("samples/0")
    assert (first.step, second.step) == (1, 2)
    # same seed and same (unchanged by sampling) input: identical GIFs
    assert first.encoded_image_string == second.encoded_image_string
    assert not (tmp_path / "tb" / "version_0" / "samples").exists()


def test_every_n_epochs_and_missing_method(tmp_path, module, loader):
    callback = SampleVideosCallback(num_videos=1, every_n_epochs=2, write_files=False)
    trainer = make_trainer(tmp_path, callback, max_steps=-1, max_epochs=1, limit_val_batches=1)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    assert module.sample_calls == []

    class NoSampling(type(module)):
        sample_videos = None

    with pytest.raises(TypeError, match="sample_videos"):
        make_trainer(tmp_path, SampleVideosCallback()).fit(NoSampling(), loader, loader)
