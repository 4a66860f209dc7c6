"""A feature network for the synthetic data, so that FVD/KVD mean something there without downloads.

A small 3D-CNN classifies the three attributes of a synthetic video (colour, shape, motion: three
heads) from (B, F, 3, H, W) clips in [-1, 1]. Its penultimate layer (``feature_dim`` values after a
ReLU) is the feature of the FVD/KVD metrics: exported as safetensors (weights only, no code, so it
loads without any opt-in), the file is what ``metrics.feature_extractor_file`` (or
``FrechetVideoDistance(feature_extractor=...)`` with :func:`load_feature_extractor`) takes.

This module holds the network, its export and its loading; training it is
:mod:`s2dm_lightning.synthetic.feature_training`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from s2dm_lightning.io import atomic_path, atomic_write_text, file_sha256
from s2dm_lightning.safe_load import ReceivedFileError, load_safetensors
from s2dm_lightning.synthetic.shapes import COLORS, MOTIONS, SHAPES

#: The attributes and their classes, in the order of the network's heads.
ATTRIBUTES: dict[str, tuple[str, ...]] = {"color": tuple(COLORS), "shape": tuple(SHAPES), "motion": tuple(MOTIONS)}


class SyntheticFeatureNet(nn.Module):
    """3D-CNN: (B, F, 3, H, W) in [-1, 1] -> (B, feature_dim) features; ``classify`` adds the heads.

    Three strided 3x3x3 convolutions (GroupNorm, ReLU), average pooling to a 2 x 2 spatial grid (so
    where things are survives), a linear layer + ReLU = the features, one linear head per attribute.
    Any F >= 1 and H, W >= 8 work.

    Args:
        feature_dim: width of the features (the FVD/KVD feature dimension).
        width: channels of the first convolution (doubled twice).
    """

    def __init__(self, feature_dim: int = 64, width: int = 16) -> None:
        super().__init__()
        if feature_dim < 1 or width < 4:
            raise ValueError(f"feature_dim must be >= 1 and width >= 4, got {feature_dim} and {width}")
        channels = [3, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for i, stride in enumerate([(1, 2, 2), (2, 2, 2), (2, 2, 2)]):
            layers += [nn.Conv3d(channels[i], channels[i + 1], 3, stride=stride, padding=1),
                       nn.GroupNorm(4, channels[i + 1]), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d((1, 2, 2))
        self.embed = nn.Linear(4 * channels[-1], feature_dim)
        self.heads = nn.ModuleList([nn.Linear(feature_dim, len(c)) for c in ATTRIBUTES.values()])
        self.num_features, self.width = feature_dim, width

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        """Features (B, feature_dim) of (B, F, 3, H, W) videos in [-1, 1]."""
        if videos.dim() != 5 or videos.shape[2] != 3:
            raise ValueError("SyntheticFeatureNet expects videos of shape (B, F, 3, H, W) in [-1, 1]")
        x = self.body(videos.float().permute(0, 2, 1, 3, 4))
        return torch.relu(self.embed(self.pool(x).flatten(1)))

    def classify(self, videos: torch.Tensor) -> list[torch.Tensor]:
        """Logits per attribute (colour, shape, motion), each (B, num_classes)."""
        feats = self.forward(videos)
        logits: list[torch.Tensor] = []
        for head in self.heads:
            logits.append(head(feats))
        return logits


def export_feature_extractor(net: SyntheticFeatureNet, path: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write ``net``'s weights as safetensors to ``path`` (atomically) and a description to ``<path>.json``.

    Safetensors holds tensors only (no code), so the file loads without any opt-in; its header
    records the network's ``feature_dim`` and ``width``, which :func:`load_feature_extractor` rebuilds.

    Args:
        net: the trained network.
        path: the weights file, e.g. ``outputs/synthetic_features/synthetic_features.safetensors``.
        info: extra plain values for the JSON (e.g. the test accuracy).

    Returns:
        ``path``.
    """
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    header = {"class": SyntheticFeatureNet.__name__, "feature_dim": str(net.num_features), "width": str(net.width)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    meta = {"format": "safetensors", "class": SyntheticFeatureNet.__name__, "input": "(B, F, 3, H, W) float in [-1, 1]",
            "output": f"(B, {net.num_features}) penultimate-layer features", "feature_dim": net.num_features,
            "width": net.width, "attributes": {k: list(v) for k, v in ATTRIBUTES.items()},
            "sha256": file_sha256(path), **(info or {})}
    old = metadata_path(path)
    if old.is_file():  # keep what an earlier step wrote (the test accuracy) unless given anew
        try:
            meta = {**json.loads(old.read_text()), **meta}
        except ValueError:
            pass
    atomic_write_text(old, json.dumps(meta, indent=2) + "\n")
    return path


def metadata_path(path: str | Path) -> Path:
    """The JSON written beside an exported feature extractor."""
    return Path(str(path) + ".json")


def load_feature_extractor(path: str | Path, key: str | None = None) -> SyntheticFeatureNet:
    """Load an exported feature network (safetensors) on CPU in eval mode: (B, F, 3, H, W) -> (B, d).

    Args:
        path: the file written by :func:`export_feature_extractor`.
        key: the config key or option that named it (for the errors).

    Raises ``FileNotFoundError`` with the command that makes it when the file is missing, and
    :class:`~s2dm_lightning.safe_load.ReceivedFileError` naming the file when it is not such a file.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no synthetic feature network at '{path}'; train it with "
            "`python -m s2dm_lightning.synthetic.feature_training --config configs/synthetic_features.yaml`"
        )
    state = load_safetensors(path, key)
    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata() or {}
    where = f"{key}='{path}'" if key else f"'{path}'"
    if header.get("class") != SyntheticFeatureNet.__name__:
        raise ReceivedFileError(f"{where} is not a feature network written by export_feature_extractor "
                                f"(its header names class {header.get('class')!r}, expected 'SyntheticFeatureNet')")
    try:
        net = SyntheticFeatureNet(int(header["feature_dim"]), int(header["width"]))
        net.load_state_dict(state, strict=True)
    except (KeyError, ValueError, RuntimeError) as error:
        raise ReceivedFileError(f"{where} does not hold a SyntheticFeatureNet: {' '.join(str(error).split())[:300]}"
                                ) from error
    return net.eval().requires_grad_(False)
