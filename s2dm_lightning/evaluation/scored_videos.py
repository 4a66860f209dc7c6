"""Another method's videos as the "generated" side of the ``test`` protocol (``python -m s2dm_lightning evaluate``).

A folder of videos (``.mp4 .gif .avi .webm .mov .mkv`` files and folders of ``.png/.jpg`` frames) is listed
(:func:`list_scored_videos`), optionally mapped to the test split's conditions, and handed to
``trainer.test`` by :class:`ScoredVideos`, a LightningModule whose ``test_step`` returns the files of the
batch's items instead of sampling. The :class:`~s2dm_lightning.evaluation.VideoMetricsCallback` then scores
them exactly as it scores ``test``'s own videos: the same real side, statistics file, feature network and
report; nothing of the metric code is repeated here.

Which file is which video (docs/evaluation.md, "Scoring another method's videos"):

- no mapping: every video of the folder, in natural name order (``v2`` before ``v10``); FVD/KVD compare
  two sets, so no file needs a condition;
- ``--pattern REGEX``: the entries whose name (file name with suffix, or folder name) matches REGEX in full;
  its named groups ``video_id``, ``class`` and ``subject`` are read from the name;
- ``--mapping CSV``: a table with a ``file`` column (relative to the folder) and ``video_id``, or ``class``
  and ``subject``.

With a ``video_id`` every file is scored for that test video's condition: the k-th test item of the video
gets its k-th file (natural order). With ``class``/``subject`` (and a data module that knows each test
video's, ``video_groups``) the files go to the items of their class and subject in the same way, so the
per-class and per-subject FVDs, which read each item's groups, see each file in its own group; without
``video_groups`` the labels are only carried into ``test_step``'s output and the report.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image, ImageSequence

from s2dm_lightning.data.datasets import frames_to_tensor
from s2dm_lightning.data.geometry import DEFAULT_FRAME_GEOMETRY
from s2dm_lightning.data.video_io import (
    VIDEO_SUFFIXES,
    VideoReadError,
    count_frames,
    list_frame_files,
    natural_key,
    read_video,
)

#: What a scored video may be besides a frame folder: the datasets' video files and GIF (what ``predict`` writes).
SCORED_SUFFIXES = (*VIDEO_SUFFIXES, ".gif")
LABELS = ("video_id", "class", "subject")


class ScoredVideoError(ValueError):
    """A scored video, the mapping or the pattern does not fit: printed alone, naming the file or key."""

    printed_alone = True  # s2dm_lightning.commands.errors prints it as the last line


@dataclass(frozen=True)
class ScoredVideo:
    """One video of the folder and the labels the mapping gave it (None where it gave none)."""

    path: Path
    video_id: str | None = None
    label_class: str | None = None
    subject: str | None = None


def _is_video(path: Path) -> bool:
    if path.is_dir():
        return bool(list_frame_files(path))
    return path.is_file() and path.suffix.lower() in SCORED_SUFFIXES


def _from_pattern(folder: Path, pattern: str) -> list[ScoredVideo]:
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise ScoredVideoError(f"--pattern {pattern!r} is not a regular expression ({error})") from error
    unknown = sorted(set(regex.groupindex) - set(LABELS))
    if unknown:
        raise ScoredVideoError(f"--pattern {pattern!r} has the group(s) {unknown}; the groups it may name are {list(LABELS)}")
    found = []
    for path in folder.iterdir():
        match = regex.fullmatch(path.name)
        if match and _is_video(path):
            labels = match.groupdict()
            found.append(ScoredVideo(path, labels.get("video_id"), labels.get("class"), labels.get("subject")))
    if not found:
        raise ScoredVideoError(f"--pattern {pattern!r} matches no video in --videos {folder} (it must match a "
                               f"whole name with its suffix, e.g. '(?P<video_id>.+)\\.gif')")
    return found


def _from_mapping(folder: Path, mapping: Path) -> list[ScoredVideo]:
    try:
        with open(mapping, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise ScoredVideoError(f"--mapping {mapping}: cannot read it ({error.strerror or error})") from error
    columns = set(rows[0]) if rows else set()
    if "file" not in columns or not ({"video_id"} <= columns or {"class", "subject"} <= columns):
        raise ScoredVideoError(f"--mapping {mapping} has the columns {sorted(columns)}; it needs 'file' and "
                               "'video_id', or 'file', 'class' and 'subject'")
    found = []
    for line, row in enumerate(rows, start=2):
        name = (row.get("file") or "").strip()
        path = folder / name
        if not name or not path.exists():
            raise ScoredVideoError(f"--mapping {mapping}, line {line}: file {name!r} is not in --videos {folder}")
        if not _is_video(path):
            raise ScoredVideoError(f"--mapping {mapping}, line {line}: {path} is not a video (a frame folder or "
                                   f"one of {'/'.join(SCORED_SUFFIXES)})")
        found.append(ScoredVideo(path, row.get("video_id"), row.get("class"), row.get("subject")))
    if not found:
        raise ScoredVideoError(f"--mapping {mapping} lists no file")
    return found


def list_scored_videos(folder: str | Path, mapping: str | Path | None = None,
                       pattern: str | None = None) -> list[ScoredVideo]:
    """The videos of ``folder`` selected and labelled by ``mapping`` (CSV) or ``pattern`` (regex), in natural
    name order.

    Raises:
        ScoredVideoError: no such folder, no video in it, both a mapping and a pattern, a mapping that names a
            missing file, or two entries with one name (``v1.mp4`` and ``v1.gif``: choose with ``--pattern``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ScoredVideoError(f"--videos {folder} is not a folder")
    if mapping is not None and pattern is not None:
        raise ScoredVideoError("give --mapping or --pattern, not both")
    if mapping is not None:
        videos = _from_mapping(folder, Path(mapping))
    elif pattern is not None:
        videos = _from_pattern(folder, pattern)
    else:
        videos = [ScoredVideo(path) for path in folder.iterdir() if _is_video(path)]
        if not videos:
            raise ScoredVideoError(f"--videos {folder} holds no video (files {'/'.join(SCORED_SUFFIXES)} or "
                                   "folders of .png/.jpg frames)")
        stems = Counter(path.stem if path.is_file() else path.name for path in (v.path for v in videos))
        twice = sorted(stem for stem, count in stems.items() if count > 1)
        if twice:
            raise ScoredVideoError(f"--videos {folder} holds {twice[0]!r} in more than one format (e.g. .mp4 and "
                                   ".gif, as predict writes); choose one with --pattern, e.g. '.+\\.gif'")
    return sorted(videos, key=lambda v: natural_key(v.path.name))


def scored_frame_count(path: Path) -> int:
    """Frames of a scored video: GIFs by Pillow (which merges identical consecutive frames when writing them)."""
    if path.suffix.lower() != ".gif":
        return count_frames(path)
    try:
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1))
    except OSError as error:
        raise VideoReadError(path, f"GIF file is corrupt or unsupported ({error})") from error


