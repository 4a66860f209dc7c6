"""Lightning callbacks: EMA that is the trained network before it starts, sample videos during fit, write
predicted videos to disk, progress lines for log files, `last.ckpt` at every end of fit, a guard against
non-finite training steps, a bound on DDP waits, a notice when a resume cannot restore the data order."""

from s2dm_lightning.callbacks.checkpoint_at_end import CheckpointAtEnd
from s2dm_lightning.callbacks.collective_timeout import CollectiveTimeout
from s2dm_lightning.callbacks.data_order import DataOrderNotice
from s2dm_lightning.callbacks.ema import EMAWeightAveraging
from s2dm_lightning.callbacks.finite_loss import FiniteLossGuard
from s2dm_lightning.callbacks.prediction_writer import VideoPredictionWriter
from s2dm_lightning.callbacks.progress import LineProgressBar
from s2dm_lightning.callbacks.sample_videos import SampleVideosCallback

__all__ = [
    "CheckpointAtEnd",
    "CollectiveTimeout",
    "DataOrderNotice",
    "EMAWeightAveraging",
    "FiniteLossGuard",
    "LineProgressBar",
    "SampleVideosCallback",
    "VideoPredictionWriter",
]
