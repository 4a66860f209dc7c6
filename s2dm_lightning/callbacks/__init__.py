"""Lightning callbacks: EMA that is the trained network before it starts, sample videos during fit, write predicted videos to disk, progress lines for log files."""

from s2dm_lightning.callbacks.ema import EMAWeightAveraging
from s2dm_lightning.callbacks.prediction_writer import VideoPredictionWriter
from s2dm_lightning.callbacks.progress import LineProgressBar
from s2dm_lightning.callbacks.sample_videos import SampleVideosCallback

__all__ = ["EMAWeightAveraging", "LineProgressBar", "SampleVideosCallback", "VideoPredictionWriter"]
