"""Lightning callbacks: sample videos during fit, write predicted videos to disk."""

from s2dm_lightning.callbacks.prediction_writer import VideoPredictionWriter
from s2dm_lightning.callbacks.sample_videos import SampleVideosCallback

__all__ = ["SampleVideosCallback", "VideoPredictionWriter"]
