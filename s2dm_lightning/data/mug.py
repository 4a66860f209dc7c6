"""The MUG facial expression dataset (Aifanti et al., WIAMIS 2010) as the paper uses it (Sec. 4.1).

Layout of the download (subject folders are zero-padded numbers, "001" ... "086")::

    subjects3/<subject>/<expression>/take<NNN>/img_<NNNN>.jpg
    subjects3/<subject>/session0/<expression>/take<NNN>/img_<NNNN>.jpg   (a few subjects)

``data.root`` may be the ``subjects3`` folder itself or the folder that holds it. The
seven expressions are anger, disgust, fear, happiness, neutral, sadness and surprise
(folders with other names are skipped with a warning, take folders without frames too).

Video ids follow LFDM's video names: ``<subject>_<expression>_<take>`` or
``<subject>_<session>_<expression>_<take>``, e.g. ``020_fear_take000``.
Caption: "Person 020 is making fear expression" (the paper's, Fig. 1).
Split: 36 of the 364 subject-expression combinations held out for test, see
:mod:`s2dm_lightning.data.splits`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from s2dm_lightning.data.datamodule import VideoDataModule
from s2dm_lightning.data.datasets import VideoRecord
from s2dm_lightning.data.splits import check_split, is_lfdm_test_subject, load_or_draw_split
from s2dm_lightning.data.video_io import list_frame_files

log = logging.getLogger(__name__)

EXPRESSIONS = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
PAPER_HELD_OUT, PAPER_COMBINATIONS = 36, 364


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def mug_caption(subject: str, expression: str) -> str:
    """The paper's prompt, e.g. "Person 020 is making fear expression"."""
    label = subject.zfill(3) if subject.isdigit() else subject
    return f"Person {label} is making {expression} expression"


class MUGDataModule(VideoDataModule):
    """MUG facial expressions: 52 subjects x 7 expressions, about 1,009 frame-folder videos.

    ``root`` is the ``subjects3`` folder or its parent. 36/364 of the subject-expression
    combinations present are held out for test (a fixed-seed draw, written to
    ``split_file`` and reused on later runs); validation uses the first ``val_videos``
    test videos. Every other base-class argument (``flow_size``, ``num_frames``,
    ``num_workers``, ``cache_dir``, ``preprocess_workers``, ``regionmm_dir``, ...) is
    accepted as in :class:`VideoDataModule`.

    Args:
        root: the MUG ``subjects3`` folder, or the folder holding it (the ``data.root`` value).
        split_seed: seed of the held-out draw (recorded in the split file).
        split_file: JSON file of the held-out combinations; default ``<cache_dir>/mug_split.json``.
        split: ``s2dm`` (the paper's held-out subject-expression combinations) or ``lfdm`` (LFDM's 26 test
            subjects, :data:`s2dm_lightning.data.splits.LFDM_TEST_SUBJECTS`; no split file).
            Reused when it exists; an error names it if it does not fit the dataset.
        resolution: frames are resized to resolution x resolution (paper: 128).
        flow_size: resolution of the stored flow/occlusion maps (RegionMM's 32 for 128-px frames).
        batch_size: videos per batch (paper: 4).
        kwargs: the other arguments of the base ``VideoDataModule``.
    """

    dataset_name = "MUG"

    def __init__(
        self,
        root: str,
        split_seed: int = 0,
        split_file: str | None = None,
        split: str = "s2dm",
        resolution: int = 128,
        flow_size: int = 32,
        batch_size: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, resolution=resolution, flow_size=flow_size, batch_size=batch_size, **kwargs)
        self.split_seed, self.split = split_seed, check_split(split)
        self.split_file = split_file if split_file is not None else str(Path(self.cache_dir) / "mug_split.json")

    def subjects_dir(self) -> Path:
        """The ``subjects3`` folder: ``root/subjects3`` if it exists, else ``root`` itself."""
        root = self.check_root()
        return root / "subjects3" if (root / "subjects3").is_dir() else root

    def find_videos(self) -> list[tuple[str, Path, str, str]]:
        """(video_id, take folder, subject, expression) of every take with frames, sorted by video id."""
        base = self.subjects_dir()
        videos: list[tuple[str, Path, str, str]] = []
        skipped: list[str] = []
        for subject_dir in _subfolders(base):
            subject = subject_dir.name
            sessions = [d for d in _subfolders(subject_dir) if d.name.lower().startswith("session")]
            for parent in [subject_dir, *sessions]:
                prefix = [subject] if parent is subject_dir else [subject, parent.name]
                for expression_dir in _subfolders(parent):
                    expression = expression_dir.name.lower()
                    if expression_dir in sessions:
                        continue
                    if expression not in EXPRESSIONS:
                        skipped.append(f"{expression_dir} (not an expression)")
                        continue
                    for take_dir in _subfolders(expression_dir):
                        if not list_frame_files(take_dir):
                            skipped.append(f"{take_dir} (no frames)")
                            continue
                        video_id = "_".join([*prefix, expression, take_dir.name])
                        videos.append((video_id, take_dir, subject, expression))
        if skipped:
            log.warning(
                "MUG: skipped %d folder(s) under '%s': %s%s",
                len(skipped), base, "; ".join(skipped[:5]), " ..." if len(skipped) > 5 else "",
            )
        if not videos:
            raise FileNotFoundError(
                f"no MUG videos under '{base}' (data.root={self.root!r}); expected "
                "subjects3/<subject>/[session0/]<expression>/take<NNN>/img_<NNNN>.jpg with expressions "
                f"{list(EXPRESSIONS)}"
            )
        return sorted(videos)

    @staticmethod
    def video_groups(video_id: str) -> dict[str, str]:
        """The class (expression) and subject of a video id (cFVD / sFVD), e.g. ``020_fear_take000``."""
        parts = video_id.split("_")
        return {"class": parts[-2], "subject": parts[0]}

    def list_records(self) -> list[VideoRecord]:
        videos = self.find_videos()
        if self.split == "lfdm":
            return [VideoRecord(video_id, path, mug_caption(subject, expression),
                                "test" if is_lfdm_test_subject(self.dataset_name, subject) else "train")
                    for video_id, path, subject, expression in videos]
        held_out = load_or_draw_split(
            (f"{subject}/{expression}" for _, _, subject, expression in videos),
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
                mug_caption(subject, expression),
                "test" if f"{subject}/{expression}" in held_out else "train",
            )
            for video_id, path, subject, expression in videos
        ]
