"""The feature network of the evaluation (``metrics.features``): the FVD I3D (an untrained one on request),
VideoMAE-v2 (the content-debiased FVD of cd-fvd), or a custom module (e.g. the synthetic feature network).

Every extractor here takes videos as the evaluation holds them, (B, F, 3, H, W) float in [-1, 1]
(generated videos quantized to the 256 levels of uint8 first, see :func:`quantize_to_uint8_levels`),
and returns (B, d) features. :func:`build_backbone` picks the network and describes it: what it is
(the report's first line says whether the numbers are FVD at all), the metric names, and an identity
dict that goes into the real-statistics cache key.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from s2dm_lightning.io import file_sha256
from s2dm_lightning.metrics.i3d import (
    ALLOW_TORCHSCRIPT_CONFIG_KEY,
    I3D_WEIGHTS_CONFIG_KEY,
    I3DFeatureExtractor,
    InceptionI3d,
    TorchScriptI3D,
    _missing_weights_message,
    load_i3d,
    resolve_i3d_weights,
)
from s2dm_lightning.metrics.preprocess import I3D_SIZE
from s2dm_lightning.metrics.videomae_v2 import (
    VIDEOMAE_V2_FILE,
    VIDEOMAE_V2_SIZE,
    VideoMAEv2FeatureExtractor,
    load_videomae_v2,
    missing_videomae_v2_message,
    resolve_videomae_v2_weights,
)
from s2dm_lightning.safe_load import (
    KNOWN_TORCHSCRIPT_SHA256,
    LOADED_AS_DATA,
    LOADED_TORCHSCRIPT_KNOWN,
    is_torchscript_file,
    load_torchscript,
)
from s2dm_lightning.synthetic.features import load_feature_extractor

#: Config key of a custom feature network's file.
FEATURE_EXTRACTOR_FILE_KEY = "metrics.feature_extractor_file"
#: Config key choosing the feature network, and its values (``custom``: ``metrics.feature_extractor`` or
#: ``metrics.feature_extractor_file``, e.g. the synthetic feature network).
FEATURES_KEY = "metrics.features"
FEATURE_NETWORKS = ("i3d", "videomae_v2", "custom")

#: What every extractor receives.
EXTRACTOR_INPUT = "(B, F, 3, H, W) float32 in [-1, 1], quantized to uint8 levels"


def quantize_to_uint8_levels(videos: torch.Tensor) -> torch.Tensor:
    """Round [-1, 1] videos to the 256 values a uint8 video file can hold (``round((x + 1) * 127.5)``).

    Generated videos are float; real clips come from uint8 frames. Quantizing the generated ones puts
    both through the same pixel format, as when generated videos are saved and read back. Real clips
    are unchanged by it (they already hold exactly these levels).
    """
    levels = ((videos.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round()
    return levels / 127.5 - 1.0


def module_fingerprint(module: nn.Module) -> str:
    """Hex SHA-256 of a module's class, structure (``repr``) and every state-dict tensor's bytes."""
    digest = hashlib.sha256()
    digest.update(f"{type(module).__module__}.{type(module).__qualname__}\n{module!r}\n".encode())
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class RandomConv3dFeatures(nn.Module):
    """A tiny, seeded, untrained 3-D conv net: a fast stand-in feature extractor for tests and smoke runs.

    Its numbers are NOT FVD/KVD. Input (B, F, 3, H, W) in [-1, 1] (any F >= 1, H, W >= 4); output
    (B, feature_dim): two strided 3x3x3 convolutions with ReLU, global average pooling, a linear map.

    Args:
        feature_dim: width of the features.
        width: channels of the convolutions.
        seed: seed of the random weights (the same seed gives the same network everywhere).
    """

    def __init__(self, feature_dim: int = 16, width: int = 8, seed: int = 0) -> None:
        super().__init__()
        if feature_dim < 1 or width < 1:
            raise ValueError(f"feature_dim and width must be >= 1, got {feature_dim} and {width}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv1 = nn.Conv3d(3, width, 3, stride=(1, 2, 2), padding=1)
            self.conv2 = nn.Conv3d(width, 2 * width, 3, stride=2, padding=1)
            self.head = nn.Linear(2 * width, feature_dim)
        self.num_features = feature_dim
        self.requires_grad_(False)
        self.eval()

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        if videos.ndim != 5 or videos.shape[2] != 3:
            raise ValueError(f"expected (B, F, 3, H, W) videos, got {tuple(videos.shape)}")
        x = videos.permute(0, 2, 1, 3, 4).float()  # (B, 3, F, H, W)
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(x.mean(dim=(2, 3, 4)))


class _ScriptedExtractor(nn.Module):
    """A TorchScript file holding a custom extractor with the same contract."""

    def __init__(self, script: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.script = script

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return self.script(videos)


@dataclass
class FeatureBackbone:
    """The chosen feature network and what the report and the cache need to know about it.

    Attributes:
        module: maps (B, F, 3, H, W) in [-1, 1] to (B, d).
        kind: ``"i3d"`` (FVD-standard, trained), ``"untrained_i3d"``, ``"videomae_v2"`` or ``"custom"``.
        metric_suffix: appended to ``fvd`` / ``kvd`` in logged names ("" only for the trained I3D).
        identity: plain values identifying the network and its preprocessing (cache key, report).
        notice: one sentence for the report's first line saying what the numbers are.
        weights: ``{"path", "sha256", "loaded_as"}`` of the weight file, if any; ``loaded_as`` is how it
            was loaded (a ``LOADED_*`` value of :mod:`s2dm_lightning.safe_load`: pickle-free data,
            TorchScript on opt-in, or TorchScript with a known hash).
    """

    module: nn.Module
    kind: str
    metric_suffix: str
    identity: dict[str, Any]
    notice: str
    weights: dict[str, str] | None = field(default=None)

    @property
    def is_fvd(self) -> bool:
        """True only for the trained FVD I3D: the numbers may be called FVD/KVD."""
        return self.kind == "i3d"


def missing_weights_message(path: str | None) -> str:
    """The error of a ``test`` run without I3D weights: where to get the file and where to put it."""
    return (
        _missing_weights_message(path)
        + " For a smoke run without the file, set `metrics.allow_random_backbone: true` (an untrained I3D;"
        " the metrics are then logged as fvd_untrained_i3d / kvd_untrained_i3d and are NOT FVD/KVD)."
    )


def _i3d_extractor(network: nn.Module, resize_convention: str) -> I3DFeatureExtractor:
    return I3DFeatureExtractor(network, value_range=(-1.0, 1.0), layout="BTCHW", resize_convention=resize_convention)


def _i3d_preprocessing(resize_convention: str) -> dict[str, Any]:
    return {"value_range": [-1.0, 1.0], "resize": f"bilinear {I3D_SIZE}x{I3D_SIZE} ({resize_convention})",
            "layout": "(B, 3, T, H, W)"}


def _i3d_notice(name: str, sha: str, loaded_as: str) -> str:
    """The report's first line for an I3D weight file: "FVD-standard" only for a file whose hash we know."""
    if loaded_as == LOADED_TORCHSCRIPT_KNOWN:
        return (f"FVD/KVD with the FVD-standard Kinetics-400 I3D ({KNOWN_TORCHSCRIPT_SHA256[sha]}: {name}, "
                f"sha256 {sha[:12]}...), 400-d logits averaged over time.")
    if loaded_as == LOADED_AS_DATA:
        return (f"FVD/KVD with the Kinetics-400 I3D network of the FVD reference and the weights of {name} "
                f"(sha256 {sha[:12]}..., a state dict loaded strictly), 400-d logits averaged over time; "
                "not verified to be the weights of the FVD reference (its hash is not a known one).")
    return (f"FVD/KVD with the TorchScript program {name} (sha256 {sha[:12]}..., run because "
            f"{ALLOW_TORCHSCRIPT_CONFIG_KEY} is true), not identified as the I3D of the FVD reference "
            "(its hash is not a known one): comparable with published FVD/KVD only if it is that network.")


