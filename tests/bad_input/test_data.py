"""Bad data and data settings (rows of docs/bad_input.md): each names the file, key or value.

What a user meets through ``fit`` / ``preprocess`` is run through the real command line
(marked slow: a process costs seconds of imports); the rest calls the data classes.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch

from s2dm_lightning.data import MHADDataModule, VideoFolderDataModule
from s2dm_lightning.data.flow import FlowSettings
from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.data.sampling import interval_frame_indices
from s2dm_lightning.synthetic.world import generate_synthetic_dataset
from tests.bad_input.cli import assert_fails_with, run_cli, tiny_config
from tests.data.fake_datasets import make_mhad_tree, make_mug_tree, random_conditions


def test_missing_data_root(tmp_path):
    missing = str(tmp_path / "no_such_dataset")
    module = VideoFolderDataModule(root=missing)
    for call in (module.prepare_data, module.setup):
        with pytest.raises(FileNotFoundError, match=f"data.root='{missing}'.*resolved: '{missing}'"):
            call()


def test_short_video():
    for random in (True, False):
        indices = interval_frame_indices(5, 16, random=random, generator=torch.Generator().manual_seed(0))
        assert indices == [i * 5 // 16 for i in range(16)]
        assert sorted(set(indices)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="num_available=1"):
        interval_frame_indices(1, 16, random=False)


def test_corrupt_video(tmp_path):
    folder = make_mhad_tree(tmp_path / "mhad", actions=(1, 5), subjects=(1, 2), trials=(1,), missing=())
    (folder / "a5_s2_t1_color.avi").write_bytes(b"RIFF\x00\x00 broken avi")
    module = MHADDataModule(root=str(tmp_path / "mhad"), crop=(0, 48, 16, 48), resolution=16, flow_size=8,
                            dis_preset="fast", cache_dir=str(tmp_path / "cache"))
    summary = module.preprocess(progress=False)
    assert summary.done == 3 and [v for v, _ in summary.failed] == ["a5_s2_t1"]
    assert "VideoReadError" in summary.failed[0][1] and "a5_s2_t1_color.avi" in summary.failed[0][1]


def test_flow_cache_wrong_shape(tmp_path):
    cache = FlowCache(tmp_path, FlowSettings(flow_size=8))
    path = cache.path_for("a")
    torch.save({"displacement": torch.zeros(4, 3, 16, 16).half(), "num_frames": 4}, path)
    with pytest.raises(ValueError, match="a.pt.*16, 16"):
        cache.load("a")
    torch.save({"displacement": torch.zeros(4, 2, 8, 8).half(), "num_frames": 4}, path)
    with pytest.raises(ValueError, match="a.pt"):
        cache.load("a")
    cache.save("a", random_conditions(4, 8))
    with pytest.raises(ValueError, match="a.pt.*4 frames.*7"):
        cache.load("a", expected_frames=7)
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="a.pt.*unreadable"):
        cache.load("a")
    with pytest.raises(FileNotFoundError, match="prepare_data"):
        cache.load("missing")


def test_flow_cache_other_settings(tmp_path, caplog):
    for change in ({"flow_size": 16}, {"dis_preset": "fast"}):
        folder = tmp_path / next(iter(change))
        FlowCache(folder, FlowSettings(flow_size=8)).save("a", random_conditions(3, 8))
        new_settings = FlowSettings(**{"flow_size": 8, **change})
        with caplog.at_level(logging.WARNING):
            cache = FlowCache(folder, new_settings)
        assert not cache.has("a")
        assert "different settings" in caplog.text and str(folder) in caplog.text
        assert json.loads((folder / "meta.json").read_text())["settings"] == new_settings.to_dict()


@pytest.mark.slow
def test_synthetic_world_mismatch(tmp_path):
    # A default-world dataset at data.root would otherwise train and score as the disocclusion world.
    config = tiny_config(tmp_path, data={"world": "disocclusion"})
    generate_synthetic_dataset(tmp_path / "synthetic", num_videos=4, frames_per_video=4, image_size=16)
    before = sorted(p.name for p in (tmp_path / "synthetic").iterdir())
    result = run_cli("preprocess", "--config", str(config))
    assert_fails_with(result, f"synthetic dataset at '{tmp_path / 'synthetic'}' shows the 'default' world",
                      "generation.json", "not the requested world 'disocclusion' (data.init_args.world)", last=True)
    assert sorted(p.name for p in (tmp_path / "synthetic").iterdir()) == before


@pytest.mark.slow
def test_num_frames_one(tmp_path):
    result = run_cli("fit", "--config", str(tiny_config(tmp_path, data={"num_frames": 1})))
    assert_fails_with(result, "data.init_args.num_frames must be >= 2, got 1")


@pytest.mark.slow
def test_resolution_not_divisible(tmp_path):
    # The tiny UNet has 3 down blocks: frames must be a multiple of 4 (30 was trained on silently).
    result = run_cli("fit", "--config", str(tiny_config(tmp_path, data={"resolution": 30})))
    assert_fails_with(result, "data.init_args.resolution=30 must be a multiple of 4", "3 down blocks",
                      "e.g. 28 or 32", last=True)


@pytest.mark.slow
def test_truncated_jpeg_frame(tmp_path):
    make_mug_tree(tmp_path / "mug", subjects=("001", "002"), expressions=("anger", "fear"), session_subjects=(),
                  num_frames=4, size=16)
    frame = tmp_path / "mug" / "subjects3" / "002" / "fear" / "take000" / "img_0002.jpg"
    frame.write_bytes(frame.read_bytes()[: frame.stat().st_size // 2])  # a copy cut short
    config = tiny_config(tmp_path, data={"root": str(tmp_path / "mug")}, data_class="s2dm_lightning.data.MUGDataModule")
    result = run_cli("preprocess", "--config", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 computed, 0 already cached, 1 failed" in result.stdout
    assert f"FAILED 002_fear_take000: VideoReadError: cannot read video '{frame}': truncated JPEG" in result.stdout
    assert "Premature end of JPEG" not in result.stderr, "the grey-filled frame must not be decoded"
    cached = sorted(p.stem for p in (tmp_path / "mug" / "flow_cache_16").glob("*.pt"))
    assert cached == ["001_anger_take000", "001_fear_take000", "002_anger_take000"]


@pytest.mark.slow
def test_crop_outside_small_frames(tmp_path):
    # LFDM's pixel box for 640 x 480 frames on a downsampled (64 x 48) copy of UTD-MHAD.
    make_mhad_tree(tmp_path / "mhad", actions=(1, 2), subjects=(1, 2), trials=(1,), missing=())
    config = tiny_config(tmp_path, data={"root": str(tmp_path / "mhad"), "crop": [0, 480, 156, 492]},
                         data_class="s2dm_lightning.data.MHADDataModule")
    result = run_cli("preprocess", "--config", str(config))
    assert_fails_with(result, "data.init_args.crop=[0.0, 480.0, 156.0, 492.0] does not fit the 64x48", "fractions",
                      last=True)
    assert "leaves nothing" not in result.stderr and "FAILED" not in result.stdout, "one error, before any video"
