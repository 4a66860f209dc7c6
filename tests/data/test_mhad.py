"""UTD-MHAD: parsing, captions from the subjects file, the split, the crop of frames and flows."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
import torch

from s2dm_lightning.data import MHADDataModule
from s2dm_lightning.data.datasets import frames_to_tensor
from s2dm_lightning.data.flow import estimate_flow_sequence
from s2dm_lightning.data.mhad import ACTIONS, DEFAULT_SUBJECTS_FILE, load_subject_appearances
from s2dm_lightning.data.video_io import read_video
from tests.data.fake_datasets import make_mhad_tree

CROP = (0, 48, 16, 48)  # rows 0-48, columns 16-48 of the 64 x 48 test videos


@pytest.fixture(scope="module")
def mhad_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mhad")
    make_mhad_tree(root)  # actions 1, 2, 3, 10, 27 x subjects 1, 2, 3, 8 x trials 1, 2; a27_s8_t2 missing
    return root


def module(root, tmp_path, **kwargs) -> MHADDataModule:
    kwargs.setdefault("cache_dir", str(tmp_path / "cache"))
    kwargs.setdefault("crop", CROP)
    return MHADDataModule(root=str(root), resolution=16, flow_size=8, dis_preset="fast", **kwargs)


def test_action_phrases_and_default_subjects():
    assert len(ACTIONS) == 27 and ACTIONS[0] == "right arm swipe to the left"
    assert ACTIONS[9] == "right hand draw circle (counter clockwise)" and ACTIONS[26] == "squat (two arms stretch out)"
    assert load_subject_appearances(DEFAULT_SUBJECTS_FILE) == {s: f"Person {s}" for s in range(1, 9)}


def test_parsing_counts_and_captions(mhad_root, tmp_path):
    records = module(mhad_root, tmp_path).list_records()
    assert len(records) == 5 * 4 * 2 - 1  # strays (.mat, .txt) ignored
    ids = {r.video_id: r for r in records}
    assert ids["a27_s3_t1"].caption == "Person 3 is squat (two arms stretch out)"
    assert ids["a1_s8_t2"].caption == "Person 8 is right arm swipe to the left"
    assert ids["a10_s2_t1"].path == mhad_root / "RGB" / "a10_s2_t1_color.avi"
    assert all(r.crop is None for r in records)  # list_records parses; the base class adds the crop
    assert {r.crop for r in module(mhad_root, tmp_path).records()} == {CROP}
    # root may also be the folder of the .avi files.
    direct = module(mhad_root / "RGB", tmp_path).list_records()
    assert [(r.video_id, r.split) for r in direct] == [(r.video_id, r.split) for r in records]


def test_subjects_file(mhad_root, tmp_path):
    subjects = tmp_path / "subjects.yaml"
    subjects.write_text("s1: A woman in a red shirt\n2: A man with glasses\n3: Person 3\n8: Person 8\n")
    records = module(mhad_root, tmp_path, subjects_file=str(subjects)).list_records()
    captions = {r.video_id: r.caption for r in records}
    assert captions["a3_s1_t1"] == "A woman in a red shirt is right hand wave"
    assert captions["a2_s2_t2"] == "A man with glasses is right arm swipe to the right"
    subjects.write_text("1: Person 1\n2: Person 2\n")
    with pytest.raises(ValueError, match=r"subjects.yaml' has no appearance for subject\(s\) \[3, 8\]"):
        module(mhad_root, tmp_path, subjects_file=str(subjects)).list_records()
    subjects.write_text("one: Person 1\n")
    with pytest.raises(ValueError, match="subjects.yaml': key 'one' is not a subject number"):
        load_subject_appearances(subjects)


def test_split_holds_out_whole_subject_action_combinations(mhad_root, tmp_path):
    records = module(mhad_root, tmp_path).list_records()
    stored = json.loads((tmp_path / "cache" / "mhad_split.json").read_text())
    assert stored["dataset"] == "UTD-MHAD" and stored["num_combinations"] == 20
    assert len(stored["test_combinations"]) == round(21 / 216 * 20) == 2
    splits_of = defaultdict(set)
    for r in records:
        action, subject, _ = r.video_id.split("_")
        splits_of[f"{subject}/{action}"].add(r.split)
    assert all(len(s) == 1 for s in splits_of.values())
    assert {c for c, s in splits_of.items() if s == {"test"}} == set(stored["test_combinations"])
    # Stable: a new module (a later run) reads the same file and gets the same split.
    again = module(mhad_root, tmp_path).list_records()
    assert [(r.video_id, r.split) for r in again] == [(r.video_id, r.split) for r in records]


def test_bad_crop_is_named():
    with pytest.raises(ValueError, match=r"data.init_args.crop=\(0, 48, 30, 20\)"):
        MHADDataModule(root="x", crop=(0, 48, 30, 20))


def test_crop_applies_to_frames_and_flows_and_keys_the_cache(tmp_path):
    mhad_root = tmp_path / "mhad"
    make_mhad_tree(mhad_root, actions=(1, 2), subjects=(1, 2), trials=(1,), missing=())
    dm = module(mhad_root, tmp_path, preprocess_workers=2)  # the crop goes through the worker processes
    summary = dm.preprocess(progress=False)
    assert (summary.done, summary.failed) == (4, [])
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert meta["source"] == {"crop": list(CROP)}
    dm.setup("test")
    dataset = dm.datasets["test"]
    with pytest.warns(UserWarning, match="sampled with repeats"):
        item = dataset[0]
    record = dataset.records[0]
    frames = read_video(record.path)
    cropped = frames[:, 0:48, 16:48]
    assert torch.equal(item["frames"], frames_to_tensor(cropped[item["frame_indices"].numpy()], 16))
    expected = estimate_flow_sequence(cropped, dm.flow_settings)
    assert torch.allclose(dm.flow_cache().load(record.video_id), expected, atol=2e-3)
    assert item["frames"].shape == (16, 3, 16, 16) and item["flow"].shape == (16, 3, 8, 8)

    # Another crop (or none) is another cache: the old flows are deleted, not reused.
    uncropped = module(mhad_root, tmp_path, crop=None)
    assert uncropped.flow_cache().has(record.video_id) is False
    assert "source" not in json.loads((tmp_path / "cache" / "meta.json").read_text())


def test_lfdm_split_holds_out_subjects_6_8_4_7(mhad_root, tmp_path):
    records = module(mhad_root, tmp_path, split="lfdm").list_records()
    by_subject = {int(r.video_id.split("_")[1][1:]): r.split for r in records}
    assert by_subject == {1: "train", 2: "train", 3: "train", 8: "test"}
    assert not (tmp_path / "cache" / "mhad_split.json").exists()
    assert MHADDataModule.video_groups("a27_s3_t1") == {"class": "27", "subject": "3"}
