"""A small synthetic video dataset, written in seconds, in the on-disk form of a real one.

Layout::

    root/
      metadata.csv          video_id,path,caption,split,shape,color,motion[,transform]
      generation.json       the arguments it was made with ("world" when not the default)
      videos/<video_id>/frame_0000.png ...
      ground_truth/<video_id>.npz   the true flow conditions (``world="disocclusion"`` only)

This module describes the default world; ``world="disocclusion"`` (:mod:`.disocclusion`) keeps its
shapes, colours, motions and split but pans a textured background, turns or scales the shape and
brings in a second one, so that warping the first frame cannot make the video.

Content of a video: one saturated shape (square, circle or triangle; red, green, blue
or yellow), about 1/4 of the image wide, over a muted two-colour gradient background
in a random direction. The background is the "stochastic detail" of the video: drawn
per video, EXACTLY constant over its frames (pixels the shape does not touch are
bit-identical). The shape always starts at the image centre in frame 0 (frame 0's
flow is the identity and says nothing about position) and moves with constant
velocity left, right, up or down, 30-35% of the image size over the video. It is
rendered with 4 x 4 supersampling, so sub-pixel motion is smooth.

Split (as the paper holds out person-expression pairs): whole (color, shape, motion)
combinations are held out. Videos cycle through a seeded permutation of the 48
combinations; a seeded 20% of the combinations in use go entirely to ``test``, chosen
so that every colour, shape and motion still appears in ``train``.
"""

from __future__ import annotations

import csv
import itertools
import json
import warnings
from pathlib import Path
from typing import Literal, get_args

import cv2
import numpy as np

from s2dm_lightning.io import atomic_folder
from s2dm_lightning.run_lock import folder_lock
from s2dm_lightning.synthetic.disocclusion import (
    disocclusion_caption,
    render_disocclusion_video,
    transforms_for,
)
from s2dm_lightning.synthetic.shapes import COLORS, MOTIONS, SHAPES, coverage
from s2dm_lightning.synthetic.textured import render_textured_video
from s2dm_lightning.validation import check_choice, check_number

METADATA_COLUMNS = ("video_id", "path", "caption", "split", "shape", "color", "motion")
#: Which synthetic world a dataset shows: "default" (shapes over smooth still backgrounds) or
#: "disocclusion" (textured panning background, turning/scaling shape, a shape entering; see .disocclusion)
#: or "textured" (a checked shape moving over a still striped background; see .textured).
World = Literal["default", "disocclusion", "textured"]
WORLDS: tuple[str, ...] = get_args(World)
GROUND_TRUTH_FOLDER = "ground_truth"  # <video_id>.npz per video, non-default worlds only
TEST_COMBINATION_FRACTION = 0.2


def caption_for(color: str, shape: str, motion: str) -> str:
    """The caption of a video, e.g. "a red square moves to the left"."""
    return f"a {color} {shape} {motion}"


def all_combinations() -> list[tuple[str, str, str]]:
    """Every (color, shape, motion) combination, in a fixed order."""
    return list(itertools.product(COLORS, SHAPES, MOTIONS))


