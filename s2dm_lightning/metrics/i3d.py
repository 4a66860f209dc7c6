"""The Inception-v1 I3D network that FVD uses (Kinetics-400), its weight loading and a feature extractor.

Architecture: Carreira & Zisserman, "Quo Vadis, Action Recognition?" (2017); the FVD reference
(Unterthiner et al. 2018) uses the tf.hub ``i3d-kinetics-400`` model and takes its 400 logits
averaged over time as features. Parameter names follow piergiaj's ``pytorch-i3d`` ``InceptionI3d``
so that ``i3d_pretrained_400.pt`` (VideoGPT / TATS) loads with ``strict=True``:
``Conv3d_1a_7x7.conv3d.weight``, ``Conv3d_1a_7x7.bn.{weight,bias,running_mean,running_var}``,
``Mixed_3b.b0`` / ``b1a`` / ``b1b`` / ``b2a`` / ``b2b`` / ``b3b`` (``b3a`` is the max-pool), and
``logits.conv3d.{weight,bias}`` (the only convolution with a bias; it has no batch norm).

Facts kept from the TF original: every convolution and max-pool pads "SAME" dynamically from the
input size (``pad = max(k - s, 0)`` if ``size % s == 0`` else ``max(k - size % s, 0)``, the smaller
half in front); the final average pool (2 x 7 x 7, stride 1) pads "VALID"; batch-norm epsilon 1e-3
(Sonnet's default, also piergiaj's). VideoGPT's copy of the port builds its batch norms with
eps=1e-5; pass ``bn_eps=1e-5`` to reproduce numbers computed with that code exactly.

StyleGAN-V's ``i3d_torchscript.pt`` (a TorchScript export of the same tf.hub model) is supported
through :class:`TorchScriptI3D`, which calls it as
``net(x, rescale=False, resize=False, return_features=True)`` on the already preprocessed input,
as the widely used PyTorch FVD scripts do: ``return_features=True`` returns the 400 pre-softmax
logits, and ``rescale=False, resize=False`` because :func:`preprocess_for_i3d` already resized to
224 and scaled to [-1, 1].

Weights are never downloaded; see :func:`resolve_i3d_weights` and :func:`load_i3d`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from s2dm_lightning.metrics.preprocess import I3D_SIZE, preprocess_for_i3d
from s2dm_lightning.safe_load import (
    LOADED_TORCHSCRIPT_OPTED_IN,
    is_torchscript_file,
    load_torch_data,
    load_torchscript,
)

#: Environment variable holding the path of the I3D weights.
I3D_WEIGHTS_ENV = "S2DM_I3D_WEIGHTS"
#: Config key holding the path of the I3D weights.
I3D_WEIGHTS_CONFIG_KEY = "metrics.i3d_weights"
#: Config key that allows a TorchScript weight file (a program) to be loaded and run.
ALLOW_TORCHSCRIPT_CONFIG_KEY = "metrics.allow_torchscript"
#: Output width (Kinetics-400 classes).
I3D_NUM_CLASSES = 400
#: Fewest frames for which the network's final 2 x 7 x 7 VALID average pool has an input.
I3D_MIN_FRAMES = 9

# Inception blocks: (name, input channels, [b0, b1a, b1b, b2a, b2b, b3b] output channels).
_INCEPTION_BLOCKS: tuple[tuple[str, int, tuple[int, ...]], ...] = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding of one axis as (front, back); the output length is ceil(size / stride).

    Args:
        size: input length along the axis.
        kernel: kernel length.
        stride: stride.

    Returns:
        ``(pad // 2, pad - pad // 2)`` with ``pad = max(kernel - stride, 0)`` if ``size % stride == 0``
        else ``max(kernel - size % stride, 0)``.
    """
    rem = size % stride
    pad = max(kernel - (stride if rem == 0 else rem), 0)
    return pad // 2, pad - pad // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    """Zero-pad a (B, C, T, H, W) tensor for a TF "SAME" 3-D window."""
    pt, ph, pw = (same_padding(s, k, st) for s, k, st in zip(x.shape[2:], kernel, stride, strict=True))
    return F.pad(x, (*pw, *ph, *pt))


