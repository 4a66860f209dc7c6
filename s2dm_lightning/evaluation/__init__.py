"""The evaluation protocol: FVD / KVD of generated videos as a Lightning callback, with a JSON report.

``python -m s2dm_lightning test --config ... --ckpt_path ... [--n_runs K]`` runs it; the config's
top-level ``metrics:`` section holds the arguments of :class:`VideoMetricsCallback` (e.g.
``metrics.i3d_weights``). See docs/evaluation.md.
"""

from s2dm_lightning.evaluation.callback import VideoMetricsCallback
from s2dm_lightning.evaluation.features import (
    FeatureBackbone,
    RandomConv3dFeatures,
    build_backbone,
    extract_features,
    quantize_to_uint8_levels,
)
from s2dm_lightning.evaluation.real_stats import RealStatistics, compute_real_statistics, dataset_identity

__all__ = [
    "FeatureBackbone",
    "RandomConv3dFeatures",
    "RealStatistics",
    "VideoMetricsCallback",
    "build_backbone",
    "compute_real_statistics",
    "dataset_identity",
    "extract_features",
    "quantize_to_uint8_levels",
]
