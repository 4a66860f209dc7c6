"""``fit --ckpt_path last`` (s2dm_lightning/resume.py): the resolver on small files, and the real CLI killed
with SIGKILL at several moments, then resumed."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Callback

REPO = Path(__file__).resolve().parents[1]
EVERY = 4  # checkpoint interval of the tiny config (training steps)
MAX_STEPS = 12


class StepPacer(Callback):
    """Test-only callback: prints ``start <step> ema <updates>`` when training starts and ``step <n>`` after
    each batch, then sleeps, so the test can kill the process at a known step."""

    def __init__(self, pause: float = 0.3) -> None:
        self.pause = pause

    def on_train_start(self, trainer, pl_module) -> None:
        ema = next(c for c in trainer.callbacks if type(c).__name__ == "EMAWeightAveraging")
        print(f"start {trainer.global_step} ema {int(ema._average_model.n_averaged)}", flush=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        print(f"step {trainer.global_step}", flush=True)
        time.sleep(self.pause)


def tiny_config(tmp_path: Path, save_top_k: int = 1) -> Path:
    """configs/synthetic.yaml's trainer and callbacks (ModelCheckpoint every_n_train_steps + save_last,
    EMAWeightAveraging) around a tiny UNet on 8 x 8 synthetic videos, everything under tmp_path."""
    config = yaml.safe_load((REPO / "configs" / "synthetic.yaml").read_text())
    trainer = config["trainer"]
    trainer.update(max_steps=MAX_STEPS, val_check_interval=None, limit_val_batches=0, log_every_n_steps=1,
                   enable_progress_bar=False, default_root_dir=str(tmp_path / "logs"))
    trainer["logger"]["init_args"]["save_dir"] = str(tmp_path / "logs")
    checkpoint, ema = trainer["callbacks"][0], trainer["callbacks"][1]
    checkpoint["init_args"].update(every_n_train_steps=EVERY, save_top_k=save_top_k)
    ema["init_args"].update(decay=0.9, update_starting_at_step=2)
    pacer = {"class_path": "tests.test_resume.StepPacer"}
    trainer["callbacks"] = [checkpoint, ema, pacer]
    init = config["model"]["init_args"]
    init["unet"]["init_args"].update(sample_size=8, block_out_channels=[8, 16], cross_attention_dim=32,
                                     down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                                     up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
                                     attention_head_dim=4, norm_num_groups=4)
    init["text_encoder"] = {"class_path": "tests.conftest.HashTextEncoder"}
    init.update(flow_size=8, flow_patch_size=4, frames_per_step=2, warmup_steps=4)
    config["data"]["init_args"].update(root=str(tmp_path / "synthetic"), resolution=8, flow_size=8, image_size=16,
                                       num_videos=8, frames_per_video=8, num_frames=4, batch_size=2, val_videos=1)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# -- the resolver on small files --------------------------------------------------------------------------


def _fake_checkpoint(path: Path, step: int, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "state_dict": {"w": torch.full((256,), float(step))}}, path)
    os.utime(path, (mtime, mtime))
    return path


def _truncate(path: Path) -> None:
    """What a kill mid-write leaves: the first part of the file, no zip central directory."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _trainer(root: Path, logger: bool = True):
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    return Trainer(default_root_dir=root, logger=TensorBoardLogger(root, name="exp") if logger else False,
                   callbacks=[ModelCheckpoint(every_n_train_steps=4, save_last=True)], enable_progress_bar=False)


def test_last_is_newest_complete_checkpoint_across_versions_and_logging_continues_there(tmp_path, capsys):
    from s2dm_lightning.resume import resolve_last

    _fake_checkpoint(tmp_path / "exp/version_0/checkpoints/epoch=0-step=8.ckpt", 8, 1000)
    newest = _fake_checkpoint(tmp_path / "exp/version_0/checkpoints/last.ckpt", 8, 1001)
    (tmp_path / "exp/version_1").mkdir()  # what Lightning's next-version rule would have picked
    trainer = _trainer(tmp_path)
    assert resolve_last(trainer, "last") == str(newest)
    assert trainer.logger.version == 0, "the logger continues the checkpoint's version folder"
    assert trainer.logger._kwargs["purge_step"] == 8
    assert "resuming from" in capsys.readouterr().err
    assert resolve_last(_trainer(tmp_path), "some/explicit.ckpt") == "some/explicit.ckpt"


def test_truncated_newest_falls_back_to_previous_complete_and_says_so(tmp_path, capsys):
    from s2dm_lightning.resume import resolve_last

    folder = tmp_path / "exp/version_0/checkpoints"
    older = _fake_checkpoint(folder / "epoch=0-step=4.ckpt", 4, 1000)
    _truncate(_fake_checkpoint(folder / "epoch=1-step=8.ckpt", 8, 1001))
    _truncate(_fake_checkpoint(folder / "last.ckpt", 8, 1002))
    assert resolve_last(_trainer(tmp_path), "last") == str(older)
    err = capsys.readouterr().err
    assert "skipping" in err and "step=8.ckpt" in err and "last.ckpt" in err and "global_step 4" in err


def test_nothing_to_resume_trains_from_step_zero(tmp_path, capsys):
    from s2dm_lightning.resume import resolve_last

    assert resolve_last(_trainer(tmp_path), "last") is None
    assert "training starts from step 0" in capsys.readouterr().err
    _truncate(_fake_checkpoint(tmp_path / "exp/version_0/checkpoints/last.ckpt", 4, 1000))
    assert resolve_last(_trainer(tmp_path), "last") is None
    assert "WARNING" in capsys.readouterr().err


def test_symlinked_last_counts_once_and_a_non_lightning_file_is_skipped(tmp_path):
    from s2dm_lightning.resume import newest_complete

    folder = tmp_path / "checkpoints"
    step = _fake_checkpoint(folder / "epoch=0-step=4.ckpt", 4, 1000)
    (folder / "last.ckpt").symlink_to(step.name)
    torch.save({"weights": torch.zeros(2)}, folder / "other.ckpt")
    os.utime(folder / "other.ckpt", (2000, 2000))
    newest, skipped = newest_complete([folder])
    assert newest.global_step == 4 and newest.path.resolve() == step
    assert [(p.name, "global_step" in why) for p, why in skipped] == [("other.ckpt", True)]
