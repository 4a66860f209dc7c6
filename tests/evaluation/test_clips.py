"""Each preset's real clips: which videos and which frames (indices checked), and the mp4 round trip."""

from __future__ import annotations

import pytest
import torch

from s2dm_lightning.data.datasets import frames_to_tensor
from s2dm_lightning.data.sampling import linspace_frame_indices
from s2dm_lightning.data.video_io import read_video
from s2dm_lightning.evaluation.clips import RealClipDataset, mp4_round_trip, real_clip_plan, real_dataset
from s2dm_lightning.evaluation.protocol import resolve_protocol
from tests.evaluation.helpers import ClipDataModule, tiny_synthetic_datamodule


def test_stylegan_v_plan_cycles_the_long_enough_videos_with_16_consecutive_frames_at_seeded_offsets():
    protocol, _ = resolve_protocol("stylegan-v")
    lengths = [24, 10, 30]  # the 10-frame video cannot give 16 consecutive frames: left out
    plan = real_clip_plan(lengths, protocol, 16)
    assert len(plan) == 2048 and [video for video, _ in plan[:4]] == [0, 2, 0, 2]
    for video, indices in plan:
        assert indices == list(range(indices[0], indices[0] + 16)) and indices[-1] < lengths[video]
    starts = {indices[0] for video, indices in plan if video == 2}
    assert starts == set(range(30 - 16 + 1)), "every start offset of the 30-frame video is drawn"
    assert real_clip_plan(lengths, protocol, 16) == plan, "seeded: the same on every call (and rank)"
    other, _ = resolve_protocol("stylegan-v", real_seed=1)
    assert real_clip_plan(lengths, other, 16) != plan


def test_lvdm_plan_draws_one_frame_per_interval_like_the_training_loader():
    protocol, _ = resolve_protocol("lvdm", num_real_clips=50)
    plan = real_clip_plan([32, 48], protocol, 16)
    assert len(plan) == 50 and [video for video, _ in plan[:3]] == [0, 1, 0]
    for video, indices in plan:
        width = [32, 48][video] // 16
        assert indices[0] == 0 and all(i * width <= f < (i + 1) * width for i, f in enumerate(indices))
    assert len({tuple(indices) for video, indices in plan if video == 0}) > 1, "random within the intervals"


def test_stride_picks_frames_stride_apart_and_leaves_out_videos_too_short_for_the_span():
    protocol, _ = resolve_protocol("custom", frames="consecutive", frame_stride=3, num_real_clips=6)
    plan = real_clip_plan([9, 10, 20], protocol, 4)  # span (4 - 1) * 3 + 1 = 10 frames
    assert {video for video, _ in plan} == {1, 2}
    assert all(indices == [indices[0] + 3 * k for k in range(4)] for _, indices in plan)
    assert all(indices[0] == 0 for video, indices in plan if video == 1), "a 10-frame video fits at start 0 only"
    with pytest.raises(ValueError, match="metrics.frame_stride=3"):
        real_clip_plan([9], protocol, 4)


def test_spread_plan_is_the_first_frame_of_each_interval():
    protocol, _ = resolve_protocol("custom", num_real_clips=3)  # s2dm frames, 3 clips: a planned set
    assert real_clip_plan([24], protocol, 16)[0][1] == [i * 24 // 16 for i in range(16)]


def test_each_preset_reads_the_planned_frames_of_its_split(tiny_synthetic_root):
    datamodule = tiny_synthetic_datamodule(tiny_synthetic_root)
    datamodule.setup("test")
    test_set = datamodule.datasets["test"]
    records = datamodule.records()
    train_ids = [r.video_id for r in records if r.split == "train"]

    s2dm = real_dataset(resolve_protocol("s2dm")[0], datamodule, test_set)
    assert s2dm is test_set and len(s2dm) == 2  # every test clip once, 16 spread frames
    assert s2dm[0]["frame_indices"].tolist() == [i * 24 // 16 for i in range(16)]

    stylegan = real_dataset(resolve_protocol("stylegan-v", num_real_clips=13)[0], datamodule, test_set)
    assert isinstance(stylegan, RealClipDataset) and len(stylegan) == 13 and stylegan.num_frames == 16
    assert [stylegan[j]["video_id"] for j in (0, 9, 10, 12)] == [train_ids[0], train_ids[9], train_ids[0], train_ids[2]]
    lvdm = real_dataset(resolve_protocol("lvdm", num_real_clips=4)[0], datamodule, test_set)
    assert [lvdm[j]["video_id"] for j in range(4)] == train_ids[:4]
    every = real_dataset(resolve_protocol("custom", real_split="all")[0], datamodule, test_set)
    assert len(every) == 12 and len(every.records) == 12

    for dataset in (stylegan, lvdm):
        item = dataset[3]
        record = next(r for r in records if r.video_id == item["video_id"])
        expected = frames_to_tensor(read_video(record.path, item["frame_indices"].tolist()), 32)
        assert torch.equal(item["frames"], expected), "the frames read are the planned ones"
    first = stylegan[0]["frame_indices"]
    assert torch.equal(first, torch.arange(first[0], first[0] + 16))


def test_a_data_module_that_cannot_list_its_videos_only_serves_the_s2dm_real_set():
    datamodule = ClipDataModule()
    test_set = datamodule.test_dataloader().dataset
    assert real_dataset(resolve_protocol("s2dm")[0], datamodule, test_set) is test_set
    with pytest.raises(ValueError, match="metrics.protocol='stylegan-v'.*needs a data module that lists its videos"):
        real_dataset(resolve_protocol("stylegan-v")[0], datamodule, test_set)


def test_mp4_round_trip_keeps_the_shape_and_changes_pixels_by_compression_only():
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(-0.8, 0.8, 18).view(1, 1, 1, 1, 18)
    videos = (ramp + 0.15 * torch.randn(2, 5, 3, 18, 18, generator=g)).clamp(-1, 1)  # even size: no padding
    odd = videos[:, :, :, :17, :17]  # odd size: padded for yuv420p, cropped back
    for clip in (videos, odd):
        back = mp4_round_trip(clip)
        assert back.shape == clip.shape and back.dtype == torch.float32
        error = (back - clip).abs().mean().item()
        # H.264 of this noise moves pixels by ~0.09 on average: far more than uint8 rounding (~0.002), far less
        # than the picture's range (1.6)
        assert 0.02 < error < 0.15, error


def test_lfdm_plan_is_every_test_video_once_at_linspace_frames():
    plan = real_clip_plan([46, 5, 40], resolve_protocol("lfdm")[0], 40)
    assert [video for video, _ in plan] == [0, 1, 2]
    assert plan[0][1] == linspace_frame_indices(46, 40) and plan[2][1] == list(range(40))
    assert plan[1][1] == [0, 1, 2, 3, 4] + [4] * 35  # LFDM repeats the last frame of a short video
