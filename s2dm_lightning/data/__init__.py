"""Data: video reading, clip sampling, flow estimation and caching, datasets and datamodules."""

from s2dm_lightning.data.datamodule import VideoDataModule, VideoFolderDataModule
from s2dm_lightning.data.datasets import VideoClipDataset, VideoRecord, read_metadata
from s2dm_lightning.data.flow import FlowSettings, estimate_flow_sequence, estimate_pair
from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.data.frames import FrameDataModule, RandomFrameDataset
from s2dm_lightning.data.latent_cache import LatentCache
from s2dm_lightning.data.mhad import MHADDataModule
from s2dm_lightning.data.mug import MUGDataModule
from s2dm_lightning.data.preprocess import PreprocessSummary, preprocess_flows
from s2dm_lightning.data.regionmm import import_regionmm_flows
from s2dm_lightning.data.sampling import interval_frame_indices
from s2dm_lightning.data.video_io import VideoReadError, count_frames, read_video

__all__ = [
    "FlowCache",
    "FlowSettings",
    "FrameDataModule",
    "LatentCache",
    "MHADDataModule",
    "MUGDataModule",
    "PreprocessSummary",
    "RandomFrameDataset",
    "VideoClipDataset",
    "VideoDataModule",
    "VideoFolderDataModule",
    "VideoReadError",
    "VideoRecord",
    "count_frames",
    "estimate_flow_sequence",
    "estimate_pair",
    "import_regionmm_flows",
    "interval_frame_indices",
    "preprocess_flows",
    "read_metadata",
    "read_video",
]
