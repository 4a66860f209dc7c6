"""The synthetic world: coloured shapes moving over muted backgrounds, and everything made for it.

* :mod:`.shapes`: shapes, colours, motions and their rasteriser, shared by both worlds;
* :mod:`.world`: captions, the default world's renderer and the dataset generator (``world=``);
* :mod:`.disocclusion`: the ``world="disocclusion"`` renderer (panning textured background, turning or
  scaling shape, a shape entering) with ground-truth flows;
* :mod:`.datamodule`: :class:`SyntheticDataModule`, the S2DM datamodule (``configs/synthetic*.yaml``);
* :mod:`.motion`: weight-free measures of whether generated videos and flows move as the caption says;
* :mod:`.features`: the FVD/KVD feature network of the synthetic data (export, loading);
* :mod:`.feature_training`: its training project (``configs/synthetic_features.yaml``), run as
  ``python -m s2dm_lightning.synthetic.feature_training``;
* :mod:`.ablation`: the ablation's scoring, tables and plots.

The last two are imported by their module path, not from this package: ``python -m`` runs
:mod:`.feature_training` itself (an import here would load it twice), and :mod:`.ablation` builds on
the evaluation protocol, which itself loads the feature network of :mod:`.features`.
"""

from s2dm_lightning.synthetic.datamodule import SyntheticDataModule
from s2dm_lightning.synthetic.features import (
    ATTRIBUTES,
    SyntheticFeatureNet,
    export_feature_extractor,
    load_feature_extractor,
)
from s2dm_lightning.synthetic.motion import (
    background_change,
    caption_color,
    caption_direction,
    direction_score,
    flow_direction,
    shape_centroids,
    track_errors,
    video_direction,
)
from s2dm_lightning.synthetic.shapes import COLORS, MOTIONS, SHAPES
from s2dm_lightning.synthetic.world import (
    all_combinations,
    caption_for,
    generate_synthetic_dataset,
    render_video,
)

__all__ = [
    "ATTRIBUTES",
    "COLORS",
    "MOTIONS",
    "SHAPES",
    "SyntheticDataModule",
    "SyntheticFeatureNet",
    "all_combinations",
    "background_change",
    "caption_color",
    "caption_direction",
    "caption_for",
    "direction_score",
    "export_feature_extractor",
    "flow_direction",
    "generate_synthetic_dataset",
    "load_feature_extractor",
    "render_video",
    "shape_centroids",
    "track_errors",
    "video_direction",
]
