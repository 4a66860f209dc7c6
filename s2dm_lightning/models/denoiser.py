"""eps_theta(x_t^i, t, y^i, c): the UNet with the text, flow (and reference) conditions, its guided form, decoding.

One home for the network call, shared by the LightningModule (training, ``predict``) and the
diffusers pipeline (``S2DMPipeline``), so that both sample with exactly the same arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from einops import rearrange, repeat

from s2dm_lightning.diffusion import GuidanceSettings, combine_guidance, guidance_branches
from s2dm_lightning.diffusion.sector_sampler import Denoiser
from s2dm_lightning.models.flow_conditioning import FlowConditioner
from s2dm_lightning.models.reference_condition import (
    ReferenceCondition,
    reference_channel_count,
    reference_channels,
)


@dataclass
class TextCondition:
    """Encoded captions and the encoded empty caption (the dropped text of classifier-free guidance).

    Attributes:
        hidden: (B, L, D) hidden states of the captions.
        mask: (B, L) bool padding mask.
        null_hidden: (1, L, D) hidden states of "".
        null_mask: (1, L) its mask.
        use_attention_mask: pass the mask to cross-attention (False for SD's CLIP).
    """

    hidden: torch.Tensor
    mask: torch.Tensor
    null_hidden: torch.Tensor
    null_mask: torch.Tensor
    use_attention_mask: bool


def conditioned_noise(
    unet: UNet2DConditionModel,
    flow_conditioner: FlowConditioner,
    x_t: torch.Tensor,
    timesteps: torch.Tensor,
    text: TextCondition,
    flow: torch.Tensor,
    keep_text: torch.Tensor,
    keep_flow: torch.Tensor,
    reference: torch.Tensor | None = None,
) -> torch.Tensor:
    """eps_theta for N frames: x_t (N, C, H, W), t (N,), text rows (N, L, D), flow (N, 3, h, w).

    Rows with ``keep_text`` / ``keep_flow`` False get the empty caption / the null flow. ``reference``:
    the reference channels (N, R, H, W) of :func:`reference_channels`, appended after the flow channels.
    """
    hidden = torch.where(keep_text.view(-1, 1, 1), text.hidden, text.null_hidden.to(text.hidden.dtype))
    mask = torch.where(keep_text.view(-1, 1), text.mask, text.null_mask)
    flow = flow.to(x_t.dtype)
    flow_tokens = flow_conditioner.tokens(flow, keep_flow)
    if flow_tokens is not None:
        hidden = torch.cat([hidden, flow_tokens.to(hidden.dtype)], dim=1)
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], flow_tokens.shape[1])], dim=1)
    flow_channels = flow_conditioner.channels(flow, keep_flow, x_t.shape[-2:])
    if flow_channels is not None:
        x_t = torch.cat([x_t, flow_channels.to(x_t.dtype)], dim=1)
    if reference is not None:
        x_t = torch.cat([x_t, reference.to(x_t.dtype)], dim=1)
    if not text.use_attention_mask:
        mask = None  # SD's CLIP conditioning attends to every position (and SDPA stays on its fast path)
    return unet(x_t, timesteps, encoder_hidden_states=hidden, encoder_attention_mask=mask).sample


def guided_denoiser(
    unet: UNet2DConditionModel,
    flow_conditioner: FlowConditioner,
    guidance: GuidanceSettings,
    text: TextCondition,
    flow: torch.Tensor,
    device: torch.device,
    reference_condition: ReferenceCondition = "none",
    reference: torch.Tensor | None = None,
) -> Denoiser:
    """The guided eps for (B, F, C, H, W) x_t: all frames and guidance branches in ONE network call.

    ``text`` holds one row per video (B, L, D); ``flow`` is (B, F, 3, h, w). ``reference``: x_0 (B, C, H, W)
    of the given first frames for a ``reference_condition`` model (None: the reference is dropped). The
    reference is kept where the branch keeps the flow: in the conditional branch, dropped with text and
    flow in the unconditional one (joint guidance; ``separate`` mode's flow scale covers flow + reference).
    """
    b, f = flow.shape[:2]
    branches = guidance_branches(guidance)
    n = len(branches)
    rows = TextCondition(
        repeat(text.hidden, "b l d -> (n b f) l d", n=n, f=f),
        repeat(text.mask, "b l -> (n b f) l", n=n, f=f),
        text.null_hidden, text.null_mask, text.use_attention_mask,
    )
    flows = repeat(flow.to(device), "b f c h w -> (n b f) c h w", n=n)
    keep_text = repeat(torch.tensor([kt for kt, _ in branches], device=device), "n -> (n b f)", b=b, f=f)
    keep_flow = repeat(torch.tensor([kf for _, kf in branches], device=device), "n -> (n b f)", b=b, f=f)
    references = None  # the same for every step: built once
    if reference_condition != "none" and reference is not None:
        rows_reference = repeat(reference.to(device, unet.dtype), "b c h w -> (n b f) c h w", n=n, f=f)
        references = reference_channels(reference_condition, rows_reference, flows.to(unet.dtype), keep_flow)
    dropped_channels = reference_channel_count(reference_condition, unet.config.out_channels) if reference is None else 0

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = repeat(x_t, "b f c h w -> (n b f) c h w", n=n).to(unet.dtype)
        timesteps = t.to(device).expand(x.shape[0])
        dropped = x.new_zeros(x.shape[0], dropped_channels, *x.shape[-2:]) if dropped_channels else None
        eps = conditioned_noise(unet, flow_conditioner, x, timesteps, rows, flows, keep_text, keep_flow,
                                references if dropped is None else dropped)
        per_branch = rearrange(eps.float(), "(n b f) c h w -> n b f c h w", n=n, b=b)
        return combine_guidance(list(per_branch), guidance)

    return denoise


@torch.no_grad()
def decode_frames(vae: AutoencoderKL | None, x0: torch.Tensor) -> torch.Tensor:
    """Diffusion space (..., C, h, w) -> frames (..., 3, H, W) in [-1, 1] (pixel-space models: ``vae`` None)."""
    if vae is None:
        return x0.clamp(-1, 1)
    lead = x0.shape[:-3]
    latents = x0.flatten(0, len(lead) - 1) / vae.config.scaling_factor
    frames = vae.decode(latents.to(vae.device, vae.dtype)).sample
    return frames.view(*lead, *frames.shape[1:]).clamp(-1, 1)
