"""Noise carried along the temporal condition: S2DM's shared noise generalised to moving frames.

``shared`` noise gives every frame frame 1's nu, which pins noise-borne detail to the screen
("texture sticking", Chang et al. 2024; Burgert et al. 2025). ``warped`` gives frame i frame 1's nu
carried along frame i's backward grid (``flow_format``: for every pixel of frame i, its source in
frame 1) and fresh noise where the occlusion map says the pixel was not visible in frame 1.

Scheme (nearest-source with conditional splitting; docs/noise_transport.md): every visible target
pixel takes the source pixel its grid point rounds to. When k target pixels of one frame share a
source of value z, they get z / sqrt(k) + (w_j - mean(w)) with w_j iid N(0, 1): exactly k iid
N(0, 1) values whose sum is sqrt(k) z (the integral-noise split of one pixel into k sub-pixels,
Chang et al. Sec. 3, conditioned on their sum). With k = 1 the value is z itself, so integer
translations and the identity are exact copies. Fresh values are drawn only where needed, so an
identity condition draws nothing and reproduces ``shared`` (and its generator state) bit for bit.
"""

from __future__ import annotations

import torch

from s2dm_lightning.flow_format import resize_condition

#: Occlusion at or above this counts as visible in frame 1.
VISIBLE_THRESHOLD = 0.5


def _draw(count: int, generator: torch.Generator | None, device, dtype) -> torch.Tensor:
    return torch.randn((count,), generator=generator, device=device, dtype=dtype)


def transport_frame_noise(
    base: torch.Tensor, condition: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One video's frame-1 noise (C, H, W) carried along its conditions (F, 3, h, w) -> (F, C, H, W).

    The conditions are resized to H x W keeping the identity exact. Fresh draws come from
    ``generator`` on ``base``'s device, in the order (frame, pixel, channel) of the targets needing them.
    """
    channels, height, width = base.shape
    frames = condition.shape[0]
    grid = resize_condition(condition.to(base.device).float(), (height, width), mode="keep_identity")
    sx = torch.round((grid[:, 0] + 1) * (width - 1) / 2)
    sy = torch.round((grid[:, 1] + 1) * (height - 1) / 2)
    visible = (grid[:, 2] >= VISIBLE_THRESHOLD) & (sx >= 0) & (sx <= width - 1) & (sy >= 0) & (sy <= height - 1)
    source = torch.where(visible, sy * width + sx, torch.zeros_like(sx)).long()  # (F, H, W)
    frame_offset = torch.arange(frames, device=base.device).view(frames, 1, 1) * (height * width)
    key = (source + frame_offset)[visible]  # one group per (frame, source pixel)
    counts = torch.bincount(key, minlength=frames * height * width)
    shares = counts[key]  # k of each visible target
    flat_base = base.reshape(channels, height * width)
    values = flat_base[:, source[visible]].T.clone()  # (n_visible, C): the source's z
    split = shares > 1
    if bool(split.any()):
        n_split = int(split.sum())
        w = _draw(n_split * channels, generator, base.device, base.dtype).view(n_split, channels)
        group_sum = torch.zeros((frames * height * width, channels), device=base.device, dtype=base.dtype)
        group_sum.index_add_(0, key[split], w)
        k = shares[split].to(base.dtype).unsqueeze(1)
        w_mean = group_sum[key[split]] / k
        values[split] = values[split] / k.sqrt() + (w - w_mean)
    out = torch.empty((frames, height, width, channels), device=base.device, dtype=base.dtype)
    out[visible] = values
    hidden = ~visible
    n_hidden = int(hidden.sum())
    if n_hidden:
        out[hidden] = _draw(n_hidden * channels, generator, base.device, base.dtype).view(n_hidden, channels)
    return out.permute(0, 3, 1, 2).contiguous()


def transport_video_noise(
    base: torch.Tensor, condition: torch.Tensor, generator: torch.Generator | list[torch.Generator] | None = None
) -> torch.Tensor:
    """Frame-1 noise (B, C, H, W) carried along conditions (B, F, 3, h, w) -> (B, F, C, H, W).

    ``generator`` may be one per video (a video's draws then do not depend on its batch).
    """
    videos = []
    for index in range(base.shape[0]):
        g = generator[index] if isinstance(generator, list) else generator
        videos.append(transport_frame_noise(base[index], condition[index], g))
    return torch.stack(videos)


def degrade_noise(
    warped: torch.Tensor,
    degradation: float | None,
    generator: torch.Generator | list[torch.Generator] | None = None,
) -> torch.Tensor:
    """``partial``: nu_i = sqrt(1 - a) warped_i + sqrt(a) fresh_i for (B, F, ...) noise.

    ``degradation`` a in [0, 1] (0 = warped, 1 = independent frames), or None: a drawn uniformly
    per video, as Go-with-the-Flow trains. The draws (a, then the fresh noise) follow the warped noise.
    """
    b = warped.shape[0]
    generators = generator if isinstance(generator, list) else [generator] * b
    a_values, fresh = [], []
    for g in generators:
        if degradation is None:
            a_values.append(torch.rand((), generator=g, device=warped.device, dtype=warped.dtype))
        fresh.append(torch.randn(warped.shape[1:], generator=g, device=warped.device, dtype=warped.dtype))
    if degradation is None:
        a = torch.stack(a_values).view(b, *([1] * (warped.dim() - 1)))
    else:
        a = torch.full((b, *([1] * (warped.dim() - 1))), float(degradation), device=warped.device,
                       dtype=warped.dtype)
    return (1 - a).sqrt() * warped + a.sqrt() * torch.stack(fresh)