class _SameMaxPool3d(nn.Module):
    """Max-pool with TF "SAME" padding. Zero padding equals TF's (ignore-the-pad) padding here
    because every pool in I3D follows a ReLU, so its input is non-negative."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class _ConvUnit(nn.Module):
    """Conv3d ("SAME", bias only without batch norm) -> BatchNorm3d -> ReLU; piergiaj's ``Unit3D``."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        bn_eps: float = 1e-3,
        logits: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.is_logits = kernel, stride, logits
        self.conv3d = nn.Conv3d(in_ch, out_ch, kernel, stride=stride, padding=0, bias=logits)
        if not logits:
            self.bn = nn.BatchNorm3d(out_ch, eps=bn_eps, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        return x if self.is_logits else F.relu(self.bn(x))


class _InceptionBlock(nn.Module):
    """Four parallel branches concatenated on channels: 1x1 | 1x1->3x3 | 1x1->3x3 | maxpool->1x1."""

    def __init__(self, in_ch: int, ch: tuple[int, ...], bn_eps: float) -> None:
        super().__init__()
        k3 = (3, 3, 3)
        self.b0 = _ConvUnit(in_ch, ch[0], bn_eps=bn_eps)
        self.b1a = _ConvUnit(in_ch, ch[1], bn_eps=bn_eps)
        self.b1b = _ConvUnit(ch[1], ch[2], k3, bn_eps=bn_eps)
        self.b2a = _ConvUnit(in_ch, ch[3], bn_eps=bn_eps)
        self.b2b = _ConvUnit(ch[3], ch[4], k3, bn_eps=bn_eps)
        self.b3a = _SameMaxPool3d(k3, (1, 1, 1))
        self.b3b = _ConvUnit(in_ch, ch[5], bn_eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x)))
        return torch.cat(branches, dim=1)


class _FrozenEvalMixin:
    """Keeps a network in eval mode forever: ``train(True)`` is ignored."""

    def train(self, mode: bool = True):  # noqa: ARG002 - the mode is ignored on purpose
        return nn.Module.train(self, False)  # type: ignore[arg-type]

    def _freeze(self) -> None:
        for p in self.parameters():  # type: ignore[attr-defined]
            p.requires_grad_(False)
        nn.Module.train(self, False)  # type: ignore[arg-type]