def read_scored_video(path: Path) -> np.ndarray:
    """uint8 RGB (L, H, W, 3) of a scored video: GIFs by Pillow (each frame through its own palette), the rest
    by :func:`s2dm_lightning.data.video_io.read_video`."""
    if path.suffix.lower() != ".gif":
        return read_video(path)
    try:
        with Image.open(path) as image:
            return np.stack([np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)])
    except OSError as error:
        raise VideoReadError(path, f"GIF file is corrupt or unsupported ({error})") from error


def check_lengths(videos: list[ScoredVideo], num_frames: int) -> None:
    """Every video holds at least ``num_frames`` frames (the first ``num_frames`` are scored), else an error
    naming the first that does not; an unreadable file is named too."""
    for video in videos:
        try:
            length = scored_frame_count(video.path)
        except VideoReadError as error:
            raise ScoredVideoError(str(error)) from error
        if length < num_frames:
            merged = " (a GIF stores identical consecutive frames once)" if video.path.suffix.lower() == ".gif" else ""
            raise ScoredVideoError(f"{video.path} has {length} frames{merged}; the protocol scores clips of "
                                   f"data.num_frames={num_frames}")


def matching_key(video: ScoredVideo) -> str | None:
    """What a file is matched to test items by: its ``video_id``, else its class and/or subject
    (``"class=happy subject=s01"``), else None (any item)."""
    if video.video_id is not None:
        return str(video.video_id)
    labels = [f"{name}={value}" for name, value in (("class", video.label_class), ("subject", video.subject))
              if value is not None]
    return " ".join(labels) or None


def item_keys(videos: list[ScoredVideo], item_video_ids: list[str] | None,
              video_groups: Callable[[str], Mapping[str, Any]] | None) -> list[str] | None:
    """The key (:func:`matching_key`) of every test item, for the kind of labels ``videos`` carry.

    Args:
        videos: the listing.
        item_video_ids: the test video of each item (the test split cycled to ``len(videos)``), None if unknown.
        video_groups: the data module's ``video_groups(video_id) -> {"class", "subject"}`` (MUG, UTD-MHAD), or None.

    Returns:
        None when the videos carry no labels, or only class/subject and the data module has no ``video_groups``
        (then the labels are only recorded: the order is the listing's).
    """
    first = videos[0]
    if first.video_id is not None:
        if item_video_ids is None:
            raise ScoredVideoError("a video_id mapping needs a data module that lists its test videos "
                                   "(s2dm_lightning.data.VideoDataModule)")
        return list(item_video_ids)
    if matching_key(first) is None or video_groups is None or item_video_ids is None:
        return None
    keys = []
    for video_id in item_video_ids:
        groups = video_groups(video_id)
        keys.append(matching_key(ScoredVideo(first.path, None, None if first.label_class is None else
                                             str(groups["class"]), None if first.subject is None else
                                             str(groups["subject"]))))
    return keys


