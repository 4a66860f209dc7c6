"""Import flows made by LFDM's RegionMM into the flow cache, instead of estimating them.

The paper (Sec. 4.1) takes its flow conditions from RegionMM, as LFDM does. What we
checked in LFDM's code (github.com/nihaomiao/CVPR23_LFDM, ``LFAE/modules``):

- ``PixelwiseFlowPredictor`` returns ``optical_flow`` of shape (B, h, w, 2), a
  ``grid_sample`` grid whose last axis is (x, y), built on ``make_coordinate_grid``:
  ``2 * arange(w) / (w - 1) - 1``, i.e. the ``align_corners=True`` pixel centres that
  :mod:`s2dm_lightning.flow_format` uses; and ``occlusion_map`` (B, 1, h, w), a sigmoid,
  so in [0, 1] with 1 = visible. Both are for driving frame i against the reference
  frame 1, at a quarter of the image size: 32 x 32 for 128 x 128 frames.
- LFDM never writes them to disk: ``DM/modules/video_flow_diffusion_model.py`` runs the
  frozen RegionMM on every batch. There is no LFDM file format, so we accept the tensors
  as RegionMM returns them, stacked over the frames of a video.
- LFDM itself samples with ``F.grid_sample(inp, grid)`` at torch's default
  ``align_corners=False``; the grid values are nonetheless the ``align_corners=True``
  coordinates above, and we keep them as they are (the difference is half a pixel at
  the border of a 32-px map).

One file per video in ``regionmm_dir``, named ``<video_id>`` (or its file-safe stem, see
:func:`~s2dm_lightning.io.safe_file_stem`) plus one of these suffixes:

- ``.npy``: one array (L, h, w, 3) -- per frame the (h, w, 2) grid and the (h, w, 1)
  occlusion map concatenated -- or (L, 3, h, w) in our own channel order;
- ``.npz``, ``.pt`` / ``.pth``: a dict with ``grid`` (or ``optical_flow``), shape
  (L, h, w, 2) or (L, 2, h, w), and ``occlusion`` (or ``occlusion_map``), shape
  (L, h, w, 1), (L, 1, h, w) or (L, h, w); a ``.pt`` may also hold one tensor like ``.npy``.

L must be the video's frame count (frame i of the file belongs to frame i of the
video). On import the grid becomes a displacement from the identity, is resized to
``flow_size`` like our estimator's output (area when shrinking, bilinear when
enlarging) and the identity grid of ``flow_size`` is added back; occlusion is resized
the same way and clipped to [0, 1]; frame 0 is set to exactly the identity with
occlusion 1 (RegionMM's frame 0 is only close to it).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.data.preprocess import PreprocessSummary
from s2dm_lightning.data.video_io import count_frames
from s2dm_lightning.flow_format import identity_condition, identity_grid
from s2dm_lightning.io import safe_file_stem
from s2dm_lightning.safe_load import load_numpy, load_torch_data

if TYPE_CHECKING:
    from s2dm_lightning.data.datasets import VideoRecord

REGIONMM_SUFFIXES = (".npy", ".npz", ".pt", ".pth")
GRID_KEYS = ("grid", "optical_flow")
OCCLUSION_KEYS = ("occlusion", "occlusion_map")


def find_regionmm_file(regionmm_dir: str | Path, video_id: str) -> Path | None:
    """The RegionMM file of ``video_id`` in ``regionmm_dir``, or None."""
    folder = Path(regionmm_dir)
    for stem in dict.fromkeys((video_id, safe_file_stem(video_id))):
        for suffix in REGIONMM_SUFFIXES:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _as_array(value: Any, path: Path, key: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().float().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise ValueError(f"RegionMM file '{path}': {key} is a {type(value).__name__}, not an array")
    return value.astype(np.float32)


def _channels_last(array: np.ndarray, channels: int, path: Path, key: str, allow_2d: bool = False) -> np.ndarray:
    """(L, h, w, C) from (L, h, w, C) or (L, C, h, w); with ``allow_2d`` also (L, h, w) for C = 1."""
    if allow_2d and array.ndim == 3:
        return array[..., None]
    if array.ndim == 4:
        last, first = array.shape[-1] == channels, array.shape[1] == channels
        if last and not first:
            return array
        if first and not last:
            return array.transpose(0, 2, 3, 1)
        if first and last:
            raise ValueError(f"RegionMM file '{path}': {key} of shape {array.shape} is ambiguous (channels first or last?)")
    raise ValueError(
        f"RegionMM file '{path}': {key} has shape {array.shape}; expected (L, h, w, {channels}) or (L, {channels}, h, w)"
    )


def _pick(payload: dict, keys: tuple[str, ...], path: Path) -> Any:
    for key in keys:
        if key in payload:
            return payload[key]
    raise ValueError(f"RegionMM file '{path}' has none of the keys {list(keys)} (has {sorted(payload)})")


def load_regionmm_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Grid (L, h, w, 2) and occlusion (L, h, w, 1), float32, from a RegionMM file."""
    path = Path(path)
    suffix = path.suffix.lower()
    # Pickle-free loaders (numpy allow_pickle=False, torch weights_only=True); errors name the file.
    if suffix in (".npy", ".npz"):
        payload: Any = load_numpy(path, "RegionMM file")
    elif suffix in (".pt", ".pth"):
        payload = load_torch_data(path, "RegionMM file")
    else:
        raise ValueError(f"RegionMM file '{path}' is unreadable: unsupported suffix (expected one of {REGIONMM_SUFFIXES})")
    if isinstance(payload, dict):
        grid = _channels_last(_as_array(_pick(payload, GRID_KEYS, path), path, "grid"), 2, path, "grid")
        occlusion = _as_array(_pick(payload, OCCLUSION_KEYS, path), path, "occlusion")
        occlusion = _channels_last(occlusion, 1, path, "occlusion", allow_2d=True)
    else:
        both = _channels_last(_as_array(payload, path, "the array"), 3, path, "the array")
        grid, occlusion = both[..., :2], both[..., 2:]
    if grid.shape[:3] != occlusion.shape[:3]:
        raise ValueError(f"RegionMM file '{path}': grid {grid.shape} and occlusion {occlusion.shape} do not match")
    if not (np.isfinite(grid).all() and np.isfinite(occlusion).all()):
        raise ValueError(f"RegionMM file '{path}' holds NaN or infinite values")
    return grid, occlusion


