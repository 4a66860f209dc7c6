"""One frame geometry from training to use: a 4:3 circle stays a circle in training clips, their cached flows
and ``--motion_from`` flows; the same frame through the dataset, ``--motion_from`` and ``--image`` gives the same
pixels; a flow cache made under another policy is detected and rebuilt."""

from __future__ import annotations

import json
import logging

import numpy as np
import PIL.Image
import pytest
import torch

from s2dm_lightning.data import VideoFolderDataModule
from s2dm_lightning.data.geometry import fit_square
from s2dm_lightning.data.video_io import read_video
from s2dm_lightning.flow_format import identity_grid
from s2dm_lightning.pipelines.motion import flows_from_video
from s2dm_lightning.pipelines.reference_image import load_reference_image, reference_image_tensor
from tests.data.conftest import disc_video, extents, write_avi

RESOLUTION, FLOW_SIZE, NUM_FRAMES = 32, 16, 4
BACKGROUND = 40


@pytest.fixture
def disc_folder(tmp_path):
    """A VideoFolderDataModule root with one 128 x 96 (4:3) clip of a disc of diameter 61 px moving diagonally."""
    write_avi(tmp_path / "disc.avi", disc_video())
    (tmp_path / "metadata.csv").write_text("path,caption,split\ndisc.avi,a disc moves,test\n")
    return tmp_path


def _datamodule(root, geometry: str | None = None) -> VideoFolderDataModule:
    extra = {} if geometry is None else {"frame_geometry": geometry}
    return VideoFolderDataModule(str(root), resolution=RESOLUTION, flow_size=FLOW_SIZE, num_frames=NUM_FRAMES,
                                 dis_preset="medium", **extra)


def _clip(root, geometry: str | None = None) -> dict:
    datamodule = _datamodule(root, geometry)
    datamodule.preprocess(progress=False)
    datamodule.setup("test")
    return datamodule.datasets["test"][0]


def _disc_in_frame(frame: torch.Tensor) -> tuple[int, int]:
    """(rows, cols) of the disc in a (3, R, R) frame in [-1, 1]: the pixels brighter than the background."""
    levels = (frame.numpy().max(0) + 1) * 127.5
    return extents(levels > BACKGROUND + 55)


def _moving_area(flow: torch.Tensor) -> tuple[tuple[int, int], float]:
    """(rows, cols) of the moving area of a condition (3, s, s), and its x / y displacement ratio."""
    displacement = (flow[:2] - identity_grid(FLOW_SIZE, FLOW_SIZE)).numpy()
    size = np.abs(displacement).sum(0)
    return extents(size > 0.3 * size.max()), float(displacement[0].min() / displacement[1].min())


# Measured (DIS medium, 16 px flows): crop 14 x 14 moving rows x columns, x/y 1.00; squash 14 x 10, x/y 0.75
# (the 128 columns squeezed into 96); pad 10 x 10, x/y 1.00. Tolerance: one flow pixel of extent, 5% of ratio.
def test_a_4_3_circle_stays_a_circle_in_training_clips_cached_flows_and_motion_from_flows(disc_folder):
    item = _clip(disc_folder)  # the default policy
    rows, cols = _disc_in_frame(item["frames"][0])
    assert rows == cols == 20, "a 61 px disc in the centred 96 px square of a 32 px frame is 20 px wide and high"
    (rows, cols), ratio = _moving_area(item["flow"][-1])
    assert abs(rows - cols) <= 1 and abs(ratio - 1) < 0.05, ((rows, cols), ratio)
    flows, frames = flows_from_video(disc_folder / "disc.avi", FLOW_SIZE, NUM_FRAMES, frame_size=RESOLUTION)
    (rows, cols), ratio = _moving_area(flows[-1])
    assert abs(rows - cols) <= 1 and abs(ratio - 1) < 0.05, ((rows, cols), ratio)
    assert extents(frames[0].max(-1) > BACKGROUND + 55) == (20, 20)


