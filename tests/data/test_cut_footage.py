"""s2dm_lightning/data/cut_footage.py: long footage -> clips + metadata.csv, and configs/own_videos.yaml reading them."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2dm_lightning.config import load_datamodule
from s2dm_lightning.data import VideoFolderDataModule
from s2dm_lightning.data.cut_footage import cut_footage, scaled_size
from s2dm_lightning.data.datasets import read_metadata
from s2dm_lightning.data.video_io import VideoReadError, read_video
from tests.data.footage import flat_ramp, panning_four_by_three, write_footage

REPO = Path(__file__).resolve().parents[2]
# H.264 (quality 8, yuv420p) of a flat grey frame decodes within a few levels; neighbouring source frames
# differ by 5 levels, so a tolerance of 2 tells which source frame a decoded one is.
LEVELS = 2.0


def first_frame_levels(root: Path, clip_path: str) -> list[float]:
    return [float(frame.mean()) for frame in read_video(root / clip_path)]


def test_back_to_back_clips_hold_the_source_frames_the_metadata_names(tmp_path):
    video = write_footage(tmp_path / "long.mp4", flat_ramp(40))
    clips = cut_footage(video, tmp_path / "data", "a grey wall", clip_frames=8, test_every=3)
    assert [c.start_frame for c in clips] == [0, 8, 16, 24, 32]
    assert [c.split for c in clips] == ["train", "train", "test", "train", "train"]
    records = read_metadata(tmp_path / "data" / "metadata.csv")
    assert [r.video_id for r in records] == [f"clips/long_{s:06d}" for s in (0, 8, 16, 24, 32)]
    assert {r.caption for r in records} == {"a grey wall"}
    for clip in clips:
        levels = first_frame_levels(tmp_path / "data", clip.path)
        expected = [5 + 5 * (clip.start_frame + j) for j in range(8)]
        assert levels == pytest.approx(expected, abs=LEVELS), clip.path


@pytest.mark.parametrize(("stride", "starts"), [(4, [0, 4, 8, 12]), (12, [0, 12])])
def test_overlapping_and_gapped_strides_start_every_stride_frames(tmp_path, stride, starts):
    video = write_footage(tmp_path / "long.mp4", flat_ramp(22))
    clips = cut_footage(video, tmp_path / "data", "a grey wall", clip_frames=8, stride=stride)
    assert [c.start_frame for c in clips] == starts  # the 2 (or 6) frames after the last whole clip are left out
    for clip in clips:
        assert first_frame_levels(tmp_path / "data", clip.path)[0] == pytest.approx(5 + 5 * clip.start_frame, abs=LEVELS)


def test_max_side_scales_frames_keeping_the_aspect(tmp_path):
    assert scaled_size(576, 768, 256) == (192, 256) and scaled_size(48, 64, None) == (48, 64)
    video = write_footage(tmp_path / "long.mp4", panning_four_by_three(10))
    clips = cut_footage(video, tmp_path / "data", "a pan", clip_frames=5, max_side=32)
    assert read_video(tmp_path / "data" / clips[0].path).shape == (5, 24, 32, 3)


def test_other_rows_of_an_existing_metadata_file_are_kept_and_this_videos_replaced(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "metadata.csv").write_text("path,caption,split,video_id\nmine/a.mp4,my own clip,val,own_a\n")
    video = write_footage(tmp_path / "long.mp4", flat_ramp(16))
    cut_footage(video, root, "first caption", clip_frames=8)
    cut_footage(video, root, "second caption", clip_frames=8, split="test")
    records = read_metadata(root / "metadata.csv")
    assert [(r.video_id, r.caption, r.split) for r in records] == [
        ("own_a", "my own clip", "val"),
        ("clips/long_000000", "second caption", "test"),
        ("clips/long_000008", "second caption", "test"),
    ]


def test_bad_footage_and_values_are_named(tmp_path):
    short = write_footage(tmp_path / "short.mp4", flat_ramp(6))
    with pytest.raises(VideoReadError, match=r"short\.mp4.*6 frames decoded, fewer than --clip_frames=8"):
        cut_footage(short, tmp_path / "data", "x", clip_frames=8)
    with pytest.raises(VideoReadError, match=r"missing\.mp4.*no such file"):
        cut_footage(tmp_path / "missing.mp4", tmp_path / "data", "x")
    (tmp_path / "notes.txt").write_text("not a video")
    with pytest.raises(VideoReadError, match=r"unsupported suffix '\.txt'"):
        cut_footage(tmp_path / "notes.txt", tmp_path / "data", "x")
    with pytest.raises(ValueError, match="--clip_frames must be >= 2, got 1"):
        cut_footage(short, tmp_path / "data", "x", clip_frames=1)
    with pytest.raises(ValueError, match="--split must be one of"):
        cut_footage(short, tmp_path / "data", "x", clip_frames=2, split="training")
    assert not (tmp_path / "data" / "metadata.csv").exists(), "nothing listed when nothing was cut"


def test_own_videos_config_trains_on_the_cut_clips(tmp_path):
    """configs/own_videos.yaml's data section, pointed at cut 4:3 footage: preprocessed, then clips at its size."""
    video = write_footage(tmp_path / "street.mp4", panning_four_by_three(60))
    cut_footage(video, tmp_path / "data", "a texture pans left", clip_frames=20, test_every=3)
    data = load_datamodule(REPO / "configs" / "own_videos.yaml", root=str(tmp_path / "data"), dis_preset="ultrafast")
    assert isinstance(data, VideoFolderDataModule)
    summary = data.preprocess(progress=False)
    assert "3 computed" in str(summary) and "0 failed" in str(summary)
    data.setup("fit")
    assert [r.video_id for r in data.datasets["train"].records] == ["clips/street_000000", "clips/street_000020"]
    assert [r.video_id for r in data.datasets["val"].records] == ["clips/street_000040"]  # no val split: test's
    item = data.datasets["train"][0]
    assert item["frames"].shape == (16, 3, 32, 32) and item["flow"].shape == (16, 3, 32, 32)
    assert item["caption"] == "a texture pans left" and item["frame_indices"][0] == 0
