"""s2dm_lightning/data/video_io.py: truncated frame files and crops given as fractions or pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from s2dm_lightning.data.video_io import (
    VideoReadError,
    check_crop,
    crop_box,
    crop_frames,
    image_file_problem,
    read_video,
)
from tests.data.conftest import moving_texture_video, write_frames


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_frame_is_named_and_never_decoded(tmp_path, suffix, capfd):
    folder = write_frames(tmp_path / "take", moving_texture_video(num_frames=3, size=32), suffix=suffix)
    bad = folder / f"img_1{suffix}"
    whole = bad.read_bytes()
    # OpenCV alone does not notice: the cut file decodes (grey-filled for JPEG), or at most fails without a name.
    bad.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(VideoReadError, match=f"img_1\\{suffix}'.*truncated {'JPEG' if suffix == '.jpg' else 'PNG'}"):
        read_video(folder)
    assert "Premature end of JPEG" not in capfd.readouterr().err
    bad.write_bytes(whole)
    assert read_video(folder).shape == (3, 32, 32, 3)


def test_image_file_problem():
    png = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes()
    jpg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    assert image_file_problem(jpg[:8], jpg[-64:], ".jpg") is None
    assert image_file_problem(jpg[:8], jpg[-64:] + b"\x00\x00", ".JPEG") is None  # zero padding after FF D9
    assert "truncated JPEG" in image_file_problem(jpg[:8], jpg[-64:-10], ".jpg")
    assert "not a JPEG" in image_file_problem(png[:8], png[-64:], ".jpg")
    assert image_file_problem(png[:8], png[-64:], ".png") is None
    assert "truncated PNG" in image_file_problem(png[:8], png[-64:-1], ".png")
    assert "not a PNG" in image_file_problem(jpg[:8], jpg[-64:], ".png")


def test_fraction_crop_fits_any_frame_size():
    lfdm = (0.0, 1.0, 156 / 640, 492 / 640)
    assert crop_box(lfdm, 480, 640) == (0, 480, 156, 492)  # LFDM's pixels on the original frames
    assert crop_box(lfdm, 96, 128) == (0, 96, 31, 98)  # the same box on a 5x downsampled copy
    frames = np.arange(2 * 96 * 128 * 3, dtype=np.uint32).reshape(2, 96, 128, 3).astype(np.uint8)
    assert np.array_equal(crop_frames(frames, lfdm), frames[:, :, 31:98])


def test_pixel_crop_must_fit_the_frame():
    frames = np.zeros((1, 48, 64, 3), np.uint8)
    assert crop_frames(frames, (0, 48, 16, 48)).shape == (1, 48, 32, 3)
    with pytest.raises(VideoReadError, match=r"clip.avi.*\(0, 480, 156, 492\).*outside the 64x48 frame.*fractions"):
        crop_frames(frames, (0, 480, 156, 492), "clip.avi")


@pytest.mark.parametrize("crop,message", [
    ((0, 1, 0), "must be"), ((0.5, 0.2, 0, 1), "top < bottom"), ((-1, 10, 0, 10), "0 <= top"),
    ((0, 0.5, 2, 10), "mixes pixels"), ((0, 1, 0, True), "must be"),
])
def test_bad_crop_forms_are_named(crop, message):
    with pytest.raises(ValueError, match=f"data.init_args.crop=.*{message}"):
        check_crop(crop, "data.init_args.crop")
