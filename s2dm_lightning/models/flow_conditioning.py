"""How the temporal condition y^i (flow + occlusion, (3, h, w)) enters the UNet.

``tokens`` (paper Sec. 3.3: the flow is "concatenated with the CLIP embedding" and
enters through cross-attention): the map is cut into patches, each flattened and
projected to the text width, and appended to the text tokens. At 128 px with SD 1.5
one 16 x 16 x 3 patch is exactly 768 = CLIP's width, so no projection is needed.
``concat``: spatial injection, the map resized to the frame size and concatenated to
the UNet's input channels. ``both``: the two together.
A dropped flow (classifier-free dropout) is a learned null token set and zero channels.

The conditioner is a diffusers model (``ModelMixin`` + ``ConfigMixin``): inside an
exported pipeline folder it is ``flow_conditioner/`` (config.json + safetensors).
"""

from __future__ import annotations

from typing import Literal

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from einops import rearrange
from torch import nn

from s2dm_lightning.flow_format import FLOW_CHANNELS, grid_to_displacement, resize_condition
from s2dm_lightning.validation import check_choice, check_multiple

FlowFusion = Literal["tokens", "concat", "both"]
FLOW_FUSIONS = ("tokens", "concat", "both")
CHANNEL_UNIT_PIXELS = 4.0  # spatial flow channels: 1.0 = a displacement of 4 flow-map pixels


class FlowConditioner(ModelMixin, ConfigMixin):
    """Turns flow conditions into cross-attention tokens and/or extra input channels.

    Args:
        fusion: ``tokens`` | ``concat`` | ``both``.
        flow_size: h = w of the stored flow maps.
        text_width: width D of the text tokens (384 for MiniLM, 768 for SD 1.5's CLIP).
        patch_size: token patch size; None = the whole map is one token.
        projection: ``auto`` (identity when 3 * patch^2 == D, else linear), ``linear``, ``none``.
    """

    @register_to_config
    def __init__(
        self,
        fusion: FlowFusion = "tokens",
        flow_size: int = 32,
        text_width: int = 384,
        patch_size: int | None = None,
        projection: Literal["auto", "linear", "none"] = "auto",
    ) -> None:
        super().__init__()
        # Keys as S2DM's config names them (the conditioner is S2DM's part).
        check_choice("model.init_args.flow_fusion", fusion, FLOW_FUSIONS)
        self.fusion = fusion
        self.flow_size = flow_size
        self.patch_size = patch_size or flow_size
        check_multiple("model.init_args.flow_size", flow_size, self.patch_size,
                       f"model.init_args.flow_patch_size={self.patch_size} patches must tile the flow map")
        self.num_tokens = (flow_size // self.patch_size) ** 2 if self.uses_tokens else 0
        patch_dim = FLOW_CHANNELS * self.patch_size**2
        if projection == "auto":
            projection = "none" if patch_dim == text_width else "linear"
        if projection == "none" and patch_dim != text_width:
            raise ValueError(f"projection 'none' needs 3 * patch_size^2 == text width, got {patch_dim} != {text_width}")
        if self.uses_tokens:
            self.project = nn.Linear(patch_dim, text_width) if projection == "linear" else nn.Identity()
            self.position = nn.Parameter(torch.zeros(1, self.num_tokens, text_width)) if self.num_tokens > 1 else None
            self.null_tokens = nn.Parameter(torch.randn(1, self.num_tokens, text_width) * 0.02)

    @property
    def uses_tokens(self) -> bool:
        return self.fusion in ("tokens", "both")

    @property
    def uses_channels(self) -> bool:
        return self.fusion in ("concat", "both")

    @property
    def extra_in_channels(self) -> int:
        return FLOW_CHANNELS if self.uses_channels else 0

    def check_flow(self, flow: torch.Tensor) -> None:
        if flow.shape[-3:] != (FLOW_CHANNELS, self.flow_size, self.flow_size):
            raise ValueError(
                f"flow conditions have shape {tuple(flow.shape[-3:])}, the model expects "
                f"({FLOW_CHANNELS}, {self.flow_size}, {self.flow_size}) (model.flow_size)"
            )

    def tokens(self, flow: torch.Tensor, keep: torch.Tensor) -> torch.Tensor | None:
        """(N, K, D) tokens for flows (N, 3, h, w); rows with keep=False get the null tokens."""
        if not self.uses_tokens:
            return None
        p = self.patch_size
        patches = rearrange(grid_to_displacement(flow), "n c (i p) (j q) -> n (i j) (c p q)", p=p, q=p)
        tokens = self.project(patches)
        if self.position is not None:
            tokens = tokens + self.position
        null = self.null_tokens.to(tokens.dtype).expand_as(tokens)
        return torch.where(keep.view(-1, 1, 1), tokens, null)

    def channels(self, flow: torch.Tensor, keep: torch.Tensor, size: tuple[int, int]) -> torch.Tensor | None:
        """(N, 3, H, W) displacement + occlusion channels; zeros where keep=False.

        The displacement is given in units of CHANNEL_UNIT_PIXELS pixels of the flow map, so
        a motion of a few pixels is an O(1) input next to x_t (in grid units a 1-px motion at
        32 px would be 0.06, a signal the network picks up far more slowly).
        """
        if not self.uses_channels:
            return None
        maps = grid_to_displacement(flow)
        to_units = torch.tensor(
            [(self.flow_size - 1) / 2 / CHANNEL_UNIT_PIXELS] * 2 + [1.0], dtype=maps.dtype, device=maps.device
        )
        maps = maps * to_units.view(1, 3, 1, 1)
        maps = resize_condition(maps, size, mode="bilinear")
        return maps * keep.view(-1, 1, 1, 1).to(maps.dtype)
