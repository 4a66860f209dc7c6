"""Loading Stable Diffusion 1.5 (or any diffusers text-to-image folder) from a LOCAL folder.

The folder is the diffusers layout the user has on disk::

    stable-diffusion-v1-5/
      unet/          config.json + diffusion_pytorch_model.(safetensors|bin)
      vae/           config.json + weights (AutoencoderKL; scaling_factor 0.18215)
      text_encoder/  config.json + model weights (CLIPTextModel, width 768)
      tokenizer/     vocab.json, merges.txt, tokenizer_config.json, ... (CLIPTokenizer)
      scheduler/     scheduler_config.json (SD 1.5: PNDM with scaled-linear betas)

Every loader calls ``from_pretrained(path, local_files_only=True)``: nothing is ever
downloaded, and a missing sub-folder raises an error that names it and the config key.
The folders written by :func:`s2dm_lightning.models.export.save_pretrained` have the same
layout, so an exported S2DM loads through the same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

from s2dm_lightning.models.pretrained_folder import PretrainedFolderError, pretrained_subfolder

if TYPE_CHECKING:
    from s2dm_lightning.models.text_encoder import CachedTextEncoder

_WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def load_unet(root: str | Path, key: str = "model.pretrained", dtype: torch.dtype | None = None) -> UNet2DConditionModel:
    """The UNet of ``root/unet`` (float32 unless ``dtype``)."""
    folder = pretrained_subfolder(root, "unet", key)
    _check_weights(folder, key)
    return UNet2DConditionModel.from_pretrained(folder, local_files_only=True, torch_dtype=dtype)


def resolve_vae_folder(path: str | Path, key: str = "model.vae_path") -> Path:
    """A VAE folder: ``path`` itself when it holds config.json, else ``path/vae`` (an SD or export folder)."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    if (path / "vae").is_dir():
        return pretrained_subfolder(path, "vae", key)
    raise PretrainedFolderError(
        f"{key}={str(path)!r} is neither an AutoencoderKL folder (config.json + weights, as written by "
        "configs/*_vae.yaml runs) nor a folder with a 'vae/' sub-folder"
        + ("" if path.exists() else f" (it does not exist; resolved: '{path.resolve()}')")
    )


def load_vae(path: str | Path, key: str = "model.vae_path") -> AutoencoderKL:
    """The AutoencoderKL of ``path`` (a VAE folder, or a folder with ``vae/``)."""
    folder = resolve_vae_folder(path, key)
    _check_weights(folder, key)
    return AutoencoderKL.from_pretrained(folder, local_files_only=True)


def load_noise_scheduler(
    root: str | Path, key: str = "model.pretrained", clip_sample: bool | None = False
) -> DDPMScheduler:
    """The training schedule of ``root/scheduler`` as a DDPM scheduler (betas, T, prediction type).

    SD 1.5 ships a PNDM config; only its noise schedule is used (sampling builds DDIM from it).
    ``clip_sample`` is forced off by default: latents are not bounded to [-1, 1] (None: as stored).
    """
    folder = pretrained_subfolder(root, "scheduler", key)
    overrides = {} if clip_sample is None else {"clip_sample": clip_sample}
    return DDPMScheduler.from_pretrained(folder, local_files_only=True, **overrides)


def _check_weights(folder: Path, key: str) -> None:
    if not any((folder / name).is_file() for name in _WEIGHT_FILES) and not any(folder.glob("*.safetensors")):
        raise PretrainedFolderError(
            f"'{folder}' has a config but no weights ({' or '.join(_WEIGHT_FILES)}); {key} is incomplete"
        )


def resolve_vae(pretrained: str | None, vae_path: str | None) -> AutoencoderKL | None:
    """S2DM's VAE when none is given as a class: ``vae_path`` (e.g. the fine-tuned one) > ``pretrained/vae`` > None."""
    if vae_path is not None:
        return load_vae(vae_path, "model.vae_path")
    if pretrained is not None:
        return load_vae(pretrained_subfolder(pretrained, "vae"), "model.pretrained")
    return None


def resolve_components(
    pretrained: str | None,
    unet: UNet2DConditionModel | None,
    text_encoder: CachedTextEncoder | None,
    noise_scheduler: DDPMScheduler | None,
    vae: AutoencoderKL | None,
    vae_path: str | None,
    extra_in_channels: int | Callable[[int], int],
) -> tuple[UNet2DConditionModel, CachedTextEncoder, DDPMScheduler | None, AutoencoderKL | None]:
    """S2DM's networks: those given explicitly win; the others come from ``pretrained``.

    The VAE: ``vae`` > ``vae_path`` (e.g. the fine-tuned one) > ``pretrained/vae``. A UNet
    loaded from ``pretrained`` gets ``extra_in_channels`` zero-initialised input channels (a count, or a
    function of the VAE's latent channels, for conditions whose width follows the data's)
    (flow fusion ``concat``/``both``) unless it already has them (an exported S2DM).
    """
    from s2dm_lightning.models.text_encoder import CLIPTextEncoder

    if vae is None:
        vae = resolve_vae(pretrained, vae_path)
    if pretrained is None:
        missing = [name for name, value in (("unet", unet), ("text_encoder", text_encoder)) if value is None]
        if missing:
            raise ValueError(f"model.{' and model.'.join(missing)} must be given when model.pretrained is not set")
        return unet, text_encoder, noise_scheduler, vae
    if unet is None:
        unet = load_unet(pretrained)
        latent_channels = vae.config.latent_channels
        if unet.config.in_channels == latent_channels:
            extra = extra_in_channels(latent_channels) if callable(extra_in_channels) else extra_in_channels
            expand_unet_input_channels(unet, latent_channels + extra)
    if text_encoder is None:
        for name in ("text_encoder", "tokenizer"):
            pretrained_subfolder(pretrained, name)  # the error names model.pretrained
        text_encoder = CLIPTextEncoder(pretrained)
    if noise_scheduler is None:
        noise_scheduler = load_noise_scheduler(pretrained)
    return unet, text_encoder, noise_scheduler, vae


@torch.no_grad()
def expand_unet_input_channels(unet: UNet2DConditionModel, in_channels: int) -> UNet2DConditionModel:
    """Grow ``conv_in`` to ``in_channels`` inputs: pretrained weights kept, the new ones zero.

    With zero weights on the added (flow) channels the grown UNet computes exactly what the
    pretrained one did, and training learns how much to use them (as in InstructPix2Pix).
    """
    old = unet.conv_in
    if in_channels == old.in_channels:
        return unet
    if in_channels < old.in_channels:
        raise ValueError(f"cannot shrink the UNet's conv_in from {old.in_channels} to {in_channels} input channels")
    new = torch.nn.Conv2d(
        in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
        device=old.weight.device, dtype=old.weight.dtype,
    )
    new.weight.zero_()
    new.weight[:, : old.in_channels].copy_(old.weight)
    new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=in_channels)
    return unet
