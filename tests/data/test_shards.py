"""s2dm_lightning/data/shards.py and streaming.py: packed clips, read back through StreamingVideoDataModule."""

from __future__ import annotations

import json

import pytest
import torch

from tests.data.shard_fixtures import CLIPS_PER_VIDEO, pack, packed_datamodule

pytest.importorskip("litdata", reason="the stream extra (litdata) is not installed")

from s2dm_lightning.data.streaming import StreamingVideoDataModule  # noqa: E402


def _epoch_clip_ids(datamodule: StreamingVideoDataModule) -> list[str]:
    return [clip for batch in datamodule.train_dataloader() for clip in batch["clip_id"]]


def test_packing_twice_gives_the_same_chunk_bytes(synthetic_root, shard_set, tmp_path):
    again = pack(synthetic_root, tmp_path / "again")
    for split in ("train", "val"):
        chunks = sorted(p.name for p in (shard_set / split).glob("chunk-*.bin"))
        assert chunks and chunks == sorted(p.name for p in (again / split).glob("chunk-*.bin"))
        for name in chunks:  # every byte of every chunk file
            assert (shard_set / split / name).read_bytes() == (again / split / name).read_bytes(), name
        first, second = (json.loads((folder / split / "index.json").read_text()) for folder in (shard_set, again))
        first.pop("updated_at", None), second.pop("updated_at", None)  # litdata's write time, the only difference
        assert first == second
    assert len(list((shard_set / "train").glob("chunk-*.bin"))) > 2  # several chunks to shuffle across


def test_streamed_clips_are_the_file_based_clips(synthetic_root, shard_set):
    files = packed_datamodule(synthetic_root)
    streaming = StreamingVideoDataModule(str(shard_set), batch_size=1, shuffle=False)
    streaming.setup("fit")
    assert (streaming.resolution, streaming.num_frames, streaming.frame_geometry) == (
        files.resolution, files.num_frames, files.frame_geometry)
    assert streaming.flow_settings == files.flow_settings and streaming.captions() == files.captions()
    val = files.datasets["val"]
    streamed = list(streaming.val_dataloader())
    assert len(streamed) == len(val)
    by_id = {val[i]["video_id"]: val[i] for i in range(len(val))}
    for batch in streamed:  # evaluation sampling: the same frames, the same flows, to the bit
        expected = by_id[batch["video_id"][0]]
        assert torch.equal(batch["frames"][0], expected["frames"])
        assert torch.equal(batch["flow"][0], expected["flow"])
        assert torch.equal(batch["frame_indices"][0], expected["frame_indices"])
        assert batch["caption"][0] == expected["caption"]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_an_epoch_reads_every_training_clip_once_shuffled(synthetic_root, shard_set, num_workers):
    train_videos = [r.video_id for r in packed_datamodule(synthetic_root).datasets["train"].records]
    expected = sorted(f"{video}/{clip}" for video in train_videos for clip in range(CLIPS_PER_VIDEO))
    epochs = []
    for seed in (0, 1):
        streaming = StreamingVideoDataModule(str(shard_set), batch_size=2, num_workers=num_workers, seed=seed)
        streaming.setup("fit")
        epochs.append(_epoch_clip_ids(streaming))
        assert sorted(epochs[-1]) == expected
    assert epochs[0] != epochs[1] and epochs[0] != expected  # shuffled, differently per seed


def test_a_shard_set_made_otherwise_is_refused_naming_the_key(shard_set, tmp_path):
    with pytest.raises(ValueError, match=r"data.init_args.flow_size=8, but the shard set .* flow_size=4"):
        StreamingVideoDataModule(str(shard_set), flow_size=8).setup("fit")
    with pytest.raises(FileNotFoundError, match="no shard set at"):
        StreamingVideoDataModule(str(tmp_path / "nothing")).setup("fit")
    unfinished = tmp_path / "unfinished" / "train"
    unfinished.mkdir(parents=True)
    index = json.loads((shard_set / "train" / "index.json").read_text())
    index.pop("s2dm")
    (unfinished / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="no 's2dm' section: not written by .* or packing was interrupted"):
        StreamingVideoDataModule(str(unfinished.parent)).setup("fit")


def test_packing_leaves_the_process_start_method_as_it_was(synthetic_root, tmp_path):
    """litdata.optimize forces "spawn" process-wide; loaders started after a pack in the same process (a test
    session, a benchmark) must still fork their workers."""
    import multiprocessing

    before = multiprocessing.get_start_method(allow_none=True)
    pack(synthetic_root, tmp_path / "set")
    assert multiprocessing.get_start_method(allow_none=True) == before