def assign_to_items(videos: list[ScoredVideo], keys: list[str] | None) -> list[ScoredVideo]:
    """The video scored at each test item: in listing order without ``keys``; else the k-th item of each key
    (test video, or class/subject) gets the k-th file of that key (:func:`matching_key`), so that each file
    is scored for a condition it was made for.

    Args:
        videos: the listing (its length is the number of items).
        keys: the key of each item (:func:`item_keys`), or None.
    """
    if keys is None:
        return list(videos)
    kinds = {matching_key(v) is None or v.video_id is not None for v in videos}
    unkeyed = next((v for v in videos if matching_key(v) is None), None)
    if unkeyed is not None or len(kinds) > 1:
        raise ScoredVideoError(f"{(unkeyed or videos[0]).path.name}: give every video the same kind of label "
                               "(a video_id, or a class and subject)")
    by_key: dict[str, list[ScoredVideo]] = {}
    for video in videos:
        by_key.setdefault(str(matching_key(video)), []).append(video)
    needed = Counter(keys)
    for key, files in by_key.items():
        what = f"video_id {key!r}" if files[0].video_id is not None else repr(key)
        if key not in needed:
            raise ScoredVideoError(f"{what} ({files[0].path.name}) is not "
                                   f"{'a video' if files[0].video_id is not None else 'a group'} of the test split")
        if len(files) != needed[key]:
            raise ScoredVideoError(f"{what} has {len(files)} file(s) but {needed[key]} test item(s) among the "
                                   f"{len(videos)} scored videos: give every test video the same number of files")
    taken = Counter[str]()
    assigned = []
    for key in keys:
        if key not in by_key:
            raise ScoredVideoError(f"no file for {key!r}, which {needed[key]} of the {len(videos)} test items have")
        assigned.append(by_key[key][taken[key]])
        taken[key] += 1
    return assigned


def provenance(folder: str | Path, videos: list[ScoredVideo], mapping: str | Path | None,
               pattern: str | None) -> dict[str, Any]:
    """Where the scored videos came from (the report's ``scored_videos``): folder, selection, formats, and a
    SHA-256 over every file's name and size (changes when a file is replaced or added)."""
    listing = hashlib.sha256()
    for video in videos:
        size = video.path.stat().st_size if video.path.is_file() else len(list_frame_files(video.path))
        listing.update(f"{video.path.name}\0{size}\n".encode())
    mapping_sha = hashlib.sha256(Path(mapping).read_bytes()).hexdigest() if mapping is not None else None
    return {
        "folder": str(Path(folder).resolve()),
        "num_videos": len(videos),
        "selection": "mapping" if mapping is not None else "pattern" if pattern is not None else "every video",
        "mapping": {"file": str(Path(mapping).resolve()), "sha256": mapping_sha} if mapping is not None else None,
        "pattern": pattern,
        "formats": dict(Counter(v.path.suffix.lower() if v.path.is_file() else "frame folder" for v in videos)),
        "listing_sha256": listing.hexdigest(),
        "files": [v.path.name for v in videos[:10]],
    }


class ScoredVideos(pl.LightningModule):
    """``test_step`` returns the scored video of every item (``batch["sample_index"]``), resized to the data's
    resolution under its frame geometry, first ``num_frames`` frames, in [-1, 1].

    Args:
        videos: the video of each test item (:func:`assign_to_items`).
        num_frames: frames scored per video.
        resolution: side of the square frames.
        geometry: how frames become square (``data.frame_geometry``).
    """

    def __init__(self, videos: list[ScoredVideo], num_frames: int, resolution: int,
                 geometry: str = DEFAULT_FRAME_GEOMETRY) -> None:
        super().__init__()
        self.videos, self.num_frames, self.resolution, self.geometry = list(videos), num_frames, resolution, geometry

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        chosen = [self.videos[int(i)] for i in batch["sample_index"]]
        clips = []
        for video in chosen:
            try:
                frames = read_scored_video(video.path)[: self.num_frames]
            except VideoReadError as error:
                raise ScoredVideoError(str(error)) from error
            clips.append(frames_to_tensor(frames, self.resolution, self.geometry))
        return {"videos": torch.stack(clips).to(self.device), "video_id": [v.video_id for v in chosen],
                "class": [v.label_class for v in chosen], "subject": [v.subject for v in chosen],
                "file": [str(v.path) for v in chosen]}
