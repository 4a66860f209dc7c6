"""Write the videos of ``trainer.predict`` to disk: mp4, gif, panels, a contact sheet and an index."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from s2dm_lightning.callbacks.sample_videos import SHEET_ROW_PX
from s2dm_lightning.io import atomic_write_bytes, safe_file_stem
from s2dm_lightning.video_files import write_gif, write_mp4, write_png
from s2dm_lightning.visualization import contact_sheet, to_uint8_video, upscale, video_panel

MAX_SHEET_ROWS = 16


class VideoPredictionWriter(BasePredictionWriter):
    """Write every predicted video as files, plus a contact sheet and an index at the end.

    ``predict_step`` must return a dict with ``"videos"`` (B, F, 3, H, W) in [-1, 1],
    ``"flow"`` (B, F, 3, h, w), ``"caption"`` and ``"video_id"`` (lists of str). For
    every video the writer writes ``<video_id>.mp4``, ``<video_id>.gif`` and, with
    ``write_panels``, ``<video_id>_panel.gif`` (generated | real, where the prediction has ``real`` | flow colour | occlusion); a
    ``video_id`` is made file-name safe ('/' becomes '_') and repeated ids get a
    ``-<n>`` suffix. At the end of the epoch it writes ``contact_sheet.png`` (the first
    16 videos, captions as labels) and ``index.csv`` (video_id, caption, files).

    Under DDP every rank writes its own videos into ``output_dir``; rank 0 writes
    ``contact_sheet.png``/``index.csv`` for its videos, rank k > 0 writes
    ``contact_sheet_rank<k>.png``/``index_rank<k>.csv`` for its own. Pass
    ``return_predictions=False`` to ``trainer.predict`` to keep the videos out of memory.

    Args:
        output_dir: folder for the files (created; relative paths are relative to the working directory).
        fps: playback frames per second of the written videos.
        scale: nearest-neighbour upscaling of every written video, panel and sheet (1 = native size).
        write_panels: also write ``<video_id>_panel.gif`` with the flow and occlusion beside the video.
    """

    def __init__(
        self, output_dir: str = "outputs/predict", fps: int = 8, scale: int = 4, write_panels: bool = True
    ) -> None:
        super().__init__(write_interval="batch")
        if fps < 1 or scale < 1:
            raise ValueError(f"fps and scale must be >= 1, got {fps}, {scale}")
        self.output_dir = Path(output_dir)
        self.fps = fps
        self.scale = scale
        self.write_panels = write_panels
        self._rows: list[dict[str, str]] = []  # one index row per video written this epoch
        self._thumbnails: list[tuple[str, np.ndarray]] = []  # (caption, uint8 video), capped
        self._used_names: set[str] = set()

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rows, self._thumbnails, self._used_names = [], [], set()

    def _unique_stem(self, video_id: str) -> str:
        stem, n = safe_file_stem(video_id), 1
        while stem in self._used_names:
            n += 1
            stem = f"{safe_file_stem(video_id)}-{n}"
        self._used_names.add(stem)
        return stem

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(prediction, dict) or "videos" not in prediction:
            raise ValueError(
                "VideoPredictionWriter needs predict_step to return a dict with 'videos' (B, F, 3, H, W)"
            )
        videos: torch.Tensor = prediction["videos"]
        if videos.ndim != 5:
            raise ValueError(f"'videos' must have shape (B, F, 3, H, W), got {tuple(videos.shape)}")
        num = videos.shape[0]
        flows, reals = prediction.get("flow"), prediction.get("real")  # real: the clip the flows came from
        captions = list(prediction.get("caption") or [""] * num)
        video_ids = list(prediction.get("video_id") or [f"b{batch_idx:05d}_{i:02d}" for i in range(num)])
        if len(captions) != num or len(video_ids) != num:
            raise ValueError(f"{num} videos but {len(captions)} captions and {len(video_ids)} video ids")
        for i in range(num):
            frames = to_uint8_video(videos[i])
            stem = self._unique_stem(video_ids[i])
            big = upscale(frames, self.scale)
            files = [
                write_mp4(self.output_dir / f"{stem}.mp4", big, fps=self.fps).name,
                write_gif(self.output_dir / f"{stem}.gif", big, fps=self.fps).name,
            ]
            if self.write_panels and flows is not None:
                panel = video_panel(frames, flows[i], reals[i] if reals is not None else None, scale=self.scale)
                files.append(write_gif(self.output_dir / f"{stem}_panel.gif", panel, fps=self.fps).name)
            self._rows.append(
                {"video_id": str(video_ids[i]), "caption": str(captions[i]), "files": ";".join(files)}
            )
            if len(self._thumbnails) < MAX_SHEET_ROWS:
                self._thumbnails.append((str(captions[i]), frames))

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._rows:
            return
        suffix = "" if trainer.global_rank == 0 else f"_rank{trainer.global_rank}"
        height = self._thumbnails[0][1].shape[1]
        sheet = contact_sheet(
            [video for _, video in self._thumbnails],
            labels=[caption for caption, _ in self._thumbnails],
            scale=max(1, min(self.scale, SHEET_ROW_PX // max(height, 1))),
        )
        write_png(self.output_dir / f"contact_sheet{suffix}.png", sheet)
        text = io.StringIO()
        table = csv.DictWriter(text, fieldnames=["video_id", "caption", "files"], lineterminator="\n")
        table.writeheader()
        table.writerows(self._rows)
        atomic_write_bytes(self.output_dir / f"index{suffix}.csv", text.getvalue().encode("utf-8"))
