"""The UTD-MHAD human action dataset (Chen et al., ICIP 2015) as the paper uses it (Sec. 4.1).

The RGB part of the download holds ``a<action>_s<subject>_t<trial>_color.avi`` files
(640 x 480, 32-96 frames; 27 actions x 8 subjects x 4 trials, 861 of them: the dataset
removed 3 corrupt sequences). ``data.root`` may be the folder of the .avi files or a
folder holding it as ``RGB/``. Other files are ignored; actions outside 1-27 are
skipped with a warning.

Video ids follow LFDM's names: ``a<action>_s<subject>_t<trial>``, e.g. ``a27_s3_t1``.
Caption: "<appearance of the subject> is <action>" with the dataset's 27 action phrases
(:data:`ACTIONS`) and the appearances of an editable YAML file (default: the package's
``mhad_subjects.yaml``, "Person 1" ... "Person 8").

Crop: by default every frame is cut to all rows and columns 0.24375-0.76875 of the width
-- LFDM's box around the person, rows 0-480 and columns 156-492 of the 640 x 480 frames
(LFDM's ``preprocessing/preprocess_MHAD.py``: the union of the depth maps' bounding
boxes, scaled to the RGB frames), given as fractions so that it fits downsampled copies
of the dataset too -- before resizing to 128 x 128 and before flow estimation, so frames
and flows show the same area. The crop is part of the flow cache's identity: changing it
recomputes the flows.

Split: 21 of the 216 subject-action combinations held out for test, see
:mod:`s2dm_lightning.data.splits`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import yaml

from s2dm_lightning.data.datamodule import VideoDataModule
from s2dm_lightning.data.datasets import VideoRecord
from s2dm_lightning.data.splits import check_split, is_lfdm_test_subject, load_or_draw_split
from s2dm_lightning.data.video_io import check_crop

log = logging.getLogger(__name__)

# The official action list (https://personal.utdallas.edu/~kehtar/UTD-MHAD.html), action 1 first.
ACTIONS = (
    "right arm swipe to the left",
    "right arm swipe to the right",
    "right hand wave",
    "two hand front clap",
    "right arm throw",
    "cross arms in the chest",
    "basketball shoot",
    "right hand draw x",
    "right hand draw circle (clockwise)",
    "right hand draw circle (counter clockwise)",
    "draw triangle",
    "bowling (right hand)",
    "front boxing",
    "baseball swing from right",
    "tennis right hand forehand swing",
    "arm curl (two arms)",
    "tennis serve",
    "two hand push",
    "right hand knock on door",
    "right hand catch an object",
    "right hand pick up and throw",
    "jogging in place",
    "walking in place",
    "sit to stand",
    "stand to sit",
    "forward lunge (left foot forward)",
    "squat (two arms stretch out)",
)
LFDM_CROP = (0.0, 1.0, 156 / 640, 492 / 640)  # = (0.0, 1.0, 0.24375, 0.76875)
PAPER_HELD_OUT, PAPER_COMBINATIONS = 21, 216
DEFAULT_SUBJECTS_FILE = Path(__file__).with_name("mhad_subjects.yaml")
FILE_PATTERN = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_color\.avi$", re.IGNORECASE)


def load_subject_appearances(path: str | Path) -> dict[int, str]:
    """Subject number -> appearance text, from a YAML mapping (keys ``3``, ``"3"`` or ``"s3"``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"subjects file '{path}' does not exist")
    try:
        payload = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"subjects file '{path}' is not valid YAML: {error}") from error
    if not isinstance(payload, dict) or not payload:
        raise ValueError(f"subjects file '{path}' must be a mapping of subject number -> appearance, e.g. '3: Person 3'")
    appearances: dict[int, str] = {}
    for key, value in payload.items():
        match = re.fullmatch(r"s?(\d+)", str(key).strip(), re.IGNORECASE)
        if match is None:
            raise ValueError(f"subjects file '{path}': key {key!r} is not a subject number like 3 or s3")
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"subjects file '{path}': subject {key!r} needs a non-empty appearance text, got {value!r}")
        appearances[int(match.group(1))] = value.strip()
    return appearances


def mhad_caption(appearance: str, action: int) -> str:
    """E.g. "Person 3 is squat (two arms stretch out)"."""
    return f"{appearance} is {ACTIONS[action - 1]}"