def videomae_v2_backbone(network: nn.Module, path: str, sha256: str) -> FeatureBackbone:
    """The VideoMAE-v2 backbone of a loaded network (:func:`s2dm_lightning.metrics.videomae_v2.load_videomae_v2`)
    and its weight file: features as cd-fvd computes them, metrics logged as ``fvd_videomae_v2`` / ``kvd_videomae_v2``."""
    identity = {"kind": "videomae_v2", "format": "state_dict", "sha256": sha256, "input": EXTRACTOR_INPUT,
                "value_range": "[0, 1] ((x + 1) / 2 of the [-1, 1] input, i.e. uint8 / 255), no mean/std normalisation",
                "resize": f"bilinear {VIDEOMAE_V2_SIZE}x{VIDEOMAE_V2_SIZE} (torch, align_corners=False, no antialias)",
                "layout": "(B, 3, T, H, W)",
                "features": "fc_norm of the token mean, before the classification head (cd-fvd forward_features)"}
    notice = (f"Content-debiased FVD/KVD (Ge et al., CVPR 2024): features of VideoMAE-v2 ViT-g/14 fine-tuned on SSv2 "
              f"({os.path.basename(path)}, sha256 {sha256[:12]}..., a state dict loaded strictly; cd-fvd loads "
              f"{VIDEOMAE_V2_FILE}), {int(getattr(network, 'num_features', 0))}-d pooled before the head, preprocessed as cd-fvd does; "
              "not comparable with I3D FVD/KVD numbers.")
    module = VideoMAEv2FeatureExtractor(network, value_range=(-1.0, 1.0), layout="BTCHW")
    return FeatureBackbone(module, "videomae_v2", "_videomae_v2", identity, notice,
                           {"path": os.path.abspath(path), "sha256": sha256, "loaded_as": LOADED_AS_DATA})


