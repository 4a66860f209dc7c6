from __future__ import annotations

import numpy as np
import pytest

from s2dm_lightning.data.video_io import VideoReadError, count_frames, read_video
from tests.data.conftest import moving_texture_video, write_avi, write_frames, write_mp4


def _indexed_frames(count: int, size: int = 16) -> np.ndarray:
    """Frame i is a flat image of grey level 10 * i: the order can be read back."""
    return np.stack([np.full((size, size, 3), 10 * i, dtype=np.uint8) for i in range(count)])


def test_frame_folder_natural_order_and_indices(tmp_path):
    folder = write_frames(tmp_path / "clip", _indexed_frames(12))  # img_0 ... img_11
    video = read_video(folder)
    assert video.dtype == np.uint8 and video.shape == (12, 16, 16, 3)
    # img_10 must come after img_9, not after img_1.
    assert [int(v[0, 0, 0]) for v in video] == [10 * i for i in range(12)]
    assert count_frames(folder) == 12
    picked = read_video(folder, [0, 10, 10])
    assert [int(v[0, 0, 0]) for v in picked] == [0, 100, 100]


def test_corrupt_png_names_the_image(tmp_path):
    folder = write_frames(tmp_path / "clip", _indexed_frames(4))
    bad = folder / "img_2.png"
    bad.write_bytes(bad.read_bytes()[:20])  # truncated PNG
    with pytest.raises(VideoReadError, match="img_2.png"):
        read_video(folder)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(VideoReadError, match="nowhere"):
        read_video(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoReadError, match="empty"):
        count_frames(tmp_path / "empty")


# 64 px: decord's own path; 48 px MJPG: decord 0.6 fails on its row padding and the
# reader falls back to OpenCV.
@pytest.mark.parametrize(
    "writer,suffix,size", [(write_avi, ".avi", 64), (write_mp4, ".mp4", 64), (write_avi, ".avi", 48)]
)
def test_video_file(tmp_path, writer, suffix, size):
    pan_video = moving_texture_video(size=size)
    path = writer(tmp_path / f"clip{suffix}", pan_video)
    video = read_video(path)
    assert video.shape == pan_video.shape and video.dtype == np.uint8
    assert count_frames(path) == len(pan_video)
    # Lossy codecs: close on average, not bit-exact.
    assert np.abs(video.astype(float) - pan_video).mean() < 12
    assert read_video(path, [0, 5]).shape[0] == 2


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_corrupt_video_file_names_the_file(tmp_path, pan_video, suffix):
    good = (write_avi if suffix == ".avi" else write_mp4)(tmp_path / f"good{suffix}", pan_video)
    bad = tmp_path / f"broken{suffix}"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(VideoReadError, match=f"broken\\{suffix}"):
        read_video(bad)
    garbage = tmp_path / f"garbage{suffix}"
    garbage.write_bytes(b"not a video" * 50)
    with pytest.raises(VideoReadError, match="garbage"):
        count_frames(garbage)


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(VideoReadError, match="notes.txt"):
        read_video(path)
