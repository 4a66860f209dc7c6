"""Which frame sizes the networks accept: the UNet halves its input once per down block but
the last, and a VAE divides frames by 2 per block but the last.

A size the halvings do not divide is not an error inside diffusers (it pads and crops
silently), so the modules check ``data.init_args.resolution`` and their ``sample_size``
against these factors before any work starts.
"""

from __future__ import annotations

from typing import Any

from s2dm_lightning.validation import check_multiple


def unet_size_factor(unet: Any) -> int:
    """2 ** (number of down blocks - 1): the factor a 2D or 3D diffusers UNet divides its input by."""
    return 2 ** (len(unet.config.down_block_types) - 1)


def vae_size_factor(vae: Any | None) -> int:
    """The factor from frames to latents (8 for SD's VAE); 1 without a VAE (pixel space)."""
    return 1 if vae is None else 2 ** (len(vae.config.block_out_channels) - 1)


def check_frame_size(key: str, size: int, unet: Any, vae: Any | None = None) -> None:
    """Raise a ValueError naming ``key`` unless frames of ``size`` pass the VAE and the UNet's halvings evenly."""
    blocks = len(unet.config.down_block_types)
    reason = f"the UNet's {blocks} down blocks halve it {blocks - 1} times"
    if vae is not None:
        reason = f"the VAE divides frames by {vae_size_factor(vae)}, then " + reason
    check_multiple(key, size, unet_size_factor(unet) * vae_size_factor(vae), reason)


def check_datamodule_fits(datamodule: Any, unet: Any, vae: Any | None, flow_size: int | None) -> None:
    """The data module's frame size and flow size against the model's networks (called in ``setup``)."""
    resolution = getattr(datamodule, "resolution", None)
    if resolution is not None:
        check_frame_size("data.init_args.resolution", resolution, unet, vae)
    data_flow_size = getattr(getattr(datamodule, "flow_settings", None), "flow_size", None)
    if flow_size is not None and data_flow_size is not None and data_flow_size != flow_size:
        raise ValueError(
            f"data.init_args.flow_size={data_flow_size} must equal model.init_args.flow_size={flow_size} "
            "(the model's flow conditioner is built for that size)"
        )
