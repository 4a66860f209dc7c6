"""Log an animated GIF to TensorBoard's Images tab, without moviepy.

``SummaryWriter.add_video`` needs moviepy to encode its GIF. An image summary whose
encoded string is a GIF is all it writes anyway, and TensorBoard's Images tab animates
it, so we encode the GIF ourselves (:func:`s2dm_lightning.video_files.gif_bytes`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

from s2dm_lightning.video_files import gif_bytes

# logger classes already warned about, so a warning appears once per type, not once per video
_WARNED: set[str] = set()


def _is_tensorboard_logger(obj: Any) -> bool:
    from lightning.fabric.loggers import TensorBoardLogger as FabricTensorBoardLogger
    from lightning.pytorch.loggers import TensorBoardLogger

    return isinstance(obj, (TensorBoardLogger, FabricTensorBoardLogger))


def _tensorboard_writer(logger_or_writer: Any) -> SummaryWriter | None:
    """The SummaryWriter behind a TensorBoard logger (Lightning or Fabric), or the writer itself."""
    if isinstance(logger_or_writer, SummaryWriter):
        return logger_or_writer
    # check the type before touching ``.experiment``: on other loggers (W&B, MLflow) it
    # would start a run as a side effect
    if _is_tensorboard_logger(logger_or_writer):
        experiment = logger_or_writer.experiment
        # on non-zero ranks ``experiment`` is a dummy object: nothing to log there
        return experiment if isinstance(experiment, SummaryWriter) else None
    return None


def gif_summary(tag: str, frames: np.ndarray, fps: int = 8) -> Summary:
    """An image ``Summary`` whose encoded image is the animated GIF of uint8 (F, H, W, 3) ``frames``."""
    encoded = gif_bytes(frames, fps)  # checks the shape and dtype first
    frames = np.asarray(frames)
    image = Summary.Image(
        height=int(frames.shape[1]), width=int(frames.shape[2]), colorspace=3, encoded_image_string=encoded
    )
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def log_gif_to_tensorboard(
    logger_or_writer: Any, tag: str, frames: np.ndarray, step: int, fps: int = 8
) -> bool:
    """Write ``frames`` as an animated GIF image summary, shown (animated) in TensorBoard's Images tab.

    Args:
        logger_or_writer: a Lightning/Fabric ``TensorBoardLogger`` or a ``torch.utils.tensorboard.SummaryWriter``.
            Anything else is skipped with a warning shown once per logger type.
        tag: summary tag, e.g. ``"samples/0"``.
        frames: uint8 video (F, H, W, 3).
        step: global step the summary belongs to.
        fps: playback frames per second.

    Returns:
        True if a summary was written.
    """
    writer = _tensorboard_writer(logger_or_writer)
    if writer is None:
        name = type(logger_or_writer).__name__
        if not _is_tensorboard_logger(logger_or_writer) and name not in _WARNED:
            _WARNED.add(name)
            warnings.warn(
                f"log_gif_to_tensorboard: {name} is not a TensorBoard logger; videos are not logged to it "
                "(the video files on disk are still written).",
                stacklevel=2,
            )
        return False
    writer._get_file_writer().add_summary(gif_summary(tag, frames, fps), step)
    return True