def split_combinations(
    combinations: list[tuple[str, str, str]], rng: np.random.Generator
) -> set[tuple[str, str, str]]:
    """A seeded set of held-out combinations (about 20%) leaving every attribute value in train."""
    if len(combinations) < 2:
        raise ValueError(
            f"need at least 2 attribute combinations to make a train/test split, got {len(combinations)}"
        )
    count = max(1, round(TEST_COMBINATION_FRACTION * len(combinations)))
    for _ in range(1000):
        chosen = rng.choice(len(combinations), size=count, replace=False)
        test = {combinations[i] for i in chosen}
        train = [c for c in combinations if c not in test]
        if all({c[k] for c in train} == {c[k] for c in combinations} for k in range(3)):
            return test
    # Tiny datasets (a handful of combinations) may not allow it; keep at least one test combination.
    return {combinations[int(rng.integers(len(combinations)))]}


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth two-colour gradient in a random direction, muted colours, float (size, size, 3)."""
    first = rng.uniform(10, 70, size=3)
    second = rng.uniform(10, 70, size=3)
    angle = rng.uniform(0, 2 * np.pi)
    coords = (np.arange(size, dtype=np.float64) + 0.5) / size - 0.5
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    t = np.clip((xs * np.cos(angle) + ys * np.sin(angle)) + 0.5, 0.0, 1.0)[..., None]
    return first * (1 - t) + second * t


def render_video(
    color: str, shape: str, motion: str, frames: int, size: int, rng: np.random.Generator
) -> np.ndarray:
    """uint8 RGB (frames, size, size, 3): the shape starts at the centre and moves at constant velocity."""
    background = _background(size, rng)
    travel = rng.uniform(0.30, 0.35) * size
    step = travel / max(frames - 1, 1)
    direction = np.array(MOTIONS[motion])
    half = size / 8  # shape width = size / 4
    rgb = np.array(COLORS[color], dtype=np.float64)
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for i in range(frames):
        cx, cy = size / 2 + direction * step * i
        alpha = coverage(shape, cx, cy, half, size)[..., None]
        # Where alpha == 0 this is exactly round(background): constant over the video.
        out[i] = np.round(background * (1 - alpha) + rgb * alpha).astype(np.uint8)
    return out


def _render(
    world: World, color: str, shape: str, motion: str, frames: int, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, str, dict[str, str], np.ndarray | None]:
    """(frames, caption, extra metadata, ground-truth conditions or None) of one video of ``world``."""
    if world == "default":
        return render_video(color, shape, motion, frames, size, rng), caption_for(color, shape, motion), {}, None
    if world == "textured":
        video, conditions = render_textured_video(color, shape, motion, frames, size, rng)
        return video, caption_for(color, shape, motion), {}, conditions
    transforms = transforms_for(shape)
    transform = transforms[int(rng.integers(len(transforms)))]
    video, conditions = render_disocclusion_video(color, shape, motion, transform, frames, size, rng)
    caption = disocclusion_caption(color, shape, motion, transform)
    return video, caption, {"transform": transform}, conditions


def _write_dataset(
    target: Path, num_videos: int, frames_per_video: int, image_size: int, seed: int, world: World = "default"
) -> None:
    rng = np.random.default_rng(seed)
    combos = all_combinations()
    order = rng.permutation(len(combos))
    in_use = [combos[i] for i in order[: min(num_videos, len(combos))]]
    test_combos = split_combinations(in_use, rng)
    rows = []
    (target / "videos").mkdir(parents=True)
    if world != "default":
        (target / GROUND_TRUTH_FOLDER).mkdir()
    for index in range(num_videos):
        color, shape, motion = in_use[index % len(in_use)]
        video_id = f"video_{index:04d}"
        folder = target / "videos" / video_id
        folder.mkdir()
        # One generator per video: a video's look does not depend on how many came before.
        video_rng = np.random.default_rng([seed, index])
        video, caption, extra, conditions = _render(
            world, color, shape, motion, frames_per_video, image_size, video_rng
        )
        for frame_index, frame in enumerate(video):
            frame_path = folder / f"frame_{frame_index:04d}.png"
            # cv2.imwrite reports a failed write (a full disk) only by returning False
            if not cv2.imwrite(str(frame_path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {frame_path} (a full disk or a file-size limit?)")
        if conditions is not None:
            np.savez_compressed(target / GROUND_TRUTH_FOLDER / f"{video_id}.npz", conditions=conditions)
        split = "test" if (color, shape, motion) in test_combos else "train"
        rows.append(
            {
                "video_id": video_id,
                "path": f"videos/{video_id}",
                "caption": caption,
                "split": split,
                "shape": shape,
                "color": color,
                "motion": motion,
                **extra,
            }
        )
    with open(target / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))  # METADATA_COLUMNS, then a world's extras
        writer.writeheader()
        writer.writerows(rows)


def read_ground_truth(root: str | Path, video_id: str) -> np.ndarray:
    """The ground-truth conditions (frames, 3, size, size) of a video of a non-default world.

    Format of :mod:`s2dm_lightning.flow_format` at the generated image size: where each pixel of
    frame t comes from in frame 0, and 1 where its content is visible in frame 0.
    """
    path = Path(root) / GROUND_TRUTH_FOLDER / f"{video_id}.npz"
    if not path.exists():
        raise FileNotFoundError(
            f"no ground-truth flow '{path}': only datasets of a non-default world (data.init_args.world) have them"
        )
    with np.load(path, allow_pickle=False) as stored:
        return stored["conditions"]


def check_generation_arguments(
    num_videos: int, frames_per_video: int, image_size: int, prefix: str = "", world: str = "default"
) -> None:
    """The generator's sizes and world; ``prefix`` + the name is the config key (``data.init_args.`` from the data module)."""
    check_choice(prefix + "world", world, WORLDS)
    check_number(prefix + "num_videos", num_videos, at_least=2, note="one train and one test video at least")
    check_number(prefix + "frames_per_video", frames_per_video, at_least=2)
    check_number(prefix + "image_size", image_size, at_least=8, note="the shape is a quarter of the image wide")


