"""Shared plumbing of the video-distance metrics: turning ``update`` inputs into feature vectors."""

from __future__ import annotations

import os
from abc import abstractmethod

import torch
from torch import nn
from torchmetrics import Metric

from s2dm_lightning.metrics.i3d import I3DFeatureExtractor, load_i3d, resolve_i3d_weights


class VideoFeatureMetric(Metric):
    """Base of :class:`FrechetVideoDistance` and :class:`KernelVideoDistance`.

    Inputs of ``update`` become (N, d) float64 features as follows:

    * a ``feature_extractor`` was given: it is applied (under ``no_grad``) to whatever is passed;
    * no extractor and a 2-D (N, d) tensor: the tensor already holds features;
    * no extractor and a 5-D batch of videos: the FVD I3D is loaded lazily from ``i3d_weights``
      (else ``$S2DM_I3D_WEIGHTS``) and applied with :func:`preprocess_for_i3d` (``value_range``,
      ``layout``, ``resize_convention``). Missing weights raise ``FileNotFoundError``.

    The extractor is deliberately not a submodule, so its weights stay out of the metric's (and a
    Lightning checkpoint's) ``state_dict``; it is put in eval mode and moved to the device of the
    incoming videos when needed.

    Args:
        feature_extractor: module mapping an input batch to (B, d) features; None for the default I3D
            (or for inputs that are already features).
        i3d_weights: path of ``i3d_pretrained_400.pt`` or ``i3d_torchscript.pt`` for the default I3D;
            None falls back to ``$S2DM_I3D_WEIGHTS``.
        value_range: value range of float videos for the default I3D, e.g. ``(0.0, 1.0)`` or
            ``(-1.0, 1.0)``; None means uint8 videos in [0, 255].
        layout: video layout for the default I3D: ``"BTHWC"`` (default), ``"BTCHW"`` or ``"BCTHW"``.
        resize_convention: ``"tf1"`` (TF FVD reference, default) or ``"torch"``; see
            :mod:`s2dm_lightning.metrics.preprocess`.
        reset_real_features: whether ``reset()`` also clears the real-side states (False keeps them
            across validation epochs, as torchmetrics' FID does).
        allow_torchscript: allow ``i3d_weights`` to be a TorchScript file (a program that runs its own
            code); see :func:`~s2dm_lightning.metrics.i3d.load_i3d` and docs/loading_files.md.
        kwargs: passed to :class:`torchmetrics.Metric` (``sync_on_compute``, ``process_group``, ...).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    #: Names of the states that belong to the real side (kept by reset() if reset_real_features=False).
    _real_state_names: tuple[str, ...] = ()

    def __init__(
        self,
        feature_extractor: nn.Module | None = None,
        i3d_weights: str | os.PathLike | None = None,
        value_range: tuple[float, float] | None = None,
        layout: str = "BTHWC",
        resize_convention: str = "tf1",
        reset_real_features: bool = True,
        allow_torchscript: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if feature_extractor is not None and not isinstance(feature_extractor, nn.Module):
            raise TypeError(
                f"feature_extractor must be a torch.nn.Module, got {type(feature_extractor).__name__}"
            )
        if not isinstance(reset_real_features, bool):
            raise TypeError("reset_real_features must be a bool")
        # A tuple keeps the module out of nn.Module's submodule registry (and out of state_dict).
        self._extractor_box: tuple[nn.Module, ...] = () if feature_extractor is None else (feature_extractor,)
        self.i3d_weights = i3d_weights
        self.value_range, self.layout, self.resize_convention = value_range, layout, resize_convention
        self.reset_real_features, self.allow_torchscript = reset_real_features, allow_torchscript

    @property
    def feature_extractor(self) -> nn.Module | None:
        """The extractor in use (None until the default I3D is first needed)."""
        return self._extractor_box[0] if self._extractor_box else None

    def _default_extractor(self) -> nn.Module:
        network = load_i3d(resolve_i3d_weights(self.i3d_weights), allow_torchscript=self.allow_torchscript)
        return I3DFeatureExtractor(network, self.value_range, self.layout, self.resize_convention)

    def extract_features(self, inputs: torch.Tensor) -> torch.Tensor:
        """Map an ``update`` input to (N, d) float64 features on the metric's device.

        Args:
            inputs: videos for the extractor, or (N, d) features when no extractor was given.

        Returns:
            (N, d) float64 tensor.
        """
        extractor = self.feature_extractor
        if extractor is None and inputs.ndim == 2:
            feats = inputs
        elif extractor is None and inputs.ndim != 5:
            raise ValueError(
                f"without a feature_extractor, inputs must be (N, d) features or 5-D videos, got {tuple(inputs.shape)}"
            )
        else:
            if extractor is None:
                extractor = self._default_extractor()
                self._extractor_box = (extractor,)
            feats = _run_frozen(extractor, inputs)
        if feats.ndim != 2:
            raise ValueError(f"features must be (N, d), got {tuple(feats.shape)} from the feature extractor")
        return feats.detach().to(device=self.device, dtype=torch.float64)

    def update(self, videos: torch.Tensor, real: bool) -> None:
        """Add a batch of real or generated videos (or (N, d) features when there is no extractor).

        Args:
            videos: input of the feature extractor (for the default I3D: uint8 (B, T, H, W, 3), or
                float with ``value_range``), or (N, d) features when no extractor was given.
            real: True for real videos, False for generated ones.
        """
        self._add(self.extract_features(videos), real)

    def update_features(self, features: torch.Tensor, real: bool) -> None:
        """Add precomputed (N, d) features, bypassing any extractor.

        Args:
            features: (N, d) tensor.
            real: True for real features, False for generated ones.
        """
        if features.ndim != 2:
            raise ValueError(f"features must be (N, d), got {tuple(features.shape)}")
        self._bump()
        self._add(features.detach().to(device=self.device, dtype=torch.float64), real)

    @abstractmethod
    def _add(self, feats: torch.Tensor, real: bool) -> None:
        """Fold float64 (N, d) features into the metric's states (each metric's own)."""

    def forward(self, *args, **kwargs) -> None:
        """Same as ``update``: a distribution distance has no meaningful per-batch value, so unlike
        torchmetrics' default ``forward`` nothing is computed (that would fail on a one-sided batch)."""
        self.update(*args, **kwargs)

    def _bump(self) -> None:
        """Bookkeeping of torchmetrics' wrapped ``update`` for updates that bypass it."""
        self._computed = None
        self._update_count += 1

    def reset(self) -> None:
        """Reset the states; the real side too unless ``reset_real_features`` is False."""
        if self.reset_real_features:
            super().reset()
            return
        # copy: Metric.reset() clears list states in place
        kept = {name: _copy_state(getattr(self, name)) for name in self._real_state_names}
        super().reset()
        for name, value in kept.items():
            setattr(self, name, value)


def _copy_state(value: torch.Tensor | list) -> torch.Tensor | list:
    """A shallow copy of a metric state (a new list for list states, the tensor itself otherwise)."""
    return list(value) if isinstance(value, list) else value


def _run_frozen(extractor: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Apply an extractor in eval mode without gradients, on the device of ``inputs``."""
    param = next(iter(extractor.parameters()), None)
    if param is not None and param.device != inputs.device:
        extractor.to(inputs.device)
    extractor.eval()
    with torch.no_grad():
        return extractor(inputs)
