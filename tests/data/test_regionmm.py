"""RegionMM/LFDM flows imported into the flow cache give the tensors of our estimator's format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from s2dm_lightning.data import MUGDataModule
from s2dm_lightning.data.datasets import VideoRecord
from s2dm_lightning.data.flow import FlowSettings, estimate_flow_sequence
from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.data.regionmm import import_regionmm_flows, load_regionmm_file, regionmm_to_condition
from s2dm_lightning.data.video_io import read_video
from s2dm_lightning.flow_format import identity_condition
from tests.data.conftest import moving_texture_video, write_frames
from tests.data.fake_datasets import make_mug_tree


def make_coordinate_grid(h: int, w: int) -> torch.Tensor:
    """RegionMM's identity grid (LFAE/modules/util.py), (h, w, 2) with (x, y) last."""
    x = 2 * (torch.arange(w).float() / (w - 1)) - 1
    y = 2 * (torch.arange(h).float() / (h - 1)) - 1
    return torch.cat([x.view(1, -1).repeat(h, 1)[..., None], y.view(-1, 1).repeat(1, w)[..., None]], 2)


def as_regionmm(condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Our (L, 3, h, w) -> RegionMM's per-frame tensors stacked: grid (L, h, w, 2), occlusion (L, 1, h, w)."""
    return condition[:, :2].permute(0, 2, 3, 1).contiguous(), condition[:, 2:].contiguous()


SETTINGS = dict(dis_preset="fast", estimation_size=64)


@pytest.fixture(scope="module")
def pan():
    return moving_texture_video(num_frames=8, size=48, step=1, seed=3)


def test_all_file_forms_round_trip(pan, tmp_path):
    condition = estimate_flow_sequence(pan, FlowSettings(flow_size=32, **SETTINGS))
    grid, occlusion = as_regionmm(condition)
    channels_last = torch.cat([grid, occlusion.permute(0, 2, 3, 1)], dim=-1)
    np.save(tmp_path / "a.npy", channels_last.numpy())
    np.save(tmp_path / "b.npy", condition.numpy())
    torch.save({"optical_flow": grid, "occlusion_map": occlusion}, tmp_path / "c.pt")
    np.savez(tmp_path / "d.npz", grid=grid.numpy(), occlusion=occlusion[:, 0].numpy())
    for name in ("a.npy", "b.npy", "c.pt", "d.npz"):
        loaded = regionmm_to_condition(*load_regionmm_file(tmp_path / name), flow_size=32)
        assert torch.allclose(loaded, condition, atol=1e-6), name


def test_import_matches_the_estimator_at_another_flow_size(pan, tmp_path):
    # RegionMM maps at 32 x 32 imported into a 16 x 16 cache are what our estimator stores
    # at flow_size 16 (area resizing by 2 then 2 = by 4), frame 0 exactly the identity.
    at_32 = estimate_flow_sequence(pan, FlowSettings(flow_size=32, **SETTINGS))
    at_16 = estimate_flow_sequence(pan, FlowSettings(flow_size=16, **SETTINGS))
    grid, occlusion = as_regionmm(at_32)
    grid[0] += 0.01  # RegionMM's frame 0 is only near the identity
    video = write_frames(tmp_path / "videos" / "pan", pan)
    torch.save({"grid": grid, "occlusion": occlusion}, tmp_path / "pan.pt")
    cache = FlowCache(tmp_path / "cache", FlowSettings(flow_size=16, **SETTINGS), source={"flows": "regionmm"})
    summary = import_regionmm_flows([VideoRecord("pan", video, "pans", "train")], cache, tmp_path, progress=False)
    assert (summary.done, summary.failed) == (1, [])
    imported = cache.load("pan", expected_frames=len(pan))
    assert torch.equal(imported[0], identity_condition(16, 16))
    assert torch.allclose(imported, at_16, atol=2e-3)  # float16 storage
    assert imported[:, 2].min() >= 0 and imported[:, 2].max() <= 1


def test_regionmm_coordinates_are_ours(pan):
    # A RegionMM grid for the pan's true motion, built the way RegionMM builds grids, agrees
    # with our estimator: same (x, y) order, same sign, align_corners=True coordinates.
    size, step = 32, 1.0
    length = len(pan)
    grid = make_coordinate_grid(size, size).repeat(length, 1, 1, 1)
    for i in range(length):
        # frame_i(p) = reference(p + step * i px in x): in grid units of the 48-px frame.
        grid[i, ..., 0] += step * i * 2 / (pan.shape[2] - 1)
    imported = regionmm_to_condition(grid.numpy(), np.ones((length, size, size, 1), np.float32), size)
    estimated = estimate_flow_sequence(pan, FlowSettings(flow_size=size, **SETTINGS))
    interior = (slice(None), slice(0, 2), slice(4, 28), slice(4, 20))  # away from the incoming right edge
    assert (imported[interior] - estimated[interior]).abs().mean() < 0.01
    assert imported[-1, 0].mean() - identity_condition(size, size)[0].mean() > 0.25  # a real motion


def test_bad_files_are_reported_not_fatal(tmp_path):
    base = make_mug_tree(tmp_path / "mug", subjects=("001", "002"), expressions=("anger",), num_frames=5)
    flows = tmp_path / "regionmm"
    flows.mkdir()
    good = np.concatenate([make_coordinate_grid(32, 32).numpy(), np.ones((32, 32, 1), np.float32)], -1)
    np.save(flows / "001_anger_take000.npy", np.repeat(good[None], 5, axis=0))
    np.save(flows / "002_session0_anger_take000.npy", np.repeat(good[None], 4, axis=0))  # one frame short
    dm = MUGDataModule(root=str(base), flow_size=32, regionmm_dir=str(flows), cache_dir=str(tmp_path / "cache"))
    summary = dm.preprocess(progress=False)
    assert summary.done == 1 and [v for v, _ in summary.failed] == ["002_session0_anger_take000"]
    assert "holds 4 frames but the video" in summary.failed[0][1]
    assert json.loads((tmp_path / "cache" / "meta.json").read_text())["source"] == {"flows": "regionmm"}
    np.save(flows / "002_session0_anger_take000.npy", np.zeros((5, 32, 32, 5), np.float32))
    with pytest.raises(ValueError, match=r"002_session0_anger_take000.npy.*shape \(5, 32, 32, 5\)"):
        load_regionmm_file(flows / "002_session0_anger_take000.npy")
    (flows / "002_session0_anger_take000.npy").unlink()
    again = dm.preprocess(progress=False)
    assert again.skipped == 1 and "no file '002_session0_anger_take000" in again.failed[0][1]
    dm.setup("test")
    record = next(r for r in dm.records() if r.video_id == "001_anger_take000")
    assert torch.allclose(dm.flow_cache().load(record.video_id)[3], identity_condition(32, 32), atol=1e-6)
    assert read_video(record.path).shape[0] == 5
