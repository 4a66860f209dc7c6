"""How close a video generated from a given first frame is to the real video: PSNR, split by the occlusion map.

An image-to-video method gets frame 1 of a real video and that video's conditions (flow and occlusion,
:mod:`s2dm_lightning.flow_format`), so its output can be compared with the real frames pixel by pixel.
Pixels that the occlusion map marks visible in frame 1 can be copied from the given image; the others
(occluded in frame 1, i.e. disoccluded later) must be invented, so the two are scored apart.

PSNR is on the videos' own scale: [-1, 1] pixels, data range 2, PSNR = 10 log10(range^2 / MSE), with the
MSE pooled over the chosen pixels, channels and frames of a video (one value per video).
"""

from __future__ import annotations

import torch

from s2dm_lightning.flow_format import resize_condition

DATA_RANGE = 2.0  # videos in [-1, 1]
VISIBILITY_THRESHOLD = 0.5  # occlusion value at and above which a pixel counts as visible in frame 1


def masked_psnr(generated: torch.Tensor, real: torch.Tensor, mask: torch.Tensor,
                data_range: float = DATA_RANGE) -> torch.Tensor:
    """Per-video PSNR (dB) over the pixels where ``mask`` is True.

    Args:
        generated: (B, F, C, H, W) videos.
        real: the real videos, same shape.
        mask: bool (B, F, H, W): which pixels count (all channels of a pixel count together).
        data_range: max - min of the pixel scale.

    Returns:
        (B,) float64; NaN where a video has no pixel in ``mask``, inf where it matches exactly.
    """
    if generated.shape != real.shape:
        raise ValueError(f"generated videos {tuple(generated.shape)} and real ones {tuple(real.shape)} differ in shape")
    expected = generated.shape[:2] + generated.shape[3:]
    if tuple(mask.shape) != tuple(expected):
        raise ValueError(f"mask {tuple(mask.shape)} must be (B, F, H, W) = {tuple(expected)}")
    weight = mask.to(torch.float64)[:, :, None]
    squared = (generated.double() - real.double()) ** 2 * weight
    count = weight.sum((1, 2, 3, 4)) * generated.shape[2]
    mse = squared.sum((1, 2, 3, 4)) / count.clamp_min(1)
    psnr = 10 * torch.log10(data_range**2 / mse)
    return torch.where(count > 0, psnr, torch.full_like(psnr, float("nan")))


def visibility(flow: torch.Tensor, size: tuple[int, int], threshold: float = VISIBILITY_THRESHOLD) -> torch.Tensor:
    """Conditions (B, F, 3, h, w) -> bool (B, F, *size): visible in frame 1 (occlusion >= ``threshold``)."""
    occlusion = resize_condition(flow[:, :, 2:].float(), size, mode="bilinear")
    return occlusion[:, :, 0] >= threshold


def image_to_video_psnr(generated: torch.Tensor, real: torch.Tensor, flow: torch.Tensor,
                        threshold: float = VISIBILITY_THRESHOLD) -> dict[str, torch.Tensor]:
    """Per-video PSNR of frame 1 and of frames 2..F on visible and on occluded pixels.

    Args:
        generated: (B, F, 3, H, W) in [-1, 1].
        real: the real videos, same shape.
        flow: their conditions (B, F, 3, h, w); channel 2 is the occlusion map (1 = visible in frame 1).
        threshold: occlusion value from which a pixel counts as visible.

    Returns:
        ``first_frame``, ``visible``, ``occluded``: (B,) float64 dB; ``occluded`` is NaN for a video whose
        occlusion maps mark no pixel of frames 2..F occluded; ``occluded_fraction``: (B,) share of those pixels.
    """
    if flow.shape[:2] != generated.shape[:2]:
        raise ValueError(f"{tuple(flow.shape[:2])} (videos, frames) of conditions for {tuple(generated.shape[:2])} videos")
    visible = visibility(flow[:, 1:], tuple(generated.shape[-2:]), threshold)
    first = torch.ones_like(generated[:, :1, 0], dtype=torch.bool)
    return {
        "first_frame": masked_psnr(generated[:, :1], real[:, :1], first),
        "visible": masked_psnr(generated[:, 1:], real[:, 1:], visible),
        "occluded": masked_psnr(generated[:, 1:], real[:, 1:], ~visible),
        "occluded_fraction": (~visible).double().mean((1, 2, 3)),
    }