class InceptionI3d(_FrozenEvalMixin, nn.Module):
    """Inception-v1 I3D (Kinetics-400), frozen and always in eval mode.

    Input: (B, 3, T, 224, 224) float in [-1, 1] (see :func:`preprocess_for_i3d`), T >= 9.
    Output: the 400 logits averaged over time, (B, 400) -- the FVD features.

    Args:
        num_classes: width of the logits layer (400 for the FVD weights).
        bn_eps: batch-norm epsilon; 1e-3 as in the TF original (1e-5 reproduces VideoGPT's copy).
    """

    def __init__(self, num_classes: int = I3D_NUM_CLASSES, bn_eps: float = 1e-3) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = _ConvUnit(3, 64, (7, 7, 7), (2, 2, 2), bn_eps)
        self.MaxPool3d_2a_3x3 = _SameMaxPool3d((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = _ConvUnit(64, 64, bn_eps=bn_eps)
        self.Conv3d_2c_3x3 = _ConvUnit(64, 192, (3, 3, 3), bn_eps=bn_eps)
        self.MaxPool3d_3a_3x3 = _SameMaxPool3d((1, 3, 3), (1, 2, 2))
        for name, in_ch, ch in _INCEPTION_BLOCKS:
            self.add_module(name, _InceptionBlock(in_ch, ch, bn_eps))
            if name == "Mixed_3c":
                self.MaxPool3d_4a_3x3 = _SameMaxPool3d((3, 3, 3), (2, 2, 2))
            elif name == "Mixed_4f":
                self.MaxPool3d_5a_2x2 = _SameMaxPool3d((2, 2, 2), (2, 2, 2))
        self.logits = _ConvUnit(1024, num_classes, logits=True)
        self.num_features = num_classes
        self._freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, 3, T, H, W) in [-1, 1] to the time-averaged logits (B, num_classes)."""
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"I3D expects (B, 3, T, H, W), got {tuple(x.shape)}; use preprocess_for_i3d")
        if x.shape[2] < I3D_MIN_FRAMES or min(x.shape[3:]) < 193:
            raise ValueError(
                f"I3D needs at least {I3D_MIN_FRAMES} frames and 193 x 193 pixels (FVD uses 16 x 224 x 224), "
                f"got {tuple(x.shape[2:])}"
            )
        for module in self.children():
            if module is self.logits:
                break
            x = module(x)  # children are registered in forward order
        x = F.avg_pool3d(x, kernel_size=(2, 7, 7), stride=1)  # "VALID"; dropout is identity in eval
        x = self.logits(x)  # (B, classes, T', H', W')
        return x.mean(dim=(3, 4)).mean(dim=2)  # squeeze space, average logits over time


#: The kwargs StyleGAN-V's i3d_torchscript.pt is called with (input already preprocessed).
STYLEGAN_V_SCRIPT_KWARGS: dict[str, bool] = {"rescale": False, "resize": False, "return_features": True}


class TorchScriptI3D(_FrozenEvalMixin, nn.Module):
    """Wraps a TorchScript I3D (StyleGAN-V's ``i3d_torchscript.pt``) so it is called like
    :class:`InceptionI3d`: ``(B, 3, T, 224, 224)`` in [-1, 1] -> (B, 400).

    Args:
        script: the module from ``torch.jit.load``.
        script_kwargs: keyword arguments of every call; default
            ``rescale=False, resize=False, return_features=True`` (StyleGAN-V's signature).
        loaded_as: why the program was allowed to load (a ``LOADED_*`` value of :mod:`s2dm_lightning.safe_load`).
    """

    def __init__(
        self, script: torch.jit.ScriptModule, script_kwargs: Mapping[str, bool] | None = None,
        loaded_as: str = LOADED_TORCHSCRIPT_OPTED_IN,
    ) -> None:
        super().__init__()
        self.script, self.loaded_as = script, loaded_as
        self.script_kwargs = dict(STYLEGAN_V_SCRIPT_KWARGS if script_kwargs is None else script_kwargs)
        self.num_features = I3D_NUM_CLASSES
        self._freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.script(x, **self.script_kwargs)


def _missing_weights_message(path: str | None) -> str:
    where = f"I3D weights not found at {path!r}." if path else "No I3D weights were given."
    return (
        f"{where} FVD/KVD need the Kinetics-400 I3D network of the FVD reference; its weights are never "
        "downloaded at run time. Get one of: `i3d_pretrained_400.pt` (PyTorch state dict, from the FVD "
        "instructions of VideoGPT github.com/wilson1yan/VideoGPT or TATS github.com/SongweiGe/TATS) or "
        "`i3d_torchscript.pt` (TorchScript, from StyleGAN-V github.com/universome/stylegan-v, "
        "src/metrics/frechet_video_distance.py). Put it anywhere and point the config key "
        f"`{I3D_WEIGHTS_CONFIG_KEY}` or the environment variable {I3D_WEIGHTS_ENV} at the file."
    )


def resolve_i3d_weights(path: str | os.PathLike | None) -> str | None:
    """Return the I3D weights path: the config value if given, else ``$S2DM_I3D_WEIGHTS``, else None.

    Args:
        path: value of the config key ``metrics.i3d_weights`` (None or "" when unset).

    Returns:
        The path with ``~`` expanded, or None when neither source names one. Existence is not checked.
    """
    value = os.fspath(path) if path else os.environ.get(I3D_WEIGHTS_ENV) or None
    return os.path.expanduser(value) if value else None


def _clean_state_dict(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Strip a DataParallel ``module.`` prefix and add ``num_batches_tracked`` buffers that files saved by
    old PyTorch versions lack (unused in eval); every other key must match exactly."""
    out = {k.removeprefix("module."): v for k, v in state.items()}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in out:
            out[key] = value.clone()
    return out


def load_i3d(
    path: str | os.PathLike | None,
    bn_eps: float = 1e-3,
    map_location: str | torch.device = "cpu",
    script_kwargs: Mapping[str, bool] | None = None,
    allow_torchscript: bool = False,
) -> nn.Module:
    """Load the frozen FVD I3D from a state dict (``.pt``) or, on opt-in, a TorchScript file.

    A state dict (``i3d_pretrained_400.pt``) is loaded pickle-free (``torch.load(weights_only=True)``)
    into :class:`InceptionI3d` with ``strict=True``. A TorchScript archive (``i3d_torchscript.pt``) is a
    program: it is loaded only with ``allow_torchscript`` (``metrics.allow_torchscript``) or when its
    SHA-256 is in :data:`s2dm_lightning.safe_load.KNOWN_TORCHSCRIPT_SHA256`, and wrapped in
    :class:`TorchScriptI3D`. Both are then called as ``net(preprocess_for_i3d(videos)) -> (B, 400)``;
    a :class:`TorchScriptI3D`'s ``loaded_as`` says why it was allowed.

    Args:
        path: file path, usually from :func:`resolve_i3d_weights`.
        bn_eps: batch-norm epsilon of :class:`InceptionI3d` (state-dict files only).
        map_location: device to load onto.
        script_kwargs: call kwargs for a TorchScript file (default StyleGAN-V's).
        allow_torchscript: the user's opt-in to run a TorchScript file.

    Raises:
        FileNotFoundError: if ``path`` is None or missing; the message says where to get the file and
            where to configure it.
        s2dm_lightning.safe_load.ReceivedFileError: a file that is no I3D state dict, or TorchScript
            without the opt-in; the message names the file and the config keys.
    """
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(_missing_weights_message(os.fspath(path) if path else None))
    if is_torchscript_file(path):
        loaded = load_torchscript(path, I3D_WEIGHTS_CONFIG_KEY, allow_torchscript, ALLOW_TORCHSCRIPT_CONFIG_KEY,
                                  map_location)
        return TorchScriptI3D(loaded.module, script_kwargs, loaded.loaded_as)
    state = load_torch_data(path, I3D_WEIGHTS_CONFIG_KEY, map_location)
    if not isinstance(state, Mapping):
        raise ValueError(
            f"{I3D_WEIGHTS_CONFIG_KEY}='{path}' holds a {type(state).__name__}, expected an I3D state dict "
            "or TorchScript file"
        )
    model = InceptionI3d(bn_eps=bn_eps)
    try:
        model.load_state_dict(_clean_state_dict(state, model), strict=True)
    except RuntimeError as error:
        raise ValueError(f"{I3D_WEIGHTS_CONFIG_KEY}='{path}' is not a state dict of the FVD I3D: "
                         f"{' '.join(str(error).split())[:300]}") from error
    return model.to(map_location)


class I3DFeatureExtractor(_FrozenEvalMixin, nn.Module):
    """Raw videos -> FVD features: :func:`preprocess_for_i3d` followed by the I3D network.

    Args:
        network: an I3D from :func:`load_i3d` (or any module mapping (B, 3, T, 224, 224) to (B, d)).
        value_range: value range of float input (e.g. ``(0.0, 1.0)`` or ``(-1.0, 1.0)``); None means
            uint8 input in [0, 255].
        layout: layout of the videos, ``"BTHWC"`` (default), ``"BTCHW"`` or ``"BCTHW"``.
        resize_convention: ``"tf1"`` (the TF FVD reference, default) or ``"torch"``.
        chunk_size: videos per network call (bounds memory); None runs the whole batch at once.
    """

    def __init__(
        self,
        network: nn.Module,
        value_range: tuple[float, float] | None = None,
        layout: str = "BTHWC",
        resize_convention: str = "tf1",
        chunk_size: int | None = 8,
    ) -> None:
        super().__init__()
        self.network = network
        self.value_range, self.layout, self.resize_convention = value_range, layout, resize_convention
        self.chunk_size = chunk_size
        self.num_features = int(getattr(network, "num_features", I3D_NUM_CLASSES))
        self._freeze()

    @torch.no_grad()
    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        """Return float32 features (B, num_features) for a batch of videos."""
        step = self.chunk_size or max(len(videos), 1)
        feats = []
        for i in range(0, len(videos), step):
            x = preprocess_for_i3d(
                videos[i : i + step], self.value_range, self.layout, I3D_SIZE, self.resize_convention
            )
            feats.append(self.network(x).float())
        return torch.cat(feats) if feats else videos.new_zeros(0, self.num_features, dtype=torch.float32)
