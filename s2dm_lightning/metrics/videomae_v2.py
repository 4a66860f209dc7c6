"""VideoMAE-v2 ViT-g/14 features: the network of the content-debiased FVD (Ge et al., CVPR 2024, ``cd-fvd``).

Ge et al. show that FVD with I3D features (trained on Kinetics action labels) reacts to per-frame
appearance far more than to motion, and propose features of a self-supervised video model instead. Their
package ``cd-fvd`` (0.1.1, ``cdfvd/third_party/VideoMAEv2``) uses VideoMAE-v2's ViT-g/14 fine-tuned on
Something-Something-v2, the file ``vit_g_hybrid_pt_1200e_ssv2_ft.pth``, and takes as features the
token mean after the final LayerNorm ``fc_norm`` (1408 values), i.e. the pooled features BEFORE the
174-way classification head. This module rebuilds that network with the same parameter names and shapes,
so the public file loads with ``strict=True`` (526 tensors, 1,011,855,918 parameters; the list is kept in
tests/metrics/reference_data/videomae_v2_vit_g_layout.json). Facts of the architecture:

* tubelet embedding: Conv3d(3, 1408, kernel = stride = (2, 14, 14)), so 16 frames of 224 x 224 give
  8 x 16 x 16 = 2048 tokens; no class token;
* fixed sine-cosine position table (not in the state dict) over the 2048 positions, added to the tokens;
  for another number of frames cd-fvd interpolates it trilinearly in time (see :meth:`position_table`);
* 40 pre-norm blocks, LayerNorm eps 1e-6, 16 heads of 88, a fused ``qkv`` projection without bias plus
  separate ``q_bias`` / ``v_bias`` (the key has no bias), MLP 1408 -> 6144 (``int(1408 * 48 / 11)``) -> 1408
  with exact GELU, no layer scale; stochastic depth and dropout are inactive at evaluation;
* mean over all tokens -> ``fc_norm`` -> features; ``head`` (1408 -> 174) only for :meth:`classify`.

Preprocessing, as cd-fvd's ``preprocess_videomae``: uint8 frames divided by 255 (values in [0, 1], no
mean/std normalisation), every frame resized to 224 x 224 with ``F.interpolate(mode="bilinear",
align_corners=False)`` (no antialiasing, no crop, the aspect ratio not kept), layout (B, 3, T, 224, 224).
cd-fvd feeds 16 frames. The weights are never downloaded: see :func:`load_videomae_v2`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from s2dm_lightning.metrics.i3d import _FrozenEvalMixin
from s2dm_lightning.metrics.preprocess import to_bcthw
from s2dm_lightning.safe_load import ReceivedFileError, load_safetensors, load_torch_data

#: The checkpoint file cd-fvd loads.
VIDEOMAE_V2_FILE = "vit_g_hybrid_pt_1200e_ssv2_ft.pth"
#: Environment variable holding its path.
VIDEOMAE_V2_WEIGHTS_ENV = "S2DM_VIDEOMAE_V2_WEIGHTS"
#: Config key holding its path.
VIDEOMAE_V2_WEIGHTS_CONFIG_KEY = "metrics.videomae_v2_weights"
#: Spatial size of the network input.
VIDEOMAE_V2_SIZE = 224
#: Frames cd-fvd feeds (the position table is made for them).
VIDEOMAE_V2_FRAMES = 16
#: ViT-g/14 as cd-fvd builds it (``vit_giant_patch14_224(num_classes=174, all_frames=16, tubelet_size=2)``).
VIT_G_SSV2 = {"img_size": 224, "patch_size": 14, "embed_dim": 1408, "depth": 40, "num_heads": 16,
              "mlp_hidden": 6144, "num_classes": 174, "num_frames": 16, "tubelet_size": 2}


def sinusoid_position_table(num_positions: int, dim: int) -> torch.Tensor:
    """The fixed (num_positions, dim) table: angle ``p / 10000 ** (2 * (j // 2) / dim)``, sine on even
    ``j``, cosine on odd ``j``; computed in float64 and rounded to float32 (as the NumPy original)."""
    position = torch.arange(num_positions, dtype=torch.float64, device="cpu")[:, None]
    exponent = 2.0 * torch.div(torch.arange(dim, device="cpu"), 2, rounding_mode="floor").double() / dim
    angle = position / torch.pow(torch.tensor(10000.0, dtype=torch.float64, device="cpu"), exponent)
    table = torch.where(torch.arange(dim, device="cpu") % 2 == 0, angle.sin(), angle.cos())
    return table.float()


class _Attention(nn.Module):
    """Multi-head self-attention with a fused bias-free ``qkv`` and separate query / value biases."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        q, k, v = rearrange(F.linear(x, self.qkv.weight, bias), "b n (three h d) -> three b h n d",
                            three=3, h=self.num_heads)
        x = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(head_dim)) v
        return self.proj(rearrange(x, "b h n d -> b n (h d)"))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _TubeletEmbed(nn.Module):
    def __init__(self, dim: int, patch_size: int, tubelet_size: int) -> None:
        super().__init__()
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(3, dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(self.proj(x), "b c t h w -> b (t h w) c")


class VideoMAEv2(_FrozenEvalMixin, nn.Module):
    """VideoMAE-v2 video ViT with mean pooling, frozen and always in eval mode (defaults: ViT-g/14 SSv2).

    Input: (B, 3, T, img_size, img_size) in [0, 1] (see :func:`preprocess_for_videomae_v2`), T >= tubelet_size.
    Output of ``forward``: the pooled features (B, embed_dim) that cd-fvd's ``forward_features`` returns.

    Args:
        img_size: height and width of the input.
        patch_size: spatial patch size.
        embed_dim: token width.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_hidden: hidden width of the MLPs.
        num_classes: width of the classification head.
        num_frames: frames the position table is made for.
        tubelet_size: frames per token.
    """

    def __init__(self, img_size: int = 224, patch_size: int = 14, embed_dim: int = 1408, depth: int = 40,
                 num_heads: int = 16, mlp_hidden: int = 6144, num_classes: int = 174, num_frames: int = 16,
                 tubelet_size: int = 2) -> None:
        super().__init__()
        if embed_dim % num_heads or img_size % patch_size or num_frames % tubelet_size:
            raise ValueError("VideoMAEv2 needs embed_dim % num_heads == img_size % patch_size == "
                             "num_frames % tubelet_size == 0")
        self.img_size, self.tubelet_size = img_size, tubelet_size
        self.grid = (num_frames // tubelet_size, img_size // patch_size, img_size // patch_size)
        self.patch_embed = _TubeletEmbed(embed_dim, patch_size, tubelet_size)
        self.blocks = nn.ModuleList([_Block(embed_dim, num_heads, mlp_hidden) for _ in range(depth)])
        self.fc_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        # fixed, so not part of the checkpoint (non-persistent); made on the CPU even under a meta-device build
        positions = self.grid[0] * self.grid[1] * self.grid[2]
        self.register_buffer("pos_embed", sinusoid_position_table(positions, embed_dim), persistent=False)
        self.num_features = embed_dim
        self._freeze()

    def position_table(self, tubelets: int) -> torch.Tensor:
        """(tokens, dim) positions for ``tubelets`` token frames. For another number than the table's, cd-fvd
        stretches the table in time: trilinear interpolation with the scale factor
        ``(tubelets + 0.1) / table_tubelets`` (the 0.1 guards the output length's rounding)."""
        if tubelets == self.grid[0]:
            return self.pos_embed
        grid = rearrange(self.pos_embed, "(t h w) c -> 1 c t h w", t=self.grid[0], h=self.grid[1], w=self.grid[2])
        grid = F.interpolate(grid, scale_factor=((tubelets + 0.1) / self.grid[0], 1, 1), mode="trilinear")
        if grid.shape[2] != tubelets:
            raise ValueError(f"position table interpolation gave {grid.shape[2]} tubelets, not {tubelets}")
        return rearrange(grid, "1 c t h w -> (t h w) c")

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The final tokens (B, N, embed_dim) before pooling."""
        if x.ndim != 5 or x.shape[1] != 3 or tuple(x.shape[3:]) != (self.img_size, self.img_size):
            raise ValueError(f"VideoMAE-v2 expects (B, 3, T, {self.img_size}, {self.img_size}), got {tuple(x.shape)}; "
                             "use preprocess_for_videomae_v2")
        if x.shape[2] < self.tubelet_size:
            raise ValueError(f"VideoMAE-v2 needs at least {self.tubelet_size} frames, got {x.shape[2]}")
        x = self.patch_embed(x)
        x = x + self.position_table(x.shape[1] // (self.grid[1] * self.grid[2])).to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, embed_dim): ``fc_norm`` of the token mean (cd-fvd's features)."""
        return self.fc_norm(self.tokens(x).mean(dim=1))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes) of the fine-tuned head (not used by the metrics)."""
        return self.head(self.forward(x))


def preprocess_for_videomae_v2(videos: torch.Tensor, value_range: tuple[float, float] | None = None,
                               layout: str = "BTHWC", size: int = VIDEOMAE_V2_SIZE) -> torch.Tensor:
    """Videos -> the VideoMAE-v2 input as cd-fvd makes it: values mapped to [0, 1] (``x / 255`` for uint8,
    ``(x - lo) / (hi - lo)`` otherwise), every frame resized to ``size`` x ``size`` bilinearly
    (``align_corners=False``, no antialiasing, no crop).

    Args:
        videos: uint8 (0..255) or float videos, 5-D in ``layout``.
        value_range: ``(lo, hi)`` of float input (required for float); None for uint8.
        layout: ``"BTHWC"`` (default, cd-fvd's), ``"BTCHW"`` or ``"BCTHW"``.
        size: output height and width.

    Returns:
        float32 (B, 3, T, size, size) on the input's device.
    """
    x = to_bcthw(videos, layout)
    if value_range is None:
        if x.dtype != torch.uint8:
            raise ValueError(f"videos of dtype {x.dtype} need an explicit value_range, e.g. (-1.0, 1.0)")
        value_range = (0.0, 255.0)
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        raise ValueError(f"value_range must satisfy lo < hi, got {value_range}")
    x = (x.to(torch.float32) - lo) / (hi - lo)
    batch = x.shape[0]
    frames = rearrange(x, "b c t h w -> (b c) t h w")  # bilinear is per frame and per channel
    if tuple(frames.shape[-2:]) != (size, size):
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
    return rearrange(frames, "(b c) t h w -> b c t h w", b=batch).contiguous()


def missing_videomae_v2_message(path: str | None) -> str:
    """Where to get the checkpoint and where to put it."""
    where = f"VideoMAE-v2 weights not found at {path!r}." if path else "No VideoMAE-v2 weights were given."
    return (f"{where} metrics.features=videomae_v2 (the content-debiased FVD of Ge et al., CVPR 2024) needs "
            f"`{VIDEOMAE_V2_FILE}` (VideoMAE-v2 ViT-g/14 fine-tuned on Something-Something-v2, ~4 GB), the file "
            "the cd-fvd package loads; it is never downloaded at run time. Get it from the VideoMAE-v2 model zoo "
            "(github.com/OpenGVLab/VideoMAEv2, docs/MODEL_ZOO.md; also huggingface.co/OpenGVLab/InternVideoMAE_models, "
            f"mae-g/{VIDEOMAE_V2_FILE}), put it anywhere, e.g. weights/{VIDEOMAE_V2_FILE}, and point the config key "
            f"`{VIDEOMAE_V2_WEIGHTS_CONFIG_KEY}` or the environment variable {VIDEOMAE_V2_WEIGHTS_ENV} at the file.")


def resolve_videomae_v2_weights(path: str | os.PathLike | None) -> str | None:
    """The config value if given, else ``$S2DM_VIDEOMAE_V2_WEIGHTS``, else None (``~`` expanded, not checked)."""
    value = os.fspath(path) if path else os.environ.get(VIDEOMAE_V2_WEIGHTS_ENV) or None
    return os.path.expanduser(value) if value else None


def _state_dict_of(payload: object, path: str) -> Mapping[str, torch.Tensor]:
    """The state dict inside a checkpoint: cd-fvd takes the ``model`` or else ``module`` entry if present."""
    if isinstance(payload, Mapping):
        for entry in ("model", "module"):
            if entry in payload:
                payload = payload[entry]
                break
    if not isinstance(payload, Mapping) or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise ReceivedFileError(f"{VIDEOMAE_V2_WEIGHTS_CONFIG_KEY}='{path}' holds no VideoMAE-v2 state dict "
                                f"(a {type(payload).__name__} without tensors under 'model' or 'module')")
    return payload


def load_videomae_v2(path: str | os.PathLike | None, map_location: str | torch.device = "cpu",
                     **architecture: int) -> VideoMAEv2:
    """Load the frozen VideoMAE-v2 from ``vit_g_hybrid_pt_1200e_ssv2_ft.pth`` (or a safetensors copy), strictly.

    The ``.pth`` is read with ``torch.load(weights_only=True)`` (no code runs), ``.safetensors`` with safetensors;
    the ``model`` / ``module`` entry is taken as cd-fvd does. The network is built on the meta device and the
    tensors are assigned (cast to float32), so the ~4 GB of weights are held once.

    Args:
        path: the file, usually from :func:`resolve_videomae_v2_weights`.
        map_location: device of the returned network.
        **architecture: :class:`VideoMAEv2` arguments (default ViT-g/14 SSv2, :data:`VIT_G_SSV2`).

    Raises:
        FileNotFoundError: no file; the message names the file to fetch, where from and where to configure it.
        ReceivedFileError: a file that is not pickle-free data, or not this network's state dict (every
            missing, unexpected or wrongly shaped key counts), naming the file.
    """
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(missing_videomae_v2_message(os.fspath(path) if path else None))
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        payload: object = load_safetensors(path, VIDEOMAE_V2_WEIGHTS_CONFIG_KEY)
    else:
        payload = load_torch_data(path, VIDEOMAE_V2_WEIGHTS_CONFIG_KEY)
    state = {k: v.to(torch.float32) for k, v in _state_dict_of(payload, path).items()}
    with torch.device("meta"):
        model = VideoMAEv2(**{**VIT_G_SSV2, **architecture})
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        raise ReceivedFileError(f"{VIDEOMAE_V2_WEIGHTS_CONFIG_KEY}='{path}' is not a state dict of the VideoMAE-v2 "
                                f"ViT-g/14 that cd-fvd loads: {' '.join(str(error).split())[:400]}") from error
    model._freeze()  # the assigned tensors are new Parameters
    return model.to(map_location)


class VideoMAEv2FeatureExtractor(_FrozenEvalMixin, nn.Module):
    """Raw videos -> cd-FVD features: :func:`preprocess_for_videomae_v2` then :class:`VideoMAEv2`.

    Args:
        network: a :class:`VideoMAEv2` (or any module mapping (B, 3, T, 224, 224) in [0, 1] to (B, d)).
        value_range: value range of float input; None means uint8.
        layout: layout of the videos, ``"BTHWC"`` (default), ``"BTCHW"`` or ``"BCTHW"``.
        chunk_size: videos per network call (bounds memory); None runs the batch at once.
    """

    def __init__(self, network: nn.Module, value_range: tuple[float, float] | None = None, layout: str = "BTHWC",
                 chunk_size: int | None = 4) -> None:
        super().__init__()
        self.network, self.value_range, self.layout, self.chunk_size = network, value_range, layout, chunk_size
        self.size = int(getattr(network, "img_size", VIDEOMAE_V2_SIZE))
        self.num_features = int(getattr(network, "num_features", VIT_G_SSV2["embed_dim"]))
        self._freeze()

    @torch.no_grad()
    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        """float32 features (B, num_features)."""
        step = self.chunk_size or max(len(videos), 1)
        feats = [self.network(preprocess_for_videomae_v2(videos[i : i + step], self.value_range, self.layout,
                                                         self.size)).float()
                 for i in range(0, len(videos), step)]
        return torch.cat(feats) if feats else videos.new_zeros(0, self.num_features, dtype=torch.float32)
