"""``--motion_from`` decodes only the clip's frames (decord: get_batch of those indices; OpenCV: grab() past
the others, retrieve() only those; a frame folder: only those files), and they are the full decode's frames."""

from __future__ import annotations

import cv2
import numpy as np

from s2dm_lightning.data import video_io
from s2dm_lightning.pipelines.motion import flows_from_video
from tests.data.conftest import moving_texture_video, write_avi, write_frames

LENGTH, NUM_FRAMES = 40, 4
CLIP = [0, 10, 20, 30]  # the first frame of each of 4 equal intervals of 40


def _all_frames_with_opencv(path) -> np.ndarray:
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return np.stack(frames)
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def test_decord_is_asked_for_the_clip_frames_only(tmp_path, monkeypatch):
    path = write_avi(tmp_path / "long.avi", moving_texture_video(num_frames=LENGTH, size=32))
    asked: list[list[int]] = []
    open_decord = video_io._open_decord

    class Counting:
        def __init__(self, reader):
            self.reader = reader

        def __len__(self):
            return len(self.reader)

        def get_batch(self, indices):
            asked.append(list(indices))
            return self.reader.get_batch(indices)

    monkeypatch.setattr(video_io, "_open_decord", lambda p: Counting(open_decord(p)))
    _, frames = flows_from_video(path, 8, NUM_FRAMES, frame_size=32)
    assert asked == [CLIP]
    assert np.array_equal(frames, video_io.read_video(path)[CLIP])


def test_the_opencv_fallback_retrieves_only_the_clip_frames(tmp_path, monkeypatch):
    path = write_avi(tmp_path / "long.avi", moving_texture_video(num_frames=LENGTH, size=32))
    calls = {"grab": 0, "retrieve": 0}

    class Failing:  # decord refuses the batch (as it does for some widths): OpenCV reads
        def __init__(self, p):
            self.length = len(open_decord(p))

        def __len__(self):
            return self.length

        def get_batch(self, indices):
            raise RuntimeError("decord cannot decode this file")

    real_capture = cv2.VideoCapture

    class CountingCapture:  # a wrapper, not a subclass: subclassing OpenCV's class crashes at teardown
        def __init__(self, name):
            self.capture = real_capture(name)

        def isOpened(self):  # noqa: N802 - OpenCV's name
            return self.capture.isOpened()

        def grab(self):
            calls["grab"] += 1
            return self.capture.grab()

        def retrieve(self):
            calls["retrieve"] += 1
            return self.capture.retrieve()

        def release(self):
            self.capture.release()

    open_decord = video_io._open_decord
    monkeypatch.setattr(video_io, "_open_decord", Failing)
    monkeypatch.setattr(video_io.cv2, "VideoCapture", CountingCapture)
    frames = video_io.read_video(path, CLIP)
    assert calls == {"grab": CLIP[-1] + 1, "retrieve": len(CLIP)}, "no frame after the last one wanted"
    monkeypatch.undo()
    assert np.array_equal(frames, _all_frames_with_opencv(path)[CLIP])


def test_a_frame_folder_reads_only_the_clip_files(tmp_path, monkeypatch):
    folder = write_frames(tmp_path / "frames", moving_texture_video(num_frames=LENGTH, size=32))
    read: list[str] = []
    read_image = video_io._read_image
    monkeypatch.setattr(video_io, "_read_image", lambda f: read.append(f.name) or read_image(f))
    _, frames = flows_from_video(folder, 8, NUM_FRAMES, frame_size=32)
    assert len(read) == len(CLIP)
    monkeypatch.undo()
    assert np.array_equal(frames, video_io.read_video(folder)[CLIP])
