from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from s2dm_lightning.data.video_io import read_video
from s2dm_lightning.synthetic import world as synthetic
from s2dm_lightning.synthetic.world import (
    COLORS,
    METADATA_COLUMNS,
    MOTIONS,
    generate_synthetic_dataset,
    read_ground_truth,
)


def _rows(root) -> list[dict[str, str]]:
    with open(root / "metadata.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    return generate_synthetic_dataset(
        tmp_path_factory.mktemp("syn") / "ds", num_videos=12, frames_per_video=8
    )


def test_layout_and_captions(small_dataset):
    rows = _rows(small_dataset)
    assert len(rows) == 12
    assert list(rows[0]) == ["video_id", "path", "caption", "split", "shape", "color", "motion"]
    for row in rows:
        assert row["caption"] == f"a {row['color']} {row['shape']} {row['motion']}"
        assert (small_dataset / row["path"] / "frame_0007.png").exists()
    assert read_video(small_dataset / rows[0]["path"]).shape == (8, 32, 32, 3)


def test_shape_starts_at_centre_and_background_is_constant(small_dataset):
    size, half = 32, 32 / 8
    for row in _rows(small_dataset):
        video = read_video(small_dataset / row["path"]).astype(int)
        color = np.array(COLORS[row["color"]])
        # Frame 0: the four centre pixels are fully covered by the shape.
        assert np.abs(video[0, 15:17, 15:17] - color).max() <= 1, row["caption"]
        covered = np.argwhere(np.abs(video[0] - color).sum(-1) < 30)
        box_centre = (covered.min(0) + covered.max(0)) / 2  # of the shape's bounding box
        assert np.abs(box_centre - (size / 2 - 0.5)).max() <= 1.0  # a triangle's tip is only partly covered
        # Pixels away from the shape's path never change (the per-video "stochastic detail").
        direction = np.array(MOTIONS[row["motion"]])
        ys, xs = np.mgrid[0:size, 0:size] + 0.5
        along = np.clip((xs - size / 2) * direction[0] + (ys - size / 2) * direction[1], 0, 0.35 * size)
        nearest_x, nearest_y = size / 2 + along * direction[0], size / 2 + along * direction[1]
        far = np.maximum(np.abs(xs - nearest_x), np.abs(ys - nearest_y)) > half + 1
        assert far.sum() > 400
        assert (video[:, far] == video[0, far]).all()
        # ... while the shape does move, by 30-35% of the image size.
        moved = np.argwhere(np.abs(video[-1] - color).sum(-1) < 30)
        travel = np.abs((moved.min(0) + moved.max(0)) / 2 - box_centre).max()
        assert 0.27 * size < travel < 0.38 * size


def test_split_holds_out_whole_combinations(tmp_path):
    root = generate_synthetic_dataset(tmp_path / "full", num_videos=96, frames_per_video=2, image_size=8)
    rows = _rows(root)
    key = lambda r: (r["color"], r["shape"], r["motion"])  # noqa: E731
    train = {key(r) for r in rows if r["split"] == "train"}
    test = {key(r) for r in rows if r["split"] == "test"}
    assert train.isdisjoint(test) and test
    fraction = sum(r["split"] == "test" for r in rows) / len(rows)
    assert 0.15 <= fraction <= 0.25
    for position in range(3):  # every colour, shape and motion still appears in training
        assert {k[position] for k in train} == {k[position] for k in train | test}


def test_deterministic_given_seed(tmp_path):
    kwargs = dict(num_videos=6, frames_per_video=4, image_size=16)
    first = generate_synthetic_dataset(tmp_path / "a", seed=3, **kwargs)
    second = generate_synthetic_dataset(tmp_path / "b", seed=3, **kwargs)
    other = generate_synthetic_dataset(tmp_path / "c", seed=4, **kwargs)
    assert (first / "metadata.csv").read_text() == (second / "metadata.csv").read_text()
    for row in _rows(first):
        assert np.array_equal(read_video(first / row["path"]), read_video(second / row["path"]))
    assert not np.array_equal(
        read_video(first / "videos/video_0000"), read_video(other / "videos/video_0000")
    )


