"""The optional reference-frame condition of S2DM (image-to-video, issue #17).

The given first frame (x_0 of frame 0 in diffusion space: pixels, or its scaled VAE posterior mean)
enters the UNet as extra input channels of EVERY frame, after x_t and the flow channels:

* ``none``: no extra channels (the paper; the UNet's inputs are exactly those without this module);
* ``frame``: the reference as it is, C channels (3 in pixel space, 4 with SD's VAE);
* ``warped``: the reference backward-warped by the frame's flow (:func:`s2dm_lightning.flow_format.warp`)
  times the frame's visibility, plus the visibility map itself: C + 1 channels. The visibility is the
  condition's channel 2 (the project's "occlusion map", which is already 1 = visible in the reference),
  resized bilinearly to the frame size; it tells the network which pixels the warp cannot know.

A dropped reference (classifier-free dropout, or no image at sampling time) is all zeros, visibility too.
"""

from __future__ import annotations

from typing import Literal

import torch
from diffusers import AutoencoderKL

from s2dm_lightning.flow_format import resize_condition, warp

ReferenceCondition = Literal["none", "frame", "warped"]
REFERENCE_CONDITIONS = ("none", "frame", "warped")


def reference_channel_count(mode: ReferenceCondition, data_channels: int) -> int:
    """Extra UNet input channels of ``mode`` for x_0 with ``data_channels`` channels: 0, C or C + 1."""
    return {"none": 0, "frame": data_channels, "warped": data_channels + 1}[mode]


def reference_channels(
    mode: ReferenceCondition, reference: torch.Tensor, flow: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor | None:
    """The reference's input channels for N frames, or None for ``none``.

    Args:
        mode: ``none``, ``frame`` or ``warped`` (module doc).
        reference: (N, C, h, w) x_0 of each row's video's first frame (repeated per frame).
        flow: (N, 3, fh, fw) each frame's condition (grid into the reference + visibility).
        keep: (N,) bool; rows with False get zeros in every reference channel.
    """
    if mode == "none":
        return None
    if mode == "frame":
        maps = reference
    else:
        flow = flow.to(reference.dtype)
        visibility = resize_condition(flow[:, 2:3], tuple(reference.shape[-2:]), mode="bilinear")
        maps = torch.cat([warp(reference, flow) * visibility, visibility], dim=1)
    return maps * keep.view(-1, 1, 1, 1).to(maps.dtype)


def check_reference_image(image: torch.Tensor, num_videos: int) -> torch.Tensor:
    """``image`` if it is (B or 1, 3, H, W) for ``num_videos`` videos, else a ValueError saying the shape."""
    if image.dim() != 4 or image.shape[0] not in (1, num_videos) or image.shape[1] != 3:
        raise ValueError(f"image must have shape (B or 1, 3, H, W) in [-1, 1] with B = {num_videos} videos, "
                         f"got {tuple(image.shape)}")
    return image


def check_reference_use(mode: ReferenceCondition, image: object | None) -> None:
    """An image for a model without a reference condition is an error (a reference model without one
    samples with the reference dropped)."""
    if mode == "none" and image is not None:
        raise ValueError("an image (image=, --image) was given, but this model has "
                         "model.init_args.reference_condition='none': it cannot condition on a first frame")


@torch.no_grad()
def encode_reference(vae: AutoencoderKL | None, images: torch.Tensor) -> torch.Tensor:
    """Reference frames (B, 3, H, W) in [-1, 1] -> x_0 (B, C, h, w): the pixels (``vae`` None), or the
    scaled VAE posterior MEAN (no random draw: the same reference in training and sampling)."""
    if vae is None:
        return images.float()
    latents = vae.encode(images.to(vae.device, vae.dtype)).latent_dist.mean
    return latents.float() * vae.config.scaling_factor


def encode_reference_image(vae: AutoencoderKL | None, image: torch.Tensor, num_videos: int,
                           frame_shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """x_0 (num_videos, C, h, w) of a given first frame ``image`` (B or 1, 3, H, W) in [-1, 1]; a
    ValueError when its x_0 is not the model's ``frame_shape`` (the image needs resizing)."""
    reference = encode_reference(vae, check_reference_image(image, num_videos).to(device))
    if tuple(reference.shape[1:]) != tuple(frame_shape):
        raise ValueError(f"image of size {tuple(image.shape[-2:])} gives x_0 of shape {tuple(reference.shape[1:])}; "
                         f"this model's frames have x_0 of shape {tuple(frame_shape)}: resize the image")
    return reference.expand(num_videos, -1, -1, -1)
