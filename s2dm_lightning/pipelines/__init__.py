"""Inference pipelines: two-stage text-to-video (paper Sec. 3.4) and its evaluation wrapper."""

from s2dm_lightning.pipelines.text_to_video import (
    TextToVideoOutput,
    TwoStageTextToVideo,
    flows_from_video,
    load_datamodule,
    load_module,
)
from s2dm_lightning.pipelines.two_stage_module import TwoStageS2DM

__all__ = ["TextToVideoOutput", "TwoStageS2DM", "TwoStageTextToVideo", "flows_from_video", "load_datamodule",
           "load_module"]
