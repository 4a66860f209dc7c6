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

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2dm_lightning.data.file_cache import PerVideoFileCache
from s2dm_lightning.data.flow import FlowSettings
from s2dm_lightning.flow_format import FLOW_CHANNELS, identity_grid
from s2dm_lightning.io import atomic_torch_save
from s2dm_lightning.safe_load import load_torch_data

CACHE_FORMAT = 1


class FlowCache(PerVideoFileCache):
    """One ``.pt`` file per video in ``cache_dir``, valid for one :class:`FlowSettings`.

    ``source`` (JSON-serialisable) says what else the flows depend on -- e.g. the frame crop
    or that they were imported from RegionMM; it is part of the cache's identity like the
    settings (stored in meta.json only when given, so older caches stay valid).
    """

    KIND = "flow"
    # settings (with their algorithm version) and the file format decide whether the files are valid
    IDENTITY_KEYS = ("format", "settings", "source")

    def __init__(self, cache_dir: str | Path, settings: FlowSettings, source: dict[str, Any] | None = None) -> None:
        self.settings = settings
        super().__init__(cache_dir, source)

    def made_with(self) -> dict[str, Any]:
        return {"format": CACHE_FORMAT, "settings": self.settings.to_dict()}

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
        atomic_torch_save(path, payload)
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
        payload = load_torch_data(path, "flow cache file")  # pickle-free; the error names the file
        try:
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
