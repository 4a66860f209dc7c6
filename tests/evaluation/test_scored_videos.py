"""The listing, mapping, reading and test_step of another method's videos (``evaluate``'s generated side)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from s2dm_lightning.data.datasets import frames_to_tensor
from s2dm_lightning.evaluation.scored_videos import (
    ScoredVideo,
    ScoredVideoError,
    ScoredVideos,
    assign_to_items,
    check_lengths,
    item_keys,
    list_scored_videos,
    provenance,
    read_scored_video,
)
from s2dm_lightning.video_files import write_gif, write_mp4, write_png


def _levels(frames=4, size=8, seed=0):
    # 8x8 frames: at most 64 colours, so a GIF keeps every level (one palette entry each)
    return np.random.default_rng(seed).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)


def test_gif_and_frame_folder_read_back_exactly(tmp_path):
    frames = _levels()
    write_gif(tmp_path / "v.gif", frames)
    (tmp_path / "f").mkdir()
    for i, frame in enumerate(frames):
        write_png(tmp_path / "f" / f"{i}.png", frame)
    np.testing.assert_array_equal(read_scored_video(tmp_path / "v.gif"), frames)
    np.testing.assert_array_equal(read_scored_video(tmp_path / "f"), frames)


def test_every_format_is_listed_in_natural_order(tmp_path):
    frames = _levels(size=16)
    write_gif(tmp_path / "v10.gif", frames)
    write_mp4(tmp_path / "v2.mp4", frames)
    (tmp_path / "v3").mkdir()
    write_png(tmp_path / "v3" / "0.png", frames[0])
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / "empty").mkdir()
    assert [v.path.name for v in list_scored_videos(tmp_path)] == ["v2.mp4", "v3", "v10.gif"]


def test_pattern_selects_and_labels(tmp_path):
    for name in ("s01_happy_0.gif", "s02_sad_1.gif", "s01_happy_0_panel.gif"):
        write_gif(tmp_path / name, _levels())
    videos = list_scored_videos(tmp_path, pattern=r"(?P<subject>s\d+)_(?P<class>[a-z]+)_\d+\.gif")
    assert [(v.path.name, v.subject, v.label_class, v.video_id) for v in videos] == [
        ("s01_happy_0.gif", "s01", "happy", None), ("s02_sad_1.gif", "s02", "sad", None)]
    with pytest.raises(ScoredVideoError, match="'label'.*video_id"):
        list_scored_videos(tmp_path, pattern=r"(?P<label>.+)\.gif")
    with pytest.raises(ScoredVideoError, match="matches no video"):
        list_scored_videos(tmp_path, pattern=r".+\.mp4")


def test_csv_mapping_with_class_and_subject(tmp_path):
    write_gif(tmp_path / "a.gif", _levels())
    write_gif(tmp_path / "b.gif", _levels())
    mapping = tmp_path / "map.csv"
    mapping.write_text("file,class,subject\nb.gif,sad,s2\na.gif,happy,s1\n")
    videos = list_scored_videos(tmp_path, mapping=mapping)
    assert [(v.path.name, v.label_class, v.subject) for v in videos] == [("a.gif", "happy", "s1"), ("b.gif", "sad", "s2")]
    assert provenance(tmp_path, videos, mapping, None)["mapping"]["file"] == str(mapping.resolve())
    mapping.write_text("file,video_id\na.gif,x\nnone.gif,y\n")
    with pytest.raises(ScoredVideoError, match=r"line 3: file 'none\.gif' is not in --videos"):
        list_scored_videos(tmp_path, mapping=mapping)
    mapping.write_text("name,video_id\na.gif,x\n")
    with pytest.raises(ScoredVideoError, match="columns.*'file'"):
        list_scored_videos(tmp_path, mapping=mapping)
    with pytest.raises(ScoredVideoError, match="not both"):
        list_scored_videos(tmp_path, mapping=mapping, pattern=".*")


def test_video_ids_go_to_their_test_items():
    files = [ScoredVideo(Path(f"{vid}_{k}.gif"), vid) for vid in ("x", "y") for k in (0, 1)]
    items = ["x", "y", "x", "y"]  # 2 test videos cycled to 4 items
    assert [str(v.path) for v in assign_to_items(files, items)] == ["x_0.gif", "y_0.gif", "x_1.gif", "y_1.gif"]
    with pytest.raises(ScoredVideoError, match="'x' has 2 file.*but 3 test item"):
        assign_to_items(files, ["x", "y", "x", "x"])
    unlabelled = [ScoredVideo(Path("b.gif")), ScoredVideo(Path("a.gif"))]
    assert assign_to_items(unlabelled, None) == unlabelled
    assert item_keys(unlabelled, ["x", "y"], None) is None
    with pytest.raises(ScoredVideoError, match="give every video the same kind of label"):
        assign_to_items([files[0], ScoredVideo(Path("c.gif"), label_class="happy")], ["x", "y"])


def test_class_and_subject_go_to_items_of_their_group():
    groups = {"m1": {"class": "happy", "subject": "s1"}, "m2": {"class": "sad", "subject": "s1"},
              "m3": {"class": "happy", "subject": "s2"}}
    files = [ScoredVideo(Path(f"{c}_{k}.gif"), label_class=c) for c in ("sad", "happy") for k in (0, 1)]
    items = ["m1", "m2", "m3", "m2"]  # the test videos of 4 items: happy, sad, happy, sad
    keys = item_keys(files, items, groups.__getitem__)
    assert keys == ["class=happy", "class=sad", "class=happy", "class=sad"]
    assert [str(v.path) for v in assign_to_items(files, keys)] == ["happy_0.gif", "sad_0.gif", "happy_1.gif",
                                                                   "sad_1.gif"]
    both = [ScoredVideo(Path(f"{k}.gif"), label_class="happy", subject=s) for k, s in enumerate(("s1", "s1", "s9"))]
    with pytest.raises(ScoredVideoError, match="'class=happy subject=s9' .* is not a group of the test split"):
        assign_to_items(both, item_keys(both, ["m1", "m3", "m1"], groups.__getitem__))
    # without the data module's video_groups the labels are only recorded: listing order
    assert item_keys(files, items, None) is None


def test_too_short_and_unreadable_are_named(tmp_path):
    write_gif(tmp_path / "short.gif", _levels(frames=3))
    with pytest.raises(ScoredVideoError, match=r"short\.gif has 3 frames.*data\.num_frames=4"):
        check_lengths([ScoredVideo(tmp_path / "short.gif")], 4)
    (tmp_path / "bad.gif").write_bytes(b"GIF89a broken")
    with pytest.raises(ScoredVideoError, match=r"bad\.gif"):
        check_lengths([ScoredVideo(tmp_path / "bad.gif")], 4)


@pytest.mark.parametrize("geometry", ["crop", "pad"])
def test_test_step_returns_the_items_videos_resized_as_the_data(tmp_path, geometry):
    videos = [_levels(frames=6, size=12, seed=s)[:, :, :10] for s in range(3)]  # 12 x 10 frames, not square
    for i, frames in enumerate(videos):
        write_gif(tmp_path / f"{i}.gif", frames)
    module = ScoredVideos([ScoredVideo(tmp_path / f"{i}.gif") for i in range(3)], num_frames=4, resolution=8,
                          geometry=geometry)
    out = module.test_step({"sample_index": torch.tensor([2, 0]), "video_id": ["a", "b"]}, 0)
    expected = torch.stack([frames_to_tensor(videos[i][:4], 8, geometry) for i in (2, 0)])
    torch.testing.assert_close(out["videos"], expected, rtol=0, atol=0)
    assert out["file"] == [str(tmp_path / "2.gif"), str(tmp_path / "0.gif")]


def test_mp4_and_webm_read_at_their_size(tmp_path):
    import imageio.v2 as imageio

    frames = _levels(frames=5, size=16)
    write_mp4(tmp_path / "v.mp4", frames)
    writer = imageio.get_writer(tmp_path / "v.webm", format="FFMPEG", fps=8, codec="libvpx-vp9", macro_block_size=1,
                                ffmpeg_log_level="error")
    for frame in frames:
        writer.append_data(frame)
    writer.close()
    for name in ("v.mp4", "v.webm"):  # lossy codecs: the shape, not the levels
        assert read_scored_video(tmp_path / name).shape == (5, 16, 16, 3), name
    check_lengths([ScoredVideo(tmp_path / "v.mp4"), ScoredVideo(tmp_path / "v.webm")], 5)


def test_a_frame_that_does_not_decode_is_named_in_test_step(tmp_path):
    (tmp_path / "v").mkdir()
    for i, frame in enumerate(_levels()):
        write_png(tmp_path / "v" / f"{i}.png", frame)
    whole = (tmp_path / "v" / "2.png").read_bytes()
    (tmp_path / "v" / "2.png").write_bytes(whole[: len(whole) // 2])  # listed (counted), but cut short
    check_lengths([ScoredVideo(tmp_path / "v")], 4)
    module = ScoredVideos([ScoredVideo(tmp_path / "v")], num_frames=4, resolution=8)
    with pytest.raises(ScoredVideoError, match=r"v/2\.png.*truncated PNG"):
        module.test_step({"sample_index": torch.tensor([0])}, 0)