def test_atomic_and_idempotent(tmp_path, monkeypatch):
    root = tmp_path / "ds"

    def interrupted(target, *args):
        (target / "videos").mkdir()
        raise KeyboardInterrupt  # killed midway

    monkeypatch.setattr(synthetic, "_write_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic_dataset(root, num_videos=4, frames_per_video=2, image_size=8)
    # neither a half dataset nor a staging folder; only the generation's lock file (run_lock.py) beside it
    assert [p.name for p in tmp_path.iterdir()] == [".ds.lock"]
    monkeypatch.undo()

    generate_synthetic_dataset(root, num_videos=4, frames_per_video=2, image_size=8)
    stamp = (root / "metadata.csv").stat().st_mtime_ns
    generate_synthetic_dataset(root, num_videos=4, frames_per_video=2, image_size=8)  # present: no-op
    assert (root / "metadata.csv").stat().st_mtime_ns == stamp
    with pytest.warns(UserWarning, match="generated with"):
        generate_synthetic_dataset(root, num_videos=5, frames_per_video=2, image_size=8)
    generate_synthetic_dataset(root, num_videos=5, frames_per_video=2, image_size=8, overwrite=True)
    assert len(_rows(root)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ds.lock", "ds"]  # no staging folder left


def _dataset_digest(root) -> str:
    """sha256 over every file's relative path and content; PNGs by their decoded pixels (so an OpenCV
    PNG-encoder change cannot move it, a pixel change does)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(cv2.imread(str(path)).tobytes() if path.suffix == ".png" else path.read_bytes())
    return digest.hexdigest()


def test_default_world_is_unchanged_by_the_world_switch(tmp_path):
    # Pinned from main at 6e09ff8 (before `world` existed): this same call and _dataset_digest run with
    # PYTHONPATH=/work/main. Files: metadata.csv, generation.json (no "world" key) and the PNG frames.
    root = generate_synthetic_dataset(tmp_path / "ds", num_videos=6, frames_per_video=4, image_size=16, seed=5)
    assert _dataset_digest(root) == "d1b83544afe6ed5cea72fb8caec8571306d413819fa59ec1da57ffd6e69bea1c"
    explicit = generate_synthetic_dataset(tmp_path / "explicit", num_videos=6, frames_per_video=4, image_size=16,
                                          seed=5, world="default")
    assert _dataset_digest(explicit) == _dataset_digest(root)


def test_disocclusion_world_dataset(tmp_path):
    root = generate_synthetic_dataset(tmp_path / "ds", num_videos=8, frames_per_video=4, image_size=16,
                                      world="disocclusion")
    default = generate_synthetic_dataset(tmp_path / "default", num_videos=8, frames_per_video=4, image_size=16)
    assert json.loads((root / "generation.json").read_text())["world"] == "disocclusion"
    rows, default_rows = _rows(root), _rows(default)
    assert list(rows[0]) == [*METADATA_COLUMNS, "transform"]
    for row, default_row in zip(rows, default_rows, strict=True):
        # Same combinations and held-out split as the default world; the caption adds the transform.
        key = ("video_id", "path", "split", "shape", "color", "motion")
        assert [row[k] for k in key] == [default_row[k] for k in key]
        assert row["caption"] == f"a {row['transform']} {row['color']} {row['shape']} {row['motion']}"
        conditions = read_ground_truth(root, row["video_id"])
        assert conditions.shape == (4, 3, 16, 16) and conditions.dtype == np.float32
        assert read_video(root / row["path"]).shape == (4, 16, 16, 3)
    with pytest.raises(FileNotFoundError, match="only datasets of a non-default world"):
        read_ground_truth(default, "video_0000")


def test_a_root_of_the_other_world_is_an_error(tmp_path):
    kwargs = dict(num_videos=4, frames_per_video=2, image_size=8)
    default = generate_synthetic_dataset(tmp_path / "default", **kwargs)
    with pytest.raises(ValueError, match=r"'default' world .*not the requested world 'disocclusion' \(data.init_args.world\)"):
        generate_synthetic_dataset(default, world="disocclusion", **kwargs)
    other = generate_synthetic_dataset(tmp_path / "other", world="disocclusion", **kwargs)
    with pytest.raises(ValueError, match="'disocclusion' world"):
        generate_synthetic_dataset(other, **kwargs)
    with pytest.raises(ValueError, match="world must be one of 'default', 'disocclusion', 'textured'; got 'moving'"):
        generate_synthetic_dataset(tmp_path / "bad", world="moving", **kwargs)
    assert not (tmp_path / "bad").exists()


def test_two_processes_generating_one_world_at_once_write_it_once(tmp_path):
    """Unlocked, the second renamed its own copy onto the first: new files (new mtimes) under a flow cache made
    from the first, which then went stale and was recomputed. Now the second waits and keeps the first's files."""
    from tests.test_resume import ENV, REPO

    root = tmp_path / "ds"
    script = ("import sys\nfrom s2dm_lightning.synthetic import generate_synthetic_dataset\n"
              f"root = generate_synthetic_dataset({str(root)!r}, num_videos=4, frames_per_video=8, image_size=32)\n"
              "print((root / 'videos/video_0000/frame_0000.png').stat().st_ino, "
              "(root / 'metadata.csv').stat().st_mtime_ns)\n")
    runs = [subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in results]
    seen = {out.strip() for out, _ in results}
    assert len(seen) == 1, f"the two processes saw different files (one rewrote the world): {seen}"
    assert seen == {f"{(root / 'videos/video_0000/frame_0000.png').stat().st_ino} "
                    f"{(root / 'metadata.csv').stat().st_mtime_ns}"}