def test_squash_is_what_makes_the_ellipse(disc_folder):
    # The test above can fail: the squash policy (what every dataset did before) gives an ellipse.
    item = _clip(disc_folder, "squash")
    rows, cols = _disc_in_frame(item["frames"][0])
    assert (rows, cols) == (20, 15)
    (rows, cols), ratio = _moving_area(item["flow"][-1])
    assert cols / rows < 0.8 and abs(ratio - 0.75) < 0.05, ((rows, cols), ratio)


def test_pad_keeps_the_whole_frame_on_black_bars(disc_folder):
    item = _clip(disc_folder, "pad")
    frame = item["frames"][0]
    assert _disc_in_frame(frame) == (15, 15)  # 61 px of 128 at 32 px
    assert torch.all(frame[:, :4] == -1) and torch.all(frame[:, -4:] == -1), "bars of 4 rows above and below"
    (rows, cols), ratio = _moving_area(item["flow"][-1])
    assert abs(rows - cols) <= 1 and abs(ratio - 1) < 0.05, ((rows, cols), ratio)


@pytest.mark.parametrize("geometry", ["crop", "pad", "squash"])
def test_the_same_frame_through_dataset_motion_from_and_image_gives_the_same_pixels(disc_folder, tmp_path, geometry):
    item = _clip(disc_folder, geometry)
    _, frames = flows_from_video(disc_folder / "disc.avi", FLOW_SIZE, NUM_FRAMES, geometry=geometry,
                                 frame_size=RESOLUTION)
    as_model_input = torch.from_numpy(frames.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
    # the same decoded uint8 frames through the same resize and arithmetic: equal up to float rounding
    torch.testing.assert_close(as_model_input, item["frames"], atol=1e-6, rtol=0)
    picture = tmp_path / "first.png"
    PIL.Image.fromarray(read_video(disc_folder / "disc.avi", [0])[0]).save(picture)
    image = reference_image_tensor(load_reference_image(picture), RESOLUTION, geometry)
    torch.testing.assert_close(image[0], item["frames"][0], atol=1e-6, rtol=0)


def test_a_flow_cache_made_under_another_policy_is_detected_and_rebuilt(disc_folder, caplog):
    squashed = _clip(disc_folder, "squash")
    meta = json.loads((disc_folder / f"flow_cache_{FLOW_SIZE}" / "meta.json").read_text())
    assert meta["settings"]["frame_geometry"] == "squash"
    with caplog.at_level(logging.WARNING):
        cropped = _clip(disc_folder, "crop")
    assert "made with different settings" in caplog.text and "'frame_geometry': 'squash'" in caplog.text
    assert json.loads((disc_folder / f"flow_cache_{FLOW_SIZE}" / "meta.json").read_text())["settings"][
        "frame_geometry"] == "crop"
    assert (cropped["flow"] - squashed["flow"]).abs().max() > 0.01, "the crop's flows, not the squashed ones"


def test_fit_square_policies_on_a_wide_frame():
    frame = np.zeros((4, 8), np.uint8)
    frame[:, :2] = 200  # a bright left edge: cropped away, kept by pad and squash
    assert fit_square(frame, 4, "crop").max() == 0
    padded = fit_square(frame, 4, "pad")
    assert padded.shape == (4, 4) and np.all(padded[[0, 3]] == 0) and np.all(padded[1:3, 0] == 200)
    assert np.all(fit_square(frame, 4, "squash")[:, 0] == 200)
    with pytest.raises(ValueError, match="frame_geometry='letterbox' is not a frame geometry"):
        fit_square(frame, 4, "letterbox")


def test_the_datamodule_names_a_bad_policy(disc_folder):
    with pytest.raises(ValueError, match=r"data.init_args.frame_geometry='stretch'.*crop.*pad.*squash"):
        _datamodule(disc_folder, "stretch")
