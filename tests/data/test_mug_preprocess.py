"""Preprocessing a MUG tree: interrupted runs resume, corrupt videos are reported and skipped."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from s2dm_lightning.cli import main
from s2dm_lightning.data import MUGDataModule
from s2dm_lightning.data.flow_cache import FlowCache
from tests.data.fake_datasets import make_mug_tree


def small_module(root, tmp_path, **kwargs) -> MUGDataModule:
    return MUGDataModule(
        root=str(root), resolution=16, flow_size=8, dis_preset="fast", cache_dir=str(tmp_path / "cache"), **kwargs
    )


def test_interrupted_run_resumes_without_recomputing(tmp_path, monkeypatch):
    make_mug_tree(tmp_path / "mug", subjects=("001", "002"), expressions=("anger", "fear", "sadness"))
    dm = small_module(tmp_path / "mug", tmp_path)
    saved: list[str] = []
    original_save = FlowCache.save

    def save_then_stop(self, video_id, condition):
        if len(saved) == 2:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during the third video
        saved.append(video_id)
        return original_save(self, video_id, condition)

    monkeypatch.setattr(FlowCache, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        dm.preprocess(progress=False)
    monkeypatch.setattr(FlowCache, "save", original_save)

    cache = dm.flow_cache()
    assert sorted(p.stem for p in cache.cache_dir.glob("*.pt")) == sorted(saved)
    assert not list(cache.cache_dir.glob(".*.tmp"))  # no partial file left behind
    mtimes = {v: cache.path_for(v).stat().st_mtime_ns for v in saved}

    summary = dm.preprocess(progress=False)
    assert (summary.done, summary.skipped, summary.failed) == (4, 2, [])
    assert {v: cache.path_for(v).stat().st_mtime_ns for v in saved} == mtimes  # not recomputed
    again = dm.preprocess(progress=False)
    assert (again.done, again.skipped) == (0, 6)


def test_corrupt_frame_is_reported_and_left_out(tmp_path, capsys, caplog):
    base = make_mug_tree(tmp_path / "mug", subjects=("001", "002"), expressions=("anger", "fear"))
    corrupt = base / "001" / "fear" / "take000" / "img_0003.jpg"
    corrupt.write_bytes(b"\xff\xd8 truncated")
    dm = small_module(tmp_path / "mug", tmp_path)
    summary = dm.preprocess(progress=False)
    assert summary.done == 3 and [v for v, _ in summary.failed] == ["001_fear_take000"]
    assert "img_0003.jpg" in summary.failed[0][1]
    printed = capsys.readouterr().out
    assert "3 computed, 0 already cached, 1 failed" in printed and "FAILED 001_fear_take000" in printed
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert "001_fear_take000" in caplog.text
    kept = [r.video_id for name in ("train", "test") for r in dm.datasets[name].records]
    assert sorted(kept) == ["001_anger_take000", "002_session0_anger_take000", "002_session0_fear_take000"]


def test_preprocess_subcommand_with_the_shipped_config(tmp_path, capsys):
    from tests.commands.test_cli import pretrained_overrides
    from tests.tiny_sd import make_tiny_sd_folder

    make_mug_tree(tmp_path / "mug", subjects=("001", "020"), expressions=("anger", "fear"), num_frames=4)
    config = Path(__file__).resolve().parents[2] / "configs" / "mug.yaml"
    make_tiny_sd_folder(tmp_path / "sd")  # the config names a local SD 1.5 folder; a tiny one stands in
    main([
        "preprocess", "--config", str(config), f"--data.init_args.root={tmp_path / 'mug'}",
        *pretrained_overrides(config, tmp_path / "sd"), "--model.init_args.latent_cache_dir=null",
        "--data.init_args.flow_size=8", "--data.init_args.preprocess_workers=0", "--data.init_args.dis_preset=fast",
        "--model.init_args.flow_size=8", "--model.init_args.flow_patch_size=4", "--trainer.logger=false",
    ])
    assert "4 computed, 0 already cached, 0 failed" in capsys.readouterr().out
    assert (tmp_path / "mug" / "flow_cache_8" / "mug_split.json").is_file()
    assert len(list((tmp_path / "mug" / "flow_cache_8").glob("*.pt"))) == 4
