"""mp4/gif/png writers: readable results of the right size, and atomic writes."""

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import pytest

from s2dm_lightning.video_files import gif_bytes, write_gif, write_mp4, write_png


def moving_square(frames: int = 6, h: int = 16, w: int = 20) -> np.ndarray:
    video = np.full((frames, h, w, 3), 40, np.uint8)
    for i in range(frames):
        video[i, 4:10, 2 * i : 2 * i + 6] = (250, 30, 30)
    return video


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_mp4_has_right_frame_count_and_size(tmp_path):
    video = moving_square()
    path = write_mp4(tmp_path / "v.mp4", video, fps=8)
    reader = imageio_v2.get_reader(path, format="FFMPEG")
    frames = np.stack([frame for frame in reader.iter_data()])
    reader.close()
    assert frames.shape == video.shape
    assert np.abs(frames.astype(int) - video).mean() < 8  # lossy, but the same picture
    assert leftovers(tmp_path) == ["v.mp4"]


def test_mp4_odd_size_is_padded_to_even(tmp_path):
    video = moving_square(3, 15, 17)
    reader = imageio_v2.get_reader(write_mp4(tmp_path / "odd.mp4", video), format="FFMPEG")
    frames = np.stack([frame for frame in reader.iter_data()])
    reader.close()
    assert frames.shape == (3, 16, 18, 3)


def test_gif_pixels_frames_and_loop(tmp_path):
    video = moving_square()
    path = write_gif(tmp_path / "v.gif", video, fps=8)
    frames = iio.imread(path, index=None, mode="RGB")
    assert frames.shape == video.shape
    # few colours: the 256-colour palette keeps them within quantisation tolerance
    assert np.abs(frames.astype(int) - video).max() <= 8
    meta = iio.immeta(path, index=0)
    assert meta.get("loop") == 0  # loops forever
    assert gif_bytes(video).startswith(b"GIF89a")


def test_png_round_trip(tmp_path):
    image = moving_square(1)[0]
    assert np.array_equal(iio.imread(write_png(tmp_path / "a.png", image)), image)


@pytest.mark.parametrize(
    "writer, name, bad",
    [
        (write_mp4, "v.mp4", np.zeros((4, 8, 8), np.uint8)),
        (write_gif, "v.gif", np.zeros((4, 8, 8, 3), np.float32)),
        (write_png, "a.png", np.zeros((2, 8, 8, 3), np.uint8)),
    ],
)
def test_bad_input_leaves_nothing(tmp_path, writer, name, bad):
    with pytest.raises(ValueError):
        writer(tmp_path / name, bad)
    assert leftovers(tmp_path) == []


def test_failure_during_encoding_removes_temp_and_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "v.mp4"
    target.write_bytes(b"previous")

    class Boom(RuntimeError):
        pass

    def broken_get_writer(uri, **kwargs):
        # the encoder has already created its output when it fails
        with open(uri, "wb") as f:
            f.write(b"half")
        raise Boom("encoder died")

    monkeypatch.setattr(imageio_v2, "get_writer", broken_get_writer)
    with pytest.raises(Boom):
        write_mp4(target, moving_square())
    assert leftovers(tmp_path) == ["v.mp4"] and target.read_bytes() == b"previous"
