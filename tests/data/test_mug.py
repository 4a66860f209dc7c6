"""MUG: parsing of the real layout, the held-out split and its file, clips with their flows."""

from __future__ import annotations

import json
import logging
from collections import defaultdict

import pytest
import torch

from s2dm_lightning.data import MUGDataModule
from s2dm_lightning.data.mug import EXPRESSIONS, mug_caption
from s2dm_lightning.data.splits import held_out_count
from s2dm_lightning.flow_format import identity_condition
from tests.data.conftest import moving_texture_video
from tests.data.fake_datasets import make_mug_tree, write_mug_take


@pytest.fixture(scope="module")
def mug_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mug")
    make_mug_tree(root)  # 3 subjects x 7 expressions, subject 002 under session0
    return root


def module(root, tmp_path, **kwargs) -> MUGDataModule:
    kwargs.setdefault("cache_dir", str(tmp_path / "cache"))
    return MUGDataModule(root=str(root), resolution=16, flow_size=8, dis_preset="fast", **kwargs)


def test_parsing_counts_captions_and_session_level(mug_root, tmp_path):
    records = module(mug_root, tmp_path).list_records()
    assert len(records) == 3 * 7
    ids = {r.video_id: r for r in records}
    assert "020_fear_take000" in ids and "002_session0_happiness_take000" in ids
    assert ids["020_fear_take000"].caption == "Person 020 is making fear expression"
    assert ids["002_session0_happiness_take000"].caption == "Person 002 is making happiness expression"
    assert ids["020_fear_take000"].path == mug_root / "subjects3" / "020" / "fear" / "take000"
    assert {r.caption.split()[-2] for r in records} == set(EXPRESSIONS)
    assert mug_caption("20", "anger") == "Person 020 is making anger expression"
    # root may be subjects3 itself: the same videos, the same split.
    same = module(mug_root / "subjects3", tmp_path).list_records()
    assert [(r.video_id, r.split) for r in same] == [(r.video_id, r.split) for r in records]


def test_strays_are_skipped_with_a_warning(tmp_path, caplog):
    root = tmp_path / "data"
    base = make_mug_tree(root, subjects=("001", "003"), expressions=("anger", "fear"))
    (base / "001" / "anger" / "take001").mkdir()  # a take without frames
    write_mug_take(base / "003" / "contempt" / "take000", moving_texture_video(num_frames=3, size=16))
    (base / "notes.txt").write_text("not a subject")
    with caplog.at_level(logging.WARNING):
        records = module(root, tmp_path).list_records()
    assert len(records) == 4
    assert "take001 (no frames)" in caplog.text and "contempt (not an expression)" in caplog.text


def test_missing_videos_are_a_clear_error(tmp_path):
    (tmp_path / "empty" / "subjects3").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no MUG videos under .*subjects3"):
        module(tmp_path / "empty", tmp_path).list_records()


def test_split_holds_out_whole_combinations_and_is_reused(mug_root, tmp_path):
    dm = module(mug_root, tmp_path)
    records = dm.list_records()
    split_file = tmp_path / "cache" / "mug_split.json"
    stored = json.loads(split_file.read_text())
    assert stored["dataset"] == "MUG" and stored["seed"] == 0 and stored["num_combinations"] == 21
    assert len(stored["test_combinations"]) == held_out_count(21, 36, 364) == 2
    splits_of = defaultdict(set)
    for r in records:
        subject, expression = r.video_id.split("_")[0], r.caption.split()[-2]
        splits_of[f"{subject}/{expression}"].add(r.split)
    assert all(len(s) == 1 for s in splits_of.values())  # never one combination on both sides
    assert {c for c, s in splits_of.items() if s == {"test"}} == set(stored["test_combinations"])

    # Later runs reuse the file (even an edited one) instead of drawing again.
    stored["test_combinations"] = ["001/anger"]
    split_file.write_text(json.dumps(stored))
    again = module(mug_root, tmp_path).list_records()
    assert [r.video_id for r in again if r.split == "test"] == ["001_anger_take000"]


def test_split_file_is_validated(mug_root, tmp_path):
    split_file = tmp_path / "custom_split.json"
    dm = module(mug_root, tmp_path, split_file=str(split_file))
    dm.list_records()
    stored = json.loads(split_file.read_text())
    stored["test_combinations"] = ["099/anger", "001/fear"]
    split_file.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=r"custom_split.json.*does not have: \['099/anger'\]"):
        dm.list_records()
    with pytest.raises(ValueError, match=r"custom_split.json.*seed 0 but split_seed=5"):
        module(mug_root, tmp_path, split_file=str(split_file), split_seed=5).list_records()
    split_file.write_text("{not json")
    with pytest.raises(ValueError, match="custom_split.json.*unreadable"):
        dm.list_records()


def test_split_scales_with_the_number_of_combinations():
    assert held_out_count(364, 36, 364) == 36 and held_out_count(216, 21, 216) == 21
    assert held_out_count(3, 36, 364) == 1 and held_out_count(100, 36, 364) == 10
    assert held_out_count(2, 21, 216) == 1
    with pytest.raises(ValueError, match="at least 2 combinations"):
        held_out_count(1, 36, 364)


def test_clips_at_128_with_matching_flows(mug_root, tmp_path):
    dm = MUGDataModule(root=str(mug_root), cache_dir=str(tmp_path / "cache"), dis_preset="fast", val_videos=2)
    assert (dm.resolution, dm.flow_settings.flow_size, dm.batch_size, dm.num_frames) == (128, 32, 4, 16)
    dm.prepare_data()
    dm.setup("fit")
    assert {r.split for r in dm.datasets["test"].records} == {"test"}
    assert all(r.split == "train" for r in dm.datasets["train"].records)
    with pytest.warns(UserWarning, match="sampled with repeats"):  # 6-frame takes, 16-frame clips
        batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].shape == (4, 16, 3, 128, 128) and batch["flow"].shape == (4, 16, 3, 32, 32)
    cache = dm.flow_cache()
    for video_id, indices, flow in zip(batch["video_id"], batch["frame_indices"], batch["flow"], strict=True):
        assert torch.equal(flow, cache.load(video_id, indices=indices.tolist()))
        assert torch.equal(flow[0], identity_condition(32, 32))


def test_lfdm_split_holds_out_lfdms_26_test_subjects_and_writes_no_split_file(mug_root, tmp_path):
    data = module(mug_root, tmp_path, split="lfdm")
    records = data.list_records()
    # of the tree's subjects 001, 002, 020: all three are LFDM test subjects; 003 would be training
    assert {r.split for r in records} == {"test"} and len(records) == 3 * 7
    assert not (tmp_path / "cache" / "mug_split.json").exists()
    assert MUGDataModule.video_groups("002_session0_happiness_take000") == {"class": "happiness", "subject": "002"}
    with pytest.raises(ValueError, match="data.init_args.split"):
        module(mug_root, tmp_path, split="lfdm2")


def test_lfdm_split_trains_on_the_other_subjects(tmp_path):
    root = tmp_path / "data"
    make_mug_tree(root, subjects=("001", "003", "082", "084"), expressions=("anger",), session_subjects=())
    splits = {r.video_id: r.split for r in module(root, tmp_path, split="lfdm").list_records()}
    assert splits == {"001_anger_take000": "test", "003_anger_take000": "train", "082_anger_take000": "test",
                      "084_anger_take000": "train"}
