"""On-disk cache of the VAE latents of every frame of the training videos.

Training clips draw one frame at random from each of 16 intervals, so a clip's frames
change every epoch: the cache holds EVERY frame of a video, encoded once, and a training
clip (``VideoClipDataset`` with a ``latent_cache``) carries the ``latent_mean`` and
``latent_std`` of its frames instead of the frames, read in the DataLoader workers.
``VideoDataModule.use_latent_cache`` fills the cache with the model's VAE
(:func:`prepare_latent_cache`) and hands it to the training clips. Layout (like the flow cache)::

    cache_dir/
      meta.json          {"format": 1, "vae": <fingerprint of the VAE's config and weights>,
                          "resolution": R, "frame_geometry": "crop" (see data.geometry),
                          "source": {...} (frame crop etc., only when given), "package_version": ...}
      <safe video id>.pt {"mean": float16 (L, C, h, w), "std": float16 (L, C, h, w),
                          "num_frames": L, "video_id": ...}

``mean`` and ``std`` are the VAE posterior's ``latent_dist.mean`` / ``latent_dist.std``,
UNSCALED (before ``scaling_factor``). The model then takes x_0 = scaling_factor * (mean +
std * eps) with its own training noise generator -- exactly what ``latent_dist.sample()``
does without the cache -- or x_0 = scaling_factor * mean (``model.latent_sample: false``).
float16 keeps ~3 significant digits, far below the posterior's own spread.

A different VAE (e.g. after fine-tuning again), resolution, frame geometry or crop changes meta.json's
identity: the files are then deleted and recomputed. Every write is atomic (temp file +
``os.replace``), so an interrupted run resumes with the videos still missing. One process at a time
fills a cache (the folder's lock, :mod:`s2dm_lightning.run_lock`): a second waits, then finds it filled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from s2dm_lightning.data.datasets import VideoRecord, frames_to_tensor
from s2dm_lightning.data.file_cache import PerVideoFileCache
from s2dm_lightning.data.geometry import DEFAULT_FRAME_GEOMETRY, check_geometry
from s2dm_lightning.data.preprocess import PreprocessSummary
from s2dm_lightning.data.video_io import read_video
from s2dm_lightning.io import atomic_torch_save
from s2dm_lightning.run_lock import folder_lock
from s2dm_lightning.safe_load import load_torch_data

log = logging.getLogger(__name__)

LATENT_CACHE_FORMAT = 1


def vae_fingerprint(vae: torch.nn.Module) -> str:
    """SHA-1 of the VAE's config and every weight: changes whenever the VAE does."""
    digest = hashlib.sha1()
    config = getattr(vae, "config", {})
    digest.update(json.dumps(dict(config), sort_keys=True, default=str).encode())
    for name, tensor in sorted(vae.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


class LatentCache(PerVideoFileCache):
    """One ``.pt`` file of per-frame VAE posterior statistics per video, valid for one VAE.

    Args:
        cache_dir: the cache folder (``model.latent_cache_dir``).
        vae_id: the VAE's fingerprint (:func:`vae_fingerprint`).
        resolution: frame size the VAE saw.
        geometry: how the frames were made square (``data.geometry``); part of the identity.
        source: what else the frames depend on (e.g. the datamodule's crop); part of the identity.
    """

    KIND = "latent"
    IDENTITY_KEYS = ("format", "vae", "resolution", "frame_geometry", "source")

    def __init__(
        self, cache_dir: str | Path, vae_id: str, resolution: int, source: dict[str, Any] | None = None,
        geometry: str = DEFAULT_FRAME_GEOMETRY,
    ) -> None:
        self.vae_id = vae_id
        self.resolution = resolution
        self.geometry = check_geometry(geometry)
        super().__init__(cache_dir, source)

    def made_with(self) -> dict[str, Any]:
        return {"format": LATENT_CACHE_FORMAT, "vae": self.vae_id, "resolution": self.resolution,
                "frame_geometry": self.geometry}

    def save(self, video_id: str, mean: torch.Tensor, std: torch.Tensor) -> Path:
        """Store the posterior mean and std (L, C, h, w) of every frame of ``video_id``."""
        if mean.shape != std.shape or mean.ndim != 4:
            raise ValueError(f"latent mean/std must both be (L, C, h, w), got {tuple(mean.shape)}, {tuple(std.shape)}")
        payload = {"mean": mean.detach().cpu().half(), "std": std.detach().cpu().half(),
                   "num_frames": int(mean.shape[0]), "video_id": video_id}
        path = self.path_for(video_id)
        atomic_torch_save(path, payload)
        return path

    def load(self, video_id: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and std (L, C, h, w) float32 of every frame of ``video_id``."""
        path = self.path_for(video_id)
        if not path.exists():
            raise FileNotFoundError(f"no cached latents for video '{video_id}' at '{path}'")
        payload = load_torch_data(path, "latent cache file")  # pickle-free; the error names the file
        try:
            return payload["mean"].float(), payload["std"].float()
        except Exception as error:
            raise ValueError(f"latent cache file '{path}' is unreadable ({type(error).__name__}: {error})") from error

    def clip(self, video_id: str, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std (F, C, h, w) float32 of frames ``indices`` of ``video_id``."""
        mean, std = self.load(video_id)
        if max(indices) >= mean.shape[0]:
            raise ValueError(
                f"latent cache file '{self.path_for(video_id)}' holds {mean.shape[0]} frames, the clip asks "
                f"for frame {max(indices)}: the video changed; delete the file to recompute it"
            )
        rows = torch.as_tensor(list(indices), dtype=torch.long)
        return mean[rows], std[rows]


@torch.no_grad()
def encode_posterior(vae: torch.nn.Module, frames: torch.Tensor, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std (N, C, h, w) of frames (N, 3, R, R) in [-1, 1], in chunks, on the VAE's device."""
    param = next(vae.parameters())
    means, stds = [], []
    for chunk in frames.split(batch_size):
        dist = vae.encode(chunk.to(param.device, param.dtype)).latent_dist
        means.append(dist.mean.float().cpu())
        stds.append(dist.std.float().cpu())
    return torch.cat(means), torch.cat(stds)


def fill_latent_cache(
    cache: LatentCache,
    records: Sequence[VideoRecord],
    vae: torch.nn.Module,
    batch_size: int = 32,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
) -> PreprocessSummary:
    """Encode every frame of the videos not cached yet (this rank's share: every world_size-th).

    Returns what this rank did (encoded, already cached, failed with the reason; printed as
    the same line as the flow step's). Nothing is returned as tensors: the files are the
    result, so ranks can share the work and an interrupted run resumes. A video that cannot
    be read or encoded is reported and skipped; the others still finish.
    """
    summary = PreprocessSummary(kind="latent")
    todo = []
    for record in list(records)[rank::world_size]:
        if cache.has(record.video_id):
            summary.skipped += 1
        else:
            todo.append(record)
    if todo:
        log.info("latent cache '%s': encoding %d videos", cache.cache_dir, len(todo))
    for record in tqdm(todo, desc="latents", unit="video", disable=not progress or rank != 0):
        try:
            frames = frames_to_tensor(read_video(record.path, crop=record.crop), cache.resolution, cache.geometry)
            mean, std = encode_posterior(vae, frames, batch_size)
            cache.save(record.video_id, mean, std)
        except Exception as error:
            summary.failed.append((record.video_id, f"'{record.path}': {type(error).__name__}: {error}"))
        else:
            summary.done += 1
    return summary


def prepare_latent_cache(
    cache_dir: str | Path,
    records: Sequence[VideoRecord],
    resolution: int,
    source: dict[str, Any] | None,
    vae: torch.nn.Module,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[str], None] | None = None,
    require_complete: bool = True,
    geometry: str = DEFAULT_FRAME_GEOMETRY,
) -> LatentCache:
    """Open ``cache_dir`` for ``vae`` and encode the ``records`` missing from it (ranks share the work).

    Prints the summary (computed / already cached / failed). ``barrier(name)`` waits for every
    rank (the strategy's): rank 0 validates (and if stale, clears) the folder before the others
    open it, and every rank waits for all to finish. With ``require_complete`` (training), a
    video still without latents afterwards is an error naming it, on every rank together.
    """
    vae_id = vae_fingerprint(vae)
    # Rank 0 holds the cache's lock while every rank fills it: a second process (a preprocess, another fit)
    # on this folder waits, then finds the videos encoded, instead of clearing or writing them under us.
    with folder_lock(cache_dir, "latent cache", wait=True) if rank == 0 else contextlib.nullcontext():
        if rank == 0:
            LatentCache(cache_dir, vae_id, resolution, source, geometry)
        if barrier is not None:
            barrier("latent_cache_meta")
        cache = LatentCache(cache_dir, vae_id, resolution, source, geometry)
        summary = fill_latent_cache(cache, records, vae, rank=rank, world_size=world_size)
        print(summary if world_size == 1 else f"rank {rank}: {summary}")
        if barrier is not None:
            barrier("latent_cache_filled")
    missing = [r.video_id for r in records if not cache.has(r.video_id)] if require_complete else []
    if missing:
        raise RuntimeError(
            f"model.latent_cache_dir '{cache.cache_dir}' has no latents for {len(missing)} training video(s) "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): encoding them failed (see the "
            "latent preprocessing summary above); fix or remove those videos, or unset model.latent_cache_dir"
        )
    return cache
