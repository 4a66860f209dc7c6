"""A small VideoMAE-v2 on the seeded weights of the cd-fvd reference run (tests/metrics/reference_data)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from s2dm_lightning.metrics.videomae_v2 import VideoMAEv2, load_videomae_v2

REFERENCE = Path(__file__).parent / "reference_data"
SMALL_REFERENCE = json.loads((REFERENCE / "videomae_v2_small_reference.json").read_text())
#: The reference's small configuration in our arguments (mlp_ratio 48/11 -> int(32 * 48 / 11) = 139 hidden).
SMALL = {"img_size": 224, "patch_size": 14, "embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_hidden": 139,
         "num_classes": 7, "num_frames": 16, "tubelet_size": 2}


def seeded_state_dict(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """The reference file's weight rule: one generator, keys in sorted order, randn * 0.05 (+1 for norm weights)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in sorted(model.state_dict().items()):
        tensor = torch.randn(tuple(value.shape), generator=generator) * 0.05
        if tensor.ndim == 1 and "norm" in key and key.endswith(".weight"):
            tensor += 1.0
        state[key] = tensor
    return state


def small_model() -> tuple[VideoMAEv2, dict[str, torch.Tensor]]:
    """The small network with the reference's seeded weights, and those weights."""
    model = VideoMAEv2(**SMALL)
    state = seeded_state_dict(model, SMALL_REFERENCE["weights"]["seed"])
    model.load_state_dict(state, strict=True)
    return model, state


def small_weight_file(path: Path) -> Path:
    """Write the small network's weights as a checkpoint laid out like cd-fvd's file (``{"model": state}``)."""
    torch.save({"model": small_model()[1]}, path)
    return path


def load_small_videomae_v2(path, map_location="cpu", **architecture) -> VideoMAEv2:
    """:func:`load_videomae_v2` at the small configuration: stands in for the ViT-g loader in wiring tests."""
    return load_videomae_v2(path, map_location, **{**SMALL, **architecture})
