"""The flow estimator's reader, ``read_gray_video``: gray frames at estimation size, decoding no more than needed."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import pytest

from s2dm_lightning.data.flow import FlowSettings, estimation_shape
from s2dm_lightning.data.video_io import (
    VideoReadError,
    jpeg_reduction,
    read_gray_video,
    read_video,
    to_gray,
)
from tests.data.conftest import textured, write_avi, write_frames

# Estimation at up to 64 px: a 256 x 192 frame is estimated at 64 x 48, a quarter of it.
SETTINGS = FlowSettings(max_estimation_size=64, min_estimation_size=16)
SHAPE_FOR = functools.partial(estimation_shape, settings=SETTINGS)


def _colour_video(num_frames: int, height: int, width: int) -> np.ndarray:
    """uint8 RGB frames of a colour texture panning 2 px a frame (real chroma, so luma-only decoding shows).

    Structures of ~4 px and more, like camera frames (the conftest texture varies from pixel to
    pixel: every resampling method gives another answer there, and no camera image looks like it).
    """
    small = np.stack([textured(height // 4, (width + 2 * num_frames) // 4, seed) for seed in range(3)], axis=-1)
    big = cv2.resize(small, (width + 2 * num_frames, height), interpolation=cv2.INTER_CUBIC)
    return np.stack([big[:, 2 * i : 2 * i + width] for i in range(num_frames)])


def _full_then_resize(path, crop):
    frames = read_video(path, crop=crop)
    return to_gray(frames, SHAPE_FOR(*frames.shape[1:3]))


def test_jpeg_reduction_is_the_largest_still_at_least_the_target():
    assert jpeg_reduction(192, 256, None, SHAPE_FOR) == (4, (48, 64))
    assert jpeg_reduction(896, 896, None, functools.partial(estimation_shape, settings=FlowSettings())) == (
        2, (256, 256))  # MUG: 1/4 would give 224 < 256
    # UTD-MHAD with LFDM's crop: 480 x 336 -> 256 x 179, less than 2x smaller: full decode.
    mhad = functools.partial(estimation_shape, settings=FlowSettings())
    assert jpeg_reduction(480, 640, (0.0, 1.0, 0.24375, 0.76875), mhad) == (1, (256, 179))
    # The crop is applied to the reduced frame too: only the cropped part must reach the target.
    assert jpeg_reduction(192, 256, (0.0, 1.0, 0.0, 0.5), SHAPE_FOR)[0] == 2
    # ... and its edges must lie on the reduced pixel grid, else the crop would shift: column 51 is on no grid.
    assert jpeg_reduction(192, 256, (0.0, 1.0, 0.2, 1.0), SHAPE_FOR)[0] == 1


# libjpeg's reduced decoding scales in the DCT domain (each 8 x 8 block's low frequencies), not by
# averaging pixels like INTER_AREA, and gives the JPEG's own luma instead of gray recomputed from
# rounded RGB; then a second resize (e.g. 72 -> 64 rows) follows it. Measured on these frames: mean abs
# difference 0.06 grey levels at 1/4 scale, 0.36-0.41 at 1/2 scale plus a crop and a 1.125x resize,
# never more than 2 levels. Bounds: mean < 0.75, max <= 3 (uint8 levels); a crop shifted by one
# pixel (the bug the grid rule prevents) gives a mean of ~5 on the same data.
@pytest.mark.parametrize("crop", [None, (0.125, 0.875, 0.25, 0.75), (20, 172, 40, 216), (0.1, 0.9, 0.2, 0.8)])
def test_reduced_jpeg_decoding_matches_full_decoding_then_resizing(tmp_path, crop):
    folder = write_frames(tmp_path / "v", _colour_video(3, 192, 256), suffix=".jpg")
    expected = _full_then_resize(folder, crop)
    gray = read_gray_video(folder, SHAPE_FOR, crop)
    assert gray.dtype == np.uint8 and gray.shape == expected.shape
    difference = np.abs(gray.astype(np.int16) - expected)
    assert difference.mean() < 0.75 and difference.max() <= 3, (difference.mean(), difference.max())


def test_png_frames_are_decoded_as_before(tmp_path):
    # PNG has no reduced decoding: full decode, gray, area resize -- the same pixels as the RGB path.
    folder = write_frames(tmp_path / "v", _colour_video(3, 96, 128), suffix=".png")
    assert np.array_equal(read_gray_video(folder, SHAPE_FOR, (0.1, 0.9, 0.2, 0.8)),
                          _full_then_resize(folder, (0.1, 0.9, 0.2, 0.8)))


def test_video_file_read_with_opencv_matches_decord(tmp_path):
    # Both decode MJPG with FFmpeg: identical here; a tolerance in case the two bundled FFmpeg builds'
    # YUV -> RGB conversions round differently.
    path = write_avi(tmp_path / "v.avi", _colour_video(5, 96, 128))
    for crop in (None, (0.0, 1.0, 0.24375, 0.76875)):
        expected = _full_then_resize(path, crop)
        gray = read_gray_video(path, SHAPE_FOR, crop)
        assert gray.shape == expected.shape
        assert np.abs(gray.astype(np.int16) - expected).mean() <= 0.5


def test_bad_frames_are_named(tmp_path):
    folder = write_frames(tmp_path / "v", _colour_video(3, 96, 128), suffix=".jpg")
    cv2.imwrite(str(folder / "img_3.jpg"), np.zeros((50, 60, 3), np.uint8))
    with pytest.raises(VideoReadError, match="different sizes.*img_3.jpg"):
        read_gray_video(folder, SHAPE_FOR)
    (folder / "img_3.jpg").unlink()
    data = (folder / "img_1.jpg").read_bytes()
    (folder / "img_1.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoReadError, match="img_1.jpg.*truncated JPEG"):
        read_gray_video(folder, SHAPE_FOR)
