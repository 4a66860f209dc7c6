from __future__ import annotations

import numpy as np
import pytest
import torch

from s2dm_lightning.data.sampling import (
    consecutive_frame_indices,
    consecutive_span,
    interval_frame_indices,
    linspace_frame_indices,
)


def test_training_indices_one_per_interval_first_is_zero():
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(50):
        indices = interval_frame_indices(64, 16, random=True, generator=generator)
        assert len(indices) == 16 and indices[0] == 0
        for i, index in enumerate(indices):
            assert 4 * i <= index < 4 * (i + 1)  # interval i of 64 / 16 = 4 frames
        seen.add(tuple(indices))
    assert len(seen) > 40  # actually random


def test_uneven_intervals_cover_the_video():
    generator = torch.Generator().manual_seed(1)
    hits = set()
    for _ in range(200):
        indices = interval_frame_indices(37, 16, random=True, generator=generator)
        assert indices == sorted(indices) and indices[0] == 0 and indices[-1] < 37
        hits.update(indices)
    bounds = [i * 37 // 16 for i in range(17)]
    # Every frame of intervals 1..15 can be drawn.
    assert set(range(bounds[1], 37)) <= hits


def test_evaluation_is_deterministic_first_of_each_interval():
    first = interval_frame_indices(64, 16, random=False)
    assert first == interval_frame_indices(64, 16, random=False) == list(range(0, 64, 4))


def test_consecutive_indices_follow_the_stride_from_the_start():
    assert consecutive_frame_indices(40, 4, stride=1, start=5) == [5, 6, 7, 8]
    assert consecutive_frame_indices(40, 4, stride=3, start=2) == [2, 5, 8, 11]
    assert consecutive_span(16, 8) == 121 and consecutive_span(16, 1) == 16
    assert consecutive_frame_indices(10, 4, stride=3, start=0) == [0, 3, 6, 9]  # exactly fits


def test_a_consecutive_clip_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="do not fit a video of 10 frames"):
        consecutive_frame_indices(10, 4, stride=3, start=1)
    with pytest.raises(ValueError, match="frame_stride"):
        consecutive_frame_indices(10, 4, stride=0)


def test_linspace_frames_are_lfdms_and_short_videos_repeat_the_last():
    # LFDM's expression (DM/datasets_mug.py line 169): numpy's float linspace truncated to int, which at 46 frames
    # gives frame 14 where exact arithmetic (45 * 13 / 39 = 15) would give 15: the indices must be numpy's
    for length in (40, 41, 46, 91, 170, 300):
        expected = [int(v) for v in np.linspace(0, length - 1, 40)]
        assert linspace_frame_indices(length, 40) == expected
    assert linspace_frame_indices(46, 40)[13] == 14 and 45 * 13 // 39 == 15
    assert linspace_frame_indices(46, 40)[-1] == 45 and linspace_frame_indices(100, 1) == [0]
    assert linspace_frame_indices(5, 8) == [0, 1, 2, 3, 4, 4, 4, 4]
