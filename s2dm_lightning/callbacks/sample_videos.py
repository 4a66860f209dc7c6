"""Sample a few videos during validation, log them to TensorBoard and write them to disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from s2dm_lightning.callbacks.tensorboard_video import log_gif_to_tensorboard
from s2dm_lightning.io import safe_file_stem
from s2dm_lightning.video_files import write_gif, write_mp4, write_png
from s2dm_lightning.visualization import contact_sheet, to_uint8_video, video_panel

BATCH_KEYS = ("frames", "flow", "caption", "video_id")
SHEET_ROW_PX = 128  # the contact sheet upscales small frames up to about this height


def slice_batch(batch: dict[str, Any], n: int) -> dict[str, Any]:
    """The first ``n`` videos of a batch dict; tensors and lists are sliced, other values kept."""
    return {k: v[:n] if isinstance(v, (torch.Tensor, list, tuple)) else v for k, v in batch.items()}


def batch_size_of(batch: dict[str, Any]) -> int:
    frames = batch.get("frames")
    if not isinstance(frames, torch.Tensor) or frames.ndim != 5:
        raise ValueError("the validation batch must be a dict with 'frames' of shape (B, F, 3, H, W)")
    return int(frames.shape[0])


class SampleVideosCallback(pl.Callback):
    """Generate videos from the first validation videos' captions and flows, and show them.

    In every n-th validation epoch (not in the sanity check; on global rank 0 only) the
    callback calls ``pl_module.sample_videos(batch, generator)`` on the first
    ``num_videos`` videos of the first validation dataloader. It samples inside
    ``on_validation_batch_end`` on purpose: Lightning's weight-averaging (EMA) callback
    swaps the averaged weights in for the whole validation epoch, so the samples show
    the EMA model. At the end of the epoch every video is logged to TensorBoard as an
    animated GIF (tag ``samples/<i>``: generated | real | flow colour | occlusion) and,
    with ``write_files``, written as mp4 + gif panels plus a contact sheet PNG to
    ``<trainer.log_dir or default_root_dir>/samples/epoch=<4 digits>-step=<6 digits>/`` (e.g. ``epoch=0044-step=000400``).

    ``sample_videos`` gets a dict with ``"frames"`` (B, F, 3, H, W) in [-1, 1], ``"flow"``
    (B, F, 3, h, w), ``"caption"`` and ``"video_id"`` (lists of str) and returns generated
    videos (B, F, 3, H, W) in [-1, 1]. The generator is a CPU ``torch.Generator`` seeded
    afresh every round, so rounds differ only by the weights; draw noise on the CPU with
    it and move it to the model's device.

    Args:
        num_videos: how many validation videos to sample each round.
        every_n_epochs: sample in validation epochs whose (1-based) number is a multiple of this.
        fps: playback frames per second of the logged and written videos.
        scale: nearest-neighbour upscaling of the panels, so that 32-pixel videos are watchable.
        write_files: also write mp4/gif panels and a contact sheet PNG for every round.
        seed: seed of the sampling generator, the same every round so that rounds are comparable.
    """

    def __init__(
        self,
        num_videos: int = 4,
        every_n_epochs: int = 1,
        fps: int = 8,
        scale: int = 4,
        write_files: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if num_videos < 1 or every_n_epochs < 1 or fps < 1 or scale < 1:
            raise ValueError(
                "num_videos, every_n_epochs, fps and scale must all be >= 1, got "
                f"{num_videos}, {every_n_epochs}, {fps}, {scale}"
            )
        self.num_videos = num_videos
        self.every_n_epochs = every_n_epochs
        self.fps = fps
        self.scale = scale
        self.write_files = write_files
        self.seed = seed
        self._active = False
        self._generator: torch.Generator | None = None
        self._samples: list[dict[str, Any]] = []  # one entry per video of the current round
        self.last_sample_dir: Path | None = None

    # ----------------------------------------------------------------- when to sample
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not callable(getattr(pl_module, "sample_videos", None)):
            raise TypeError(
                f"SampleVideosCallback needs {type(pl_module).__name__}.sample_videos(batch, generator) "
                "returning (B, F, 3, H, W) in [-1, 1]"
            )

    def _should_sample(self, trainer: pl.Trainer) -> bool:
        return (
            not trainer.sanity_checking
            and trainer.is_global_zero
            and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        )

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._samples = []
        self._active = self._should_sample(trainer)
        self._generator = torch.Generator().manual_seed(self.seed) if self._active else None

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        needed = self.num_videos - len(self._samples)
        if not self._active or needed <= 0 or dataloader_idx != 0:
            return
        if not isinstance(batch, dict) or any(k not in batch for k in BATCH_KEYS):
            raise ValueError(f"SampleVideosCallback needs dict batches with keys {BATCH_KEYS}")
        sub = slice_batch(batch, min(needed, batch_size_of(batch)))
        with torch.no_grad():
            videos = pl_module.sample_videos(sub, self._generator)
        expected = tuple(sub["frames"].shape)
        if tuple(videos.shape) != expected:
            raise ValueError(f"sample_videos returned shape {tuple(videos.shape)}, expected {expected}")
        for i in range(expected[0]):
            # uint8 on the CPU right away: a few kB per video, nothing left on the GPU
            self._samples.append(
                {
                    "generated": to_uint8_video(videos[i]),
                    "real": to_uint8_video(sub["frames"][i]),
                    "flow": sub["flow"][i].detach().float().cpu(),
                    "caption": str(sub["caption"][i]),
                    "video_id": str(sub["video_id"][i]),
                }
            )

    # ----------------------------------------------------------------- showing the samples
    def sample_root(self, trainer: pl.Trainer) -> Path:
        """Folder that holds one sub-folder of samples per round."""
        return Path(trainer.log_dir or trainer.default_root_dir) / "samples"

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._active or not self._samples:
            return
        step = trainer.global_step
        panels = [video_panel(s["generated"], s["flow"], s["real"], scale=self.scale) for s in self._samples]
        for i, panel in enumerate(panels):
            for logger in trainer.loggers:
                log_gif_to_tensorboard(logger, f"samples/{i}", panel, step, fps=self.fps)
        if self.write_files:
            folder = self.sample_root(trainer) / f"epoch={trainer.current_epoch:04d}-step={step:06d}"
            self._write_round(folder, panels)
            self.last_sample_dir = folder
        self._samples = []
        self._active = False

    def _write_round(self, folder: Path, panels: list[np.ndarray]) -> None:
        for i, (sample, panel) in enumerate(zip(self._samples, panels, strict=True)):
            stem = f"{i:02d}_{safe_file_stem(sample['video_id'])}"
            write_mp4(folder / f"{stem}.mp4", panel, fps=self.fps)
            write_gif(folder / f"{stem}.gif", panel, fps=self.fps)
        height = self._samples[0]["generated"].shape[1]
        sheet_scale = max(1, min(self.scale, SHEET_ROW_PX // max(height, 1)))
        sheet = contact_sheet(
            [s["generated"] for s in self._samples],
            labels=[f"{i}: {s['caption']}" for i, s in enumerate(self._samples)],
            scale=sheet_scale,
        )
        write_png(folder / "contact_sheet.png", sheet)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.last_sample_dir is not None:
            rank_zero_info(
                f"Sample videos written to {self.sample_root(trainer)} (latest round: {self.last_sample_dir})"
            )
