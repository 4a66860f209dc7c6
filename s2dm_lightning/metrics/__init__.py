"""Video-generation metrics: the FVD I3D network, FrechetVideoDistance and KernelVideoDistance.

The I3D weights are never downloaded: point the config key ``metrics.i3d_weights`` or the
environment variable ``S2DM_I3D_WEIGHTS`` at ``i3d_pretrained_400.pt`` or ``i3d_torchscript.pt``.
"""

from s2dm_lightning.metrics.base import VideoFeatureMetric
from s2dm_lightning.metrics.consistency import BackgroundDrift, FlowAdherence, FlowWarpingError
from s2dm_lightning.metrics.functional import (
    feature_statistics,
    frechet_distance,
    frechet_distance_from_features,
    kernel_distance,
    mean_cov_from_sums,
    mmd2_unbiased,
    polynomial_kernel,
    sums_from_mean_cov,
    trace_sqrt_product,
)
from s2dm_lightning.metrics.fvd import FeatureStatistics, FrechetVideoDistance
from s2dm_lightning.metrics.i3d import (
    I3D_WEIGHTS_CONFIG_KEY,
    I3D_WEIGHTS_ENV,
    I3DFeatureExtractor,
    InceptionI3d,
    TorchScriptI3D,
    load_i3d,
    resolve_i3d_weights,
)
from s2dm_lightning.metrics.kvd import KernelVideoDistance
from s2dm_lightning.metrics.preprocess import bilinear_resize_matrix, preprocess_for_i3d

__all__ = [
    "BackgroundDrift",
    "FlowAdherence",
    "FlowWarpingError",
    "I3D_WEIGHTS_CONFIG_KEY",
    "I3D_WEIGHTS_ENV",
    "FeatureStatistics",
    "FrechetVideoDistance",
    "I3DFeatureExtractor",
    "InceptionI3d",
    "KernelVideoDistance",
    "TorchScriptI3D",
    "VideoFeatureMetric",
    "bilinear_resize_matrix",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_features",
    "kernel_distance",
    "load_i3d",
    "mean_cov_from_sums",
    "mmd2_unbiased",
    "polynomial_kernel",
    "preprocess_for_i3d",
    "resolve_i3d_weights",
    "sums_from_mean_cov",
    "trace_sqrt_product",
]