class MHADDataModule(VideoDataModule):
    """UTD-MHAD human actions: 27 actions x 8 subjects x 4 trials, 861 .avi videos read with decord.

    ``root`` is the folder of the ``a*_s*_t*_color.avi`` files or its parent with an
    ``RGB/`` folder. 21/216 of the subject-action combinations present are held out for
    test (a fixed-seed draw, written to ``split_file`` and reused); validation uses the
    first ``val_videos`` test videos. Every other base-class argument (``flow_size``,
    ``num_frames``, ``cache_dir``, ``preprocess_workers``, ``regionmm_dir``, ...) is
    accepted as in :class:`VideoDataModule`.

    Args:
        root: the folder of the UTD-MHAD RGB .avi files, or the folder holding it as ``RGB/``.
        crop: (top, bottom, left, right) box each frame is cut to before resizing and flow
            estimation, as fractions of the frame (all values <= 1; fits any frame size) or in
            pixels (must lie inside the frames); default LFDM's box around the person,
            [0.0, 1.0, 0.24375, 0.76875] (pixels 0-480 x 156-492 of the 640 x 480 frames);
            null = whole frames.
        subjects_file: YAML mapping subject number -> appearance used in the prompts; default the
            package's ``mhad_subjects.yaml`` ("Person 1" ... "Person 8").
        split_seed: seed of the held-out draw (recorded in the split file).
        split_file: JSON file of the held-out combinations; default ``<cache_dir>/mhad_split.json``.
        split: ``s2dm`` (the paper's held-out subject-action combinations) or ``lfdm`` (LFDM's test subjects
            6, 8, 4, 7, :data:`s2dm_lightning.data.splits.LFDM_TEST_SUBJECTS`; no split file).
            Reused when it exists; an error names it if it does not fit the dataset.
        resolution: frames are resized to resolution x resolution (paper: 128).
        flow_size: resolution of the stored flow/occlusion maps (RegionMM's 32 for 128-px frames).
        batch_size: videos per batch (paper: 4).
        kwargs: the other arguments of the base ``VideoDataModule``.
    """

    dataset_name = "UTD-MHAD"

    def __init__(
        self,
        root: str,
        crop: tuple[float, float, float, float] | None = LFDM_CROP,
        subjects_file: str | None = None,
        split_seed: int = 0,
        split_file: str | None = None,
        split: str = "s2dm",
        resolution: int = 128,
        flow_size: int = 32,
        batch_size: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, resolution=resolution, flow_size=flow_size, batch_size=batch_size, **kwargs)
        self.crop = check_crop(crop, "data.init_args.crop")
        self.subjects_file = subjects_file if subjects_file is not None else str(DEFAULT_SUBJECTS_FILE)
        self.split_seed, self.split = split_seed, check_split(split)
        self.split_file = split_file if split_file is not None else str(Path(self.cache_dir) / "mhad_split.json")

    @staticmethod
    def video_groups(video_id: str) -> dict[str, str]:
        """The class (action) and subject of a video id (cFVD / sFVD), e.g. ``a27_s3_t1`` -> 27, 3."""
        action, subject, _ = video_id.split("_")
        return {"class": action.removeprefix("a"), "subject": subject.removeprefix("s")}

    def frame_crop(self) -> tuple[float, float, float, float] | None:
        return self.crop

    def videos_dir(self) -> Path:
        """``root/RGB`` if it exists, else ``root``."""
        root = self.check_root()
        return root / "RGB" if (root / "RGB").is_dir() else root

    def find_videos(self) -> list[tuple[str, Path, int, int]]:
        """(video_id, file, action, subject) of every action video, sorted by action, subject, trial."""
        folder = self.videos_dir()
        found: list[tuple[int, int, int, Path]] = []
        bad_actions: list[str] = []
        for path in folder.iterdir():
            match = FILE_PATTERN.match(path.name)
            if match is None or not path.is_file():
                continue
            action, subject, trial = (int(g) for g in match.groups())
            if not 1 <= action <= len(ACTIONS):
                bad_actions.append(path.name)
                continue
            found.append((action, subject, trial, path))
        if bad_actions:
            log.warning("UTD-MHAD: skipped %d file(s) with an action outside 1-27: %s", len(bad_actions), bad_actions[:5])
        if not found:
            raise FileNotFoundError(
                f"no UTD-MHAD videos a<action>_s<subject>_t<trial>_color.avi in '{folder}' (data.root={self.root!r})"
            )
        return [(f"a{a}_s{s}_t{t}", path, a, s) for a, s, t, path in sorted(found)]

    def list_records(self) -> list[VideoRecord]:
        videos = self.find_videos()
        appearances = load_subject_appearances(self.subjects_file)
        missing = sorted({s for _, _, _, s in videos} - set(appearances))
        if missing:
            raise ValueError(
                f"subjects file '{self.subjects_file}' has no appearance for subject(s) {missing} of the dataset"
            )
        if self.split == "lfdm":
            return [VideoRecord(video_id, path, mhad_caption(appearances[subject], action),
                                "test" if is_lfdm_test_subject(self.dataset_name, subject) else "train")
                    for video_id, path, action, subject in videos]
        held_out = load_or_draw_split(
            (f"s{subject}/a{action}" for _, _, action, subject in videos),
            self.split_file,
            self.dataset_name,
            self.split_seed,
            PAPER_HELD_OUT,
            PAPER_COMBINATIONS,
        )
        return [
            VideoRecord(
                video_id,
                path,
                mhad_caption(appearances[subject], action),
                "test" if f"s{subject}/a{action}" in held_out else "train",
            )
            for video_id, path, action, subject in videos
        ]
