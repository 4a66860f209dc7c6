"""Filling a data module's latent cache with a VAE: the one routine behind S2DM's ``on_fit_start`` (training,
DDP ranks sharing the work) and the ``preprocess`` command (which builds only the VAE, no UNet or text encoder)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def cache_training_latents(datamodule: Any, vae: torch.nn.Module | None, cache_dir: str, device: torch.device | None = None,
                      rank: int = 0, world_size: int = 1, barrier: Callable[[str], None] | None = None,
                      require_complete: bool = True) -> Any:
    """Encode the training videos missing from ``cache_dir`` with ``vae`` (on ``device`` meanwhile, then back)
    and have the training clips carry their latents instead of frames: ``datamodule.use_latent_cache``.

    With ``require_complete`` (training), a training video still without latents is an error naming it.
    """
    if vae is None:
        raise ValueError("model.latent_cache_dir is set, but the model has no VAE (model.vae / vae_path / pretrained)")
    if not callable(getattr(datamodule, "use_latent_cache", None)):
        raise ValueError(f"model.latent_cache_dir needs a VideoDataModule-style data module (use_latent_cache), "
                         f"got {type(datamodule).__name__}")
    home = next(vae.parameters()).device
    if device is not None:
        vae.to(device)
    try:
        return datamodule.use_latent_cache(cache_dir, vae, rank=rank, world_size=world_size, barrier=barrier,
                                           require_complete=require_complete)
    finally:
        vae.to(home)
