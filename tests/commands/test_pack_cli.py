"""``python -m s2dm_lightning pack``: the real command in a subprocess, its shards read by the streaming datamodule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("litdata", reason="the stream extra (litdata) is not installed")
REPO = Path(__file__).resolve().parents[2]
TINY = ["--data.init_args.num_videos=8", "--data.init_args.frames_per_video=8", "--data.init_args.image_size=16",
        "--data.init_args.resolution=16", "--data.init_args.flow_size=4", "--data.init_args.num_frames=4",
        "--data.init_args.dis_preset=ultrafast"]


def test_pack_writes_shards_the_streaming_datamodule_trains_from(tmp_path):
    from s2dm_lightning.data.streaming import StreamingVideoDataModule

    command = [sys.executable, "-m", "s2dm_lightning", "pack", "--config", str(REPO / "configs/synthetic.yaml"),
               f"--data.init_args.root={tmp_path / 'data'}", *TINY, "--output_dir", str(tmp_path / "shards"),
               "--clips_per_video", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"pack: wrote the train clips to {tmp_path / 'shards' / 'train'}" in done.stdout
    streaming = StreamingVideoDataModule(str(tmp_path / "shards"), batch_size=4, resolution=16, flow_size=4)
    streaming.setup("fit")
    clips = [clip for batch in streaming.train_dataloader() for clip in batch["clip_id"]]
    assert len(clips) == len(set(clips)) == streaming.metadata["train"]["num_clips"] > 0
    bad = subprocess.run([*command[:-2], "--clips_per_video", "0"], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: CommandLineError: pack: "
                                                                                  "--clips_per_video=0")
