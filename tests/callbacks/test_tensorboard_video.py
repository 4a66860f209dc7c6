"""GIF image summaries land in TensorBoard event files."""

import io
import warnings

import numpy as np
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from s2dm_lightning.callbacks import tensorboard_video
from s2dm_lightning.callbacks.tensorboard_video import log_gif_to_tensorboard


def read_images(log_dir):
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    events.Reload()
    return events


def test_gif_summary_is_written_and_animated(tmp_path):
    video = np.zeros((5, 12, 20, 3), np.uint8)
    for i in range(5):
        video[i, :, 4 * i : 4 * i + 4] = 255
    writer = SummaryWriter(str(tmp_path))
    assert log_gif_to_tensorboard(writer, "samples/0", video, step=7, fps=4)
    writer.close()
    events = read_images(tmp_path)
    assert events.Tags()["images"] == ["samples/0"]
    (image,) = events.Images("samples/0")
    assert (image.step, image.height, image.width) == (7, 12, 20)
    gif = Image.open(io.BytesIO(image.encoded_image_string))
    assert gif.format == "GIF" and gif.n_frames == 5


def test_lightning_logger_and_other_loggers(tmp_path):
    logger = TensorBoardLogger(str(tmp_path), name="tb")
    video = np.full((2, 6, 6, 3), 9, np.uint8)
    video[1] = 200
    assert log_gif_to_tensorboard(logger, "samples/1", video, step=3)
    logger.experiment.flush()
    assert "samples/1" in read_images(logger.log_dir).Tags()["images"]

    tensorboard_video._WARNED.discard("CSVLogger")
    csv_logger = CSVLogger(str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not log_gif_to_tensorboard(csv_logger, "samples/0", video, step=0)
        assert not log_gif_to_tensorboard(csv_logger, "samples/1", video, step=0)
    assert len([w for w in caught if "not a TensorBoard logger" in str(w.message)]) == 1
