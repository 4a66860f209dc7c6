"""The training loader refuses a DDP split that would hang: ranks with different numbers of batches.

litdata's WindowShuffle (what it uses on a parallel file system; ``LITDATA_POSIX_FAST=1`` forces it on a
local disk) deals whole chunks to the workers. With few chunks a rank can get fewer batches than the others,
and DDP then waits forever in a collective. The ranks are simulated by litdata's own distributed
environment object: the split is computed from it alone, as each real rank computes it.
"""

from __future__ import annotations

import pytest

from tests.data.test_resume_order import _pack_tiny_shards

pytest.importorskip("litdata", reason="the stream extra (litdata) is not installed")

from litdata.utilities.env import _DistributedEnv  # noqa: E402

from s2dm_lightning.data.streaming import StreamingVideoDataModule  # noqa: E402


def _datamodule(shards, world_size: int, monkeypatch, posix_fast: str, num_workers: int = 0) -> StreamingVideoDataModule:
    """Rank 0 of ``world_size`` as litdata sees it (its ``detect``, which reads torch.distributed, answers
    for a process group that is not there); litdata then sets ``drop_last`` itself, as under DDP."""
    monkeypatch.setenv("LITDATA_POSIX_FAST", posix_fast)
    monkeypatch.setattr(_DistributedEnv, "detect", classmethod(lambda cls: cls(world_size, 0, 1)))
    streaming = StreamingVideoDataModule(str(shards), batch_size=2, num_workers=num_workers)
    streaming.setup("fit")
    assert streaming._datasets["train"].drop_last
    return streaming


def test_window_shuffle_split_with_a_rank_short_of_batches_is_refused(tmp_path, monkeypatch):
    # 18 clips in 6 chunks of 3, 4 ranks x 2 workers, batch 2: WindowShuffle gives ranks 0-2 two batches
    # each and rank 3 none (measured with litdata 0.2.76); ranks 0-2 would wait for rank 3 forever
    shards = _pack_tiny_shards(tmp_path, clips_per_video=3, chunk_bytes=12_100)
    streaming = _datamodule(shards, 4, monkeypatch, "1", num_workers=2)
    with pytest.raises(RuntimeError) as error:
        streaming.train_dataloader()
    message = str(error.value)
    assert "LITDATA_POSIX_FAST=0" in message and f"input_dir={str(shards)!r}" in message, message
    assert "WindowShuffle" in message and "[2, 2, 2, 0] for 4 ranks x 2 workers" in message, message


def test_a_split_that_leaves_every_rank_without_a_batch_is_refused(shard_set, monkeypatch):
    # 10 one-clip chunks over 6 ranks: WindowShuffle cuts every worker to nothing; the epoch would be empty
    shards = shard_set
    streaming = _datamodule(shards, 6, monkeypatch, "1")
    with pytest.raises(RuntimeError, match=r"no rank gets a full batch .*LITDATA_POSIX_FAST=0"):
        streaming.train_dataloader()


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_the_same_shards_split_by_full_shuffle_are_accepted(shard_set, monkeypatch, world_size):
    """FullShuffle (a local disk, an object store) gives every rank the same number of batches."""
    shards = shard_set
    streaming = _datamodule(shards, world_size, monkeypatch, "0")
    loader = streaming.train_dataloader()
    assert type(streaming._datasets["train"].shuffler).__name__ == "FullShuffle"
    assert loader is not None
