"""A tiny S2DM checkpoint whose config also lists a tiny synthetic dataset (the demo's test clips)."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2dm_lightning.synthetic import generate_synthetic_dataset
from tests.pipelines.conftest import S2DM_YAML, SIZE, tiny_checkpoints  # noqa: F401 (fixture)

NUM_VIDEOS = 12
FRAMES_PER_VIDEO = 6


@pytest.fixture
def demo_files(tiny_checkpoints, tmp_path) -> dict[str, Path]:  # noqa: F811
    """config (model + data sections), ckpt, data root, and an output folder."""
    root = generate_synthetic_dataset(tmp_path / "data", num_videos=NUM_VIDEOS, frames_per_video=FRAMES_PER_VIDEO,
                                      image_size=SIZE)
    config = tmp_path / "demo.yaml"
    config.write_text(S2DM_YAML + f"""data:
  class_path: s2dm_lightning.synthetic.SyntheticDataModule
  init_args:
    root: {root}
    num_videos: {NUM_VIDEOS}
    frames_per_video: {FRAMES_PER_VIDEO}
    image_size: {SIZE}
    resolution: {SIZE}
    flow_size: {SIZE}
    num_frames: 4
""")
    return {"config": config, "ckpt": tiny_checkpoints["s2dm_ckpt"], "root": root, "output": tmp_path / "out"}
