"""The pure picture-making functions: uint8 conversion, flow colours, panels, contact sheets."""

import numpy as np
import pytest
import torch

from s2dm_lightning.flow_format import identity_condition
from s2dm_lightning.visualization import (
    SEPARATOR_PX,
    contact_sheet,
    flow_to_rgb,
    occlusion_to_rgb,
    to_uint8_video,
    video_panel,
)


def shifted_condition(frames: int, h: int, w: int, dx: float, dy: float = 0.0) -> torch.Tensor:
    """Conditions whose grid is the identity moved by (dx, dy) grid units, occlusion 1."""
    cond = identity_condition(h, w).repeat(frames, 1, 1, 1)
    cond[:, 0] += dx
    cond[:, 1] += dy
    return cond


def test_to_uint8_maps_range_ends_and_layout():
    frames = torch.zeros(2, 3, 4, 5)
    frames[0] = -1.0
    frames[1, 0] = 1.0
    frames[1, 1:] = 0.0
    out = to_uint8_video(frames)
    assert out.dtype == np.uint8 and out.shape == (2, 4, 5, 3)
    assert (out[0] == 0).all()
    assert (out[1, ..., 0] == 255).all() and (out[1, ..., 1:] == 128).all()
    # out-of-range values are clipped, not wrapped around
    assert (to_uint8_video(torch.full((1, 3, 2, 2), 3.0)) == 255).all()
    assert (to_uint8_video(torch.full((1, 3, 2, 2), -3.0)) == 0).all()


def test_to_uint8_rejects_wrong_layout():
    with pytest.raises(ValueError, match="F, 3, H, W"):
        to_uint8_video(torch.zeros(2, 4, 4, 3))


def test_identity_flow_is_white():
    rgb = flow_to_rgb(identity_condition(6, 7).repeat(3, 1, 1, 1))
    assert rgb.shape == (3, 6, 7, 3) and rgb.dtype == np.uint8
    assert (rgb == 255).all()


def test_opposite_directions_have_different_hues_and_magnitude_is_shared():
    right = flow_to_rgb(shifted_condition(1, 8, 8, 0.5))[0, 4, 4].astype(int)
    left = flow_to_rgb(shifted_condition(1, 8, 8, -0.5))[0, 4, 4].astype(int)
    down = flow_to_rgb(shifted_condition(1, 8, 8, 0.0, 0.5))[0, 4, 4].astype(int)
    assert np.abs(right - left).max() > 100
    assert np.abs(right - down).max() > 100
    assert not (right == 255).all()  # saturated, not white
    # a video whose second frame moves twice as far: frame 0 is paler (shared scale)
    cond = torch.cat([shifted_condition(1, 8, 8, 0.25), shifted_condition(1, 8, 8, 0.5)])
    rgb = flow_to_rgb(cond).astype(int)
    assert rgb[0].sum() > rgb[1].sum()
    assert np.array_equal(rgb[1, 4, 4], right)


def test_occlusion_is_grey():
    cond = identity_condition(4, 4).repeat(2, 1, 1, 1)
    cond[1, 2] = 0.0
    cond[1, 2, 0, 0] = 0.5
    grey = occlusion_to_rgb(cond)
    assert grey.shape == (2, 4, 4, 3)
    assert (grey[0] == 255).all() and grey[1, 1, 1, 0] == 0 and grey[1, 0, 0, 0] == 128
    assert (grey[..., 0] == grey[..., 2]).all()


@pytest.mark.parametrize("with_real", [True, False])
def test_panel_size_and_contents(with_real):
    f, h, w, scale = 3, 8, 10, 2
    frames = torch.full((f, 3, h, w), -1.0)
    real = torch.ones(f, 3, h, w)
    panel = video_panel(frames, shifted_condition(f, 4, 5, 0.3), real if with_real else None, scale=scale)
    n = 4 if with_real else 3
    assert panel.dtype == np.uint8
    assert panel.shape == (f, h * scale, n * w * scale + (n - 1) * SEPARATOR_PX, 3)
    assert (panel[:, :, : w * scale] == 0).all()  # generated (black) first
    if with_real:
        assert (panel[:, :, w * scale + SEPARATOR_PX : 2 * w * scale + SEPARATOR_PX] == 255).all()
    assert (panel[:, :, -w * scale :] == 255).all()  # occlusion 1 = white, last


def test_panel_rejects_mismatched_frame_counts():
    with pytest.raises(ValueError, match="conditions"):
        video_panel(torch.zeros(3, 3, 8, 8), identity_condition(4, 4).repeat(2, 1, 1, 1))


def test_contact_sheet_layout_rows_by_frames():
    f, h, w = 4, 5, 6
    videos = []
    for r in range(3):
        v = np.zeros((f, h, w, 3), np.uint8)
        for c in range(f):
            v[c] = 10 * r + c + 1  # each cell has its own value
        videos.append(v)
    sheet = contact_sheet(videos, scale=2)
    cell_h, cell_w = 2 * h, 2 * w
    assert sheet.shape == (3 * cell_h + 2 * SEPARATOR_PX, f * cell_w + (f - 1) * SEPARATOR_PX, 3)
    for r in range(3):
        for c in range(f):
            y, x = r * (cell_h + SEPARATOR_PX), c * (cell_w + SEPARATOR_PX)
            assert (sheet[y : y + cell_h, x : x + cell_w] == 10 * r + c + 1).all()


def test_contact_sheet_labels_add_caption_bands():
    videos = [np.zeros((2, 8, 8, 3), np.uint8) for _ in range(2)]
    plain = contact_sheet(videos)
    labelled = contact_sheet(videos, labels=["a person is waving", "a square moves right"])
    assert labelled.shape[1] == plain.shape[1]
    band = (labelled.shape[0] - plain.shape[0]) // 2
    assert band > 0 and labelled[:band].max() > 0  # text drawn in the band
    with pytest.raises(ValueError, match="labels"):
        contact_sheet(videos, labels=["only one"])