def _load_extractor_file(path: str, allow_torchscript: bool) -> tuple[nn.Module, dict[str, str]]:
    """A custom extractor from ``metrics.feature_extractor_file`` and its ``{"path", "sha256", "loaded_as"}``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{FEATURE_EXTRACTOR_FILE_KEY}='{path}' does not exist")
    if is_torchscript_file(path):
        loaded = load_torchscript(path, FEATURE_EXTRACTOR_FILE_KEY, allow_torchscript, ALLOW_TORCHSCRIPT_CONFIG_KEY)
        return _ScriptedExtractor(loaded.module), {"path": path, "sha256": loaded.sha256, "loaded_as": loaded.loaded_as}
    module = load_feature_extractor(path, FEATURE_EXTRACTOR_FILE_KEY)
    return module, {"path": path, "sha256": file_sha256(path), "loaded_as": LOADED_AS_DATA}


def build_backbone(
    i3d_weights: str | None = None,
    allow_random_backbone: bool = False,
    feature_extractor: nn.Module | None = None,
    feature_extractor_file: str | None = None,
    metric_suffix: str | None = None,
    resize_convention: str = "tf1",
    random_seed: int = 0,
    allow_torchscript: bool = False,
    features: str | None = None,
    videomae_v2_weights: str | None = None,
) -> FeatureBackbone:
    """Choose the feature network (``features``): ``custom`` (the default when a custom extractor is given),
    ``videomae_v2`` from its weight file (``videomae_v2_weights`` or ``$S2DM_VIDEOMAE_V2_WEIGHTS``), or ``i3d``
    (the default otherwise) from its weight file (``i3d_weights`` or ``$S2DM_I3D_WEIGHTS``), else an untrained
    I3D if ``allow_random_backbone``.

    Args:
        i3d_weights: the config value of ``metrics.i3d_weights``.
        allow_random_backbone: permit an untrained I3D when no weight file is found.
        feature_extractor: a custom module, (B, F, 3, H, W) in [-1, 1] -> (B, d).
        feature_extractor_file: a file holding such a module: a safetensors file written by
            :func:`s2dm_lightning.synthetic.features.export_feature_extractor`, or a
            TorchScript file (only with ``allow_torchscript``).
        metric_suffix: suffix of the metric names of a custom extractor (default ``"custom"``).
        resize_convention: I3D resize convention, ``"tf1"`` (the TF FVD reference) or ``"torch"``.
        random_seed: seed of the untrained I3D's weights.
        allow_torchscript: allow TorchScript files (programs) as ``i3d_weights`` or
            ``feature_extractor_file`` (``metrics.allow_torchscript``).
        features: ``i3d``, ``videomae_v2`` or ``custom`` (``metrics.features``); None picks as above.
        videomae_v2_weights: the config value of ``metrics.videomae_v2_weights``.

    Raises:
        FileNotFoundError: no weights and no opt-in; the message says where to get the file.
        ValueError: conflicting options.
    """
    if feature_extractor is not None and feature_extractor_file:
        raise ValueError("set only one of metrics.feature_extractor and metrics.feature_extractor_file")
    custom = feature_extractor is not None or bool(feature_extractor_file)
    choice = features or ("custom" if custom else "i3d")
    if choice not in FEATURE_NETWORKS:
        raise ValueError(f"{FEATURES_KEY}={choice!r} is not one of {', '.join(FEATURE_NETWORKS)}")
    if custom != (choice == "custom"):
        raise ValueError(f"{FEATURES_KEY}={choice!r} " + ("needs metrics.feature_extractor or "
                         f"{FEATURE_EXTRACTOR_FILE_KEY}" if not custom else "and a custom metrics.feature_extractor "
                         f"(or {FEATURE_EXTRACTOR_FILE_KEY}) are both set; choose one"))
    if choice == "videomae_v2":
        path = resolve_videomae_v2_weights(videomae_v2_weights)
        if path is None or not os.path.isfile(path):
            raise FileNotFoundError(missing_videomae_v2_message(path) + " (metrics.allow_random_backbone applies to "
                                    "the I3D only: an untrained ViT-g would be 4 GB of noise.)")
        return videomae_v2_backbone(load_videomae_v2(path), path, file_sha256(path))
    if custom and i3d_weights:
        raise ValueError(f"`{I3D_WEIGHTS_CONFIG_KEY}` and a custom metrics.feature_extractor are both set; choose one")
    if custom:
        suffix = "_" + (metric_suffix or "custom")
        if feature_extractor is not None:
            name = f"{type(feature_extractor).__module__}.{type(feature_extractor).__qualname__}"
            identity = {"kind": "custom", "class": name, "fingerprint": module_fingerprint(feature_extractor)}
            module, weights = feature_extractor, None
        else:
            path = os.path.expanduser(str(feature_extractor_file))
            module, weights = _load_extractor_file(path, allow_torchscript)
            name = path
            identity = {"kind": "custom_" + ("torchscript" if is_torchscript_file(path) else "state_dict"),
                        "sha256": weights["sha256"]}
        identity["input"] = EXTRACTOR_INPUT
        notice = (f"NOT FVD/KVD: features from the custom extractor {name}, not the FVD I3D network; "
                  "these numbers are not comparable with published FVD/KVD.")
        return FeatureBackbone(module.eval(), "custom", suffix, identity, notice, weights)

    path = resolve_i3d_weights(i3d_weights)
    if path is not None and os.path.isfile(path):
        network = load_i3d(path, allow_torchscript=allow_torchscript)
        sha = file_sha256(path)
        loaded_as = network.loaded_as if isinstance(network, TorchScriptI3D) else LOADED_AS_DATA
        fmt = "torchscript" if isinstance(network, TorchScriptI3D) else "state_dict"
        identity = {"kind": "i3d", "format": fmt, "sha256": sha, "bn_eps": 1e-3,
                    "input": EXTRACTOR_INPUT, **_i3d_preprocessing(resize_convention)}
        notice = _i3d_notice(os.path.basename(path), sha, loaded_as)
        return FeatureBackbone(_i3d_extractor(network, resize_convention), "i3d", "", identity, notice,
                               {"path": os.path.abspath(path), "sha256": sha, "loaded_as": loaded_as})
    if not allow_random_backbone:
        raise FileNotFoundError(missing_weights_message(path))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_seed)
        network = InceptionI3d()
    identity = {"kind": "untrained_i3d", "init_seed": random_seed, "fingerprint": module_fingerprint(network),
                "input": EXTRACTOR_INPUT, **_i3d_preprocessing(resize_convention)}
    notice = ("NOT FVD/KVD: UNTRAINED (randomly initialised) I3D backbone (metrics.allow_random_backbone=true, "
              "no weight file); a smoke test only, not comparable with any published FVD/KVD.")
    return FeatureBackbone(_i3d_extractor(network, resize_convention), "untrained_i3d", "_untrained_i3d",
                           identity, notice)


@torch.no_grad()
def extract_features(backbone: FeatureBackbone, videos: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Quantize (B, F, 3, H, W) [-1, 1] videos, run the backbone on ``device`` and return (B, d) float64."""
    module = backbone.module
    param = next(iter(module.parameters()), None)
    if param is not None and param.device != torch.device(device):
        module.to(device)
    module.eval()
    feats = module(quantize_to_uint8_levels(videos.to(device)))
    if feats.ndim != 2 or feats.shape[0] != videos.shape[0]:
        raise ValueError(
            f"the feature extractor returned shape {tuple(feats.shape)} for {videos.shape[0]} videos; expected (B, d)"
        )
    return feats.to(torch.float64)
