"""On-disk cache of per-video flow/occlusion conditions.

Layout::

    cache_dir/
      meta.json          {"format": 1, "settings": FlowSettings.to_dict(), "package_version": ...,
                          "source": {...} (only when given: frame crop, imported flows)}
      <safe video id>.pt {"displacement": float16 (L, 3, h, w), "num_frames": L, "video_id": ...}

The tensor is stored as (dx, dy, occlusion) -- the grid minus the identity grid, see
``flow_format.grid_to_displacement`` -- in float16: displacements are small numbers, so
half precision keeps them to ~1e-3 px, and zero motion (frame 0) stays exactly zero,
so the loaded frame-0 condition is exactly ``identity_condition``. ``load`` returns the
absolute grid form in float32.

If meta.json does not match the current settings the cache's files are deleted and
recomputed. Every write goes to a temporary file in the cache dir followed by
``os.replace``, so a file is either complete or absent and an interrupted
preprocessing run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2dm_lightning import __version__
from s2dm_lightning.data.flow import FlowSettings
from s2dm_lightning.flow_format import FLOW_CHANNELS, identity_grid

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
META_FILE = "meta.json"
_TMP_SUFFIX = ".tmp"


def safe_file_stem(video_id: str) -> str:
    """A file-name-safe, collision-free stem for a video id (ids may hold '/' or spaces)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", video_id).strip(".") or "video"
    if stem != video_id or len(stem) > 120:
        # The hash keeps "a/b" and "a_b" apart after the substitution.
        stem = f"{stem[:100]}-{hashlib.sha1(video_id.encode()).hexdigest()[:10]}"
    return stem


def _atomic_write_bytes(target: Path, write) -> None:
    """Call ``write(handle)`` on a temp file beside ``target``, then move it into place."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TMP_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class FlowCache:
    """One ``.pt`` file per video in ``cache_dir``, valid for one :class:`FlowSettings`.

    ``source`` (JSON-serialisable) says what else the flows depend on -- e.g. the frame crop
    or that they were imported from RegionMM; it is part of the cache's identity like the
    settings (stored in meta.json only when given, so older caches stay valid).
    """

    def __init__(self, cache_dir: str | Path, settings: FlowSettings, source: dict[str, Any] | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.settings = settings
        self.source = json.loads(json.dumps(source)) if source else None  # tuples -> lists, as stored
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._open()

    # -- metadata ---------------------------------------------------------------------------------

    def expected_meta(self) -> dict[str, Any]:
        meta = {"format": CACHE_FORMAT, "settings": self.settings.to_dict(), "package_version": __version__}
        if self.source is not None:
            meta["source"] = self.source
        return meta

    @property
    def meta_path(self) -> Path:
        return self.cache_dir / META_FILE

    def _open(self) -> None:
        expected = self.expected_meta()
        stored = self._read_meta()
        # The package version is recorded for the record only; settings (with their
        # algorithm version) and the file format decide whether the files are valid.
        identity = ("format", "settings", "source")
        if stored is not None and {k: stored.get(k) for k in identity} == {k: expected.get(k) for k in identity}:
            self._remove_stale_temp_files()
            return
        if stored is not None or any(self.cache_dir.glob("*.pt")):
            log.warning(
                "flow cache '%s' was made with different settings (%s, source %s); deleting its files and "
                "recomputing them with %s, source %s",
                self.cache_dir,
                "unknown: no readable meta.json" if stored is None else stored.get("settings"),
                None if stored is None else stored.get("source"),
                expected["settings"],
                self.source,
            )
            self.clear()
        self._remove_stale_temp_files()
        payload = (json.dumps(expected, indent=2, sort_keys=True) + "\n").encode()
        _atomic_write_bytes(self.meta_path, lambda handle: handle.write(payload))

    def _read_meta(self) -> dict[str, Any] | None:
        if not self.meta_path.exists():
            return None
        try:
            stored = json.loads(self.meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return stored if isinstance(stored, dict) else None

    def _remove_stale_temp_files(self) -> None:
        # Left by a process killed mid-write; never a valid entry.
        for stale in self.cache_dir.glob(f".*{_TMP_SUFFIX}"):
            stale.unlink(missing_ok=True)

    def clear(self) -> None:
        """Delete the cached flows and meta.json (only files this class writes)."""
        for path in self.cache_dir.glob("*.pt"):
            path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)

    # -- entries ----------------------------------------------------------------------------------

    def path_for(self, video_id: str) -> Path:
        return self.cache_dir / f"{safe_file_stem(video_id)}.pt"

    def has(self, video_id: str) -> bool:
        return self.path_for(video_id).exists()

    def save(self, video_id: str, condition: torch.Tensor) -> Path:
        """Store conditions (L, 3, h, w) in grid form (frame 0 = identity) for ``video_id``."""
        self._check_shape(condition, self.path_for(video_id), expected_frames=None)
        size = condition.shape[-1]
        displacement = condition.detach().float().cpu().clone()
        displacement[:, :2] -= identity_grid(size, size)
        payload = {
            "displacement": displacement.half(),
            "num_frames": int(condition.shape[0]),
            "video_id": video_id,
        }
        path = self.path_for(video_id)
        _atomic_write_bytes(path, lambda handle: torch.save(payload, handle))
        return path

    def load(
        self, video_id: str, expected_frames: int | None = None, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Conditions (L, 3, h, w) float32 for ``video_id`` (only ``indices`` if given).

        Raises ValueError naming the file if it is malformed or has the wrong shape.
        """
        path = self.path_for(video_id)
        if not path.exists():
            raise FileNotFoundError(
                f"no cached flow for video '{video_id}' at '{path}'; run the datamodule's prepare_data() "
                "or the `preprocess` subcommand first"
            )
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            displacement = payload["displacement"]
            num_frames = int(payload["num_frames"])
        except Exception as error:  # a foreign or damaged file
            raise ValueError(
                f"flow cache file '{path}' is unreadable ({type(error).__name__}: {error})"
            ) from error
        if not isinstance(displacement, torch.Tensor):
            raise ValueError(f"flow cache file '{path}' holds no tensor under 'displacement'")
        self._check_shape(displacement, path, expected_frames)
        if displacement.shape[0] != num_frames:
            raise ValueError(
                f"flow cache file '{path}' says num_frames={num_frames} but holds {displacement.shape[0]} frames"
            )
        # numpy, not torch: tiny tensors in a DataLoader are faster without torch's thread pool.
        array = displacement.numpy()
        if indices is not None:
            array = array[np.asarray(indices, dtype=np.int64)]
        condition = array.astype(np.float32)
        size = self.settings.flow_size
        condition[:, :2] += identity_grid(size, size).numpy()
        return torch.from_numpy(condition)

    def _check_shape(self, tensor: torch.Tensor, path: Path, expected_frames: int | None) -> None:
        size = self.settings.flow_size
        if tensor.ndim != 4 or tensor.shape[1] != FLOW_CHANNELS or tuple(tensor.shape[2:]) != (size, size):
            raise ValueError(
                f"flow cache file '{path}' has shape {tuple(tensor.shape)}, expected "
                f"(num_frames, {FLOW_CHANNELS}, {size}, {size}) for flow_size={size}"
            )
        if expected_frames is not None and tensor.shape[0] != expected_frames:
            raise ValueError(
                f"flow cache file '{path}' holds {tensor.shape[0]} frames but the video has {expected_frames}; "
                "the video changed since preprocessing: delete the file to recompute it"
            )
