"""Inference pipelines: the diffusers S2DMPipeline, motion sources, two-stage text-to-video (paper Sec. 3.4)."""

from s2dm_lightning.pipelines.s2dm_pipeline import S2DMPipeline, S2DMPipelineOutput
from s2dm_lightning.pipelines.text_to_video import TextToVideoOutput, TwoStageTextToVideo, flows_from_video
from s2dm_lightning.pipelines.two_stage_module import TwoStageS2DM

__all__ = ["S2DMPipeline", "S2DMPipelineOutput", "TextToVideoOutput", "TwoStageS2DM", "TwoStageTextToVideo",
           "flows_from_video"]