def generate_synthetic_dataset(
    root: str | Path,
    num_videos: int = 96,
    frames_per_video: int = 32,
    image_size: int = 32,
    seed: int = 0,
    overwrite: bool = False,
    world: World = "default",
) -> Path:
    """Write the synthetic dataset to ``root`` (atomically) and return ``root``.

    ``world`` picks the content (see :data:`World`); it is recorded in ``generation.json`` (only when not
    "default", so default datasets stay as they were) and a dataset of another world at ``root`` is an error.
    Nothing is done when ``root/metadata.csv`` already exists, unless ``overwrite``.
    The dataset is generated in a temporary folder beside ``root`` and renamed into
    place, so an interrupted generation never leaves a half dataset at ``root``.
    """
    root = Path(root)
    check_generation_arguments(num_videos, frames_per_video, image_size, world=world)
    settings: dict[str, int | str] = {
        "num_videos": num_videos,
        "frames_per_video": frames_per_video,
        "image_size": image_size,
        "seed": seed,
    }
    if world != "default":
        settings["world"] = world
    if (root / "metadata.csv").exists() and not overwrite:
        _warn_if_different(root, settings)
        return root
    if root.exists() and not overwrite and any(root.iterdir()):
        raise FileExistsError(
            f"'{root}' exists and is not empty but holds no metadata.csv; refusing to write the synthetic "
            "dataset into it (choose another data.root, or remove the folder)"
        )
    # Two processes generating at once (two fits or preprocesses on a new root) would each rename a world
    # onto root, giving its files new mtimes, which stale a flow cache made from the first: the second waits
    # for the first, then finds the dataset written.
    new_root = not root.exists()
    with folder_lock(root, "synthetic dataset", wait=True):  # (the lock creates root)
        if (root / "metadata.csv").exists() and not overwrite:
            _warn_if_different(root, settings)
            return root
        # The staging folder is renamed onto root only once every file in it is written: its files need no
        # atomic writes of their own (a full disk or a kill leaves no dataset at root, and no metadata.csv).
        try:
            with atomic_folder(root) as staging:
                _write_dataset(staging, num_videos, frames_per_video, image_size, seed, world)
                (staging / "generation.json").write_text(json.dumps(settings, indent=2) + "\n")
        except BaseException:
            if new_root and root.is_dir() and not any(root.iterdir()):
                root.rmdir()  # as it was: no folder (only the lock file beside it, see run_lock)
            raise
    return root


def _warn_if_different(root: Path, settings: dict[str, int | str]) -> None:
    record = root / "generation.json"
    if not record.exists():
        return
    try:
        existing = json.loads(record.read_text())
    except (OSError, json.JSONDecodeError):
        return
    found, wanted = existing.get("world", "default"), settings.get("world", "default")
    if found != wanted:
        # Another world's videos would train and score silently as this one's: never keep them.
        raise ValueError(
            f"synthetic dataset at '{root}' shows the {found!r} world ('{record}'), not the requested "
            f"world {wanted!r} (data.init_args.world); choose another data.root for it"
        )
    if existing != settings:
        warnings.warn(
            f"synthetic dataset at '{root}' was generated with {existing}, not the requested {settings}; "
            "keeping the existing one (pass overwrite=True or another root to regenerate)",
            stacklevel=3,
        )