def _resize(maps: np.ndarray, size: int) -> np.ndarray:
    """(h, w, C) -> (size, size, C): area when shrinking (as our estimator), bilinear when enlarging."""
    if maps.shape[:2] == (size, size):
        return maps
    shrink = size * size < maps.shape[0] * maps.shape[1]
    out = cv2.resize(maps, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out.reshape(size, size, maps.shape[2])


def regionmm_to_condition(grid: np.ndarray, occlusion: np.ndarray, flow_size: int) -> torch.Tensor:
    """RegionMM grid (L, h, w, 2) and occlusion (L, h, w, 1) -> our conditions (L, 3, s, s), s = flow_size."""
    length, height, width = grid.shape[:3]
    source_identity = identity_grid(height, width).numpy().transpose(1, 2, 0)
    target_identity = identity_grid(flow_size, flow_size)
    out = torch.empty(length, 3, flow_size, flow_size, dtype=torch.float32)
    out[0] = identity_condition(flow_size, flow_size)
    for i in range(1, length):
        displacement = _resize(np.ascontiguousarray(grid[i] - source_identity), flow_size)
        visible = np.clip(_resize(np.ascontiguousarray(occlusion[i]), flow_size), 0.0, 1.0)
        out[i, :2] = target_identity + torch.from_numpy(np.ascontiguousarray(displacement.transpose(2, 0, 1)))
        out[i, 2:] = torch.from_numpy(np.ascontiguousarray(visible.transpose(2, 0, 1)))
    return out


def import_regionmm_flows(
    records: Iterable[VideoRecord], cache: FlowCache, regionmm_dir: str | Path, progress: bool = True
) -> PreprocessSummary:
    """Store the RegionMM flows of every record missing from ``cache``; a bad or missing file is reported."""
    folder = Path(regionmm_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"regionmm_dir '{folder}' (resolved: '{folder.resolve()}') is not a folder")
    summary = PreprocessSummary()
    todo: list[VideoRecord] = []
    seen: set[str] = set()
    for record in records:
        if record.video_id in seen:
            continue
        seen.add(record.video_id)
        if cache.has(record.video_id):
            summary.skipped += 1
        else:
            todo.append(record)
    for record in tqdm(todo, desc="import RegionMM flows", unit="video", disable=not progress):
        path = find_regionmm_file(folder, record.video_id)
        if path is None:
            summary.failed.append(
                (record.video_id, f"no file '{record.video_id}{{{','.join(REGIONMM_SUFFIXES)}}}' in '{folder}'")
            )
            continue
        try:
            grid, occlusion = load_regionmm_file(path)
            num_frames = count_frames(record.path)
            if grid.shape[0] != num_frames:
                raise ValueError(
                    f"RegionMM file '{path}' holds {grid.shape[0]} frames but the video '{record.path}' has "
                    f"{num_frames}; export one flow per video frame"
                )
            cache.save(record.video_id, regionmm_to_condition(grid, occlusion, cache.settings.flow_size))
            summary.done += 1
        except Exception as error:
            summary.failed.append((record.video_id, f"{type(error).__name__}: {error}"))
    return summary
