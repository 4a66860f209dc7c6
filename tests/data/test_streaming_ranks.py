"""StreamingVideoDataModule over two DDP ranks (docs/streaming.md, "Shuffling, ranks, workers"): the real CLI,
``--trainer.strategy=ddp --trainer.devices=2`` on CPU (gloo), 2 loader workers a rank, 2 epochs, a clip count
that the ranks' batches do not divide. Every clip is read at most once an epoch over all ranks and workers;
the ones not read are exactly those litdata drops to give every rank the same number of batches.

The rule, from litdata 0.2.76's ``FullShuffle`` (the shuffle it uses for a local disk and an object store) and
``_associate_chunks_and_intervals_to_workers`` with ``drop_last`` (forced on when the world size is above 1):
the permuted chunks are cut into ``(N // B) // W`` batches of ``B`` clips for each of the ``W`` ranks (split over
its workers), and the ``N - W * B * ((N // B) // W)`` = ``N mod (W * B)`` clips left at the end are not read
that epoch, so fewer than ``W * B``.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml
from lightning.pytorch import Callback

from tests.data.test_resume_order import _pack_tiny_shards
from tests.test_resume import ENV, REPO, _fit_args, tiny_config

WORLD_SIZE = 2
BATCH_SIZE = 2
EPOCHS = 2
CLIPS_PER_VIDEO = 5  # 6 training videos x 5 = 30 clips: 30 mod (2 x 2) = 2 are dropped, 7 batches a rank
CHUNK_BYTES = 12_100  # 3 clips of ~4 KB a chunk: 10 chunks, some split between workers and ranks


class RankClipRecorder(Callback):
    """Test-only: appends ``epoch <e> batch <i> <clip id> ...`` for every training batch to
    ``<out_dir>/clips_rank<r>.txt`` (a file a rank: the ranks' lines on one shared stdout can interleave)."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        with open(self.out_dir / f"clips_rank{trainer.global_rank}.txt", "a") as record:
            record.write(f"epoch {trainer.current_epoch} batch {batch_idx} {' '.join(batch['clip_id'])}\n")


def _ddp_config(tmp_path: Path, shards: Path) -> Path:
    """test_resume's tiny model and trainer, 2 CPU ranks for 2 epochs from ``shards`` with 2 workers a rank."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tiny_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    callbacks = [c for c in config["trainer"]["callbacks"] if not c["class_path"].endswith("StepPacer")]
    callbacks.append({"class_path": "tests.data.test_streaming_ranks.RankClipRecorder",
                      "init_args": {"out_dir": str(tmp_path)}})
    config["trainer"].update(callbacks=callbacks, strategy="ddp", devices=WORLD_SIZE, accelerator="cpu",
                             max_steps=-1, max_epochs=EPOCHS)
    config["data"] = {"class_path": "s2dm_lightning.data.streaming.StreamingVideoDataModule",
                      "init_args": {"input_dir": str(shards), "batch_size": BATCH_SIZE, "num_workers": 2, "seed": 0}}
    path.write_text(yaml.safe_dump(config))
    return path


def _packed_clip_ids(shards: Path) -> list[str]:
    import litdata

    dataset = litdata.StreamingDataset(str(shards / "train"), shuffle=False)
    return [dataset[index]["clip_id"] for index in range(len(dataset))]


def _chunk_sizes(shards: Path) -> list[int]:
    return [chunk["chunk_size"] for chunk in json.loads((shards / "train" / "index.json").read_text())["chunks"]]


@pytest.mark.slow
def test_two_ranks_read_each_clip_at_most_once_an_epoch_and_drop_fewer_than_a_global_batch(tmp_path):
    from litdata.streaming.posix_fast import detect_posix_fast

    shards = _pack_tiny_shards(tmp_path, clips_per_video=CLIPS_PER_VIDEO, chunk_bytes=CHUNK_BYTES)
    profile = detect_posix_fast(str(shards / "train"))
    if profile is not None and profile.window_shuffle:  # a parallel file system: whole chunks a worker
        pytest.skip(f"litdata uses its WindowShuffle on this {profile.kind} mount; the rule tested is FullShuffle's")
    clips = _packed_clip_ids(shards)
    total = len(clips)
    assert len(set(clips)) == total == 30 and total % (WORLD_SIZE * BATCH_SIZE) != 0
    assert len(_chunk_sizes(shards)) > 2 * WORLD_SIZE and max(_chunk_sizes(shards)) > 1, _chunk_sizes(shards)

    done = subprocess.run(_fit_args(_ddp_config(tmp_path / "run", shards)), cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    seen: dict[int, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))  # epoch -> rank -> clip ids
    batches: Counter = Counter()  # (epoch, rank) -> batches
    for rank in range(WORLD_SIZE):
        for line in (tmp_path / "run" / f"clips_rank{rank}.txt").read_text().splitlines():
            match = re.fullmatch(r"epoch (\d+) batch (\d+) (.+)", line)
            assert match, f"rank {rank}: {line!r}"
            epoch, ids = int(match[1]), match[3].split()
            assert len(ids) == BATCH_SIZE, f"rank {rank}: a short batch: {line}"
            seen[epoch][rank] += ids
            batches[epoch, rank] += 1

    batches_per_rank = (total // BATCH_SIZE) // WORLD_SIZE  # litdata 0.2.76 with drop_last (module docstring)
    dropped = total - WORLD_SIZE * BATCH_SIZE * batches_per_rank
    assert dropped == total % (WORLD_SIZE * BATCH_SIZE) == 2
    assert sorted(seen) == list(range(EPOCHS)), done.stderr[-3000:]
    missing_by_epoch = []
    for epoch in range(EPOCHS):
        assert sorted(seen[epoch]) == list(range(WORLD_SIZE)), f"epoch {epoch}: batches from ranks {sorted(seen[epoch])}"
        counts = [batches[epoch, rank] for rank in range(WORLD_SIZE)]
        assert counts == [batches_per_rank] * WORLD_SIZE, \
            f"epoch {epoch}: batches by rank {counts}, not {batches_per_rank} on each (N // B // W)"
        read = [clip for rank in range(WORLD_SIZE) for clip in seen[epoch][rank]]
        twice = sorted(clip for clip, count in Counter(read).items() if count > 1)
        assert not twice, f"epoch {epoch}: clips read more than once over the ranks and workers: {twice}"
        assert set(read) <= set(clips), f"epoch {epoch}: clips not in the shard set: {set(read) - set(clips)}"
        missing = set(clips) - set(read)
        assert len(missing) == dropped < WORLD_SIZE * BATCH_SIZE, f"epoch {epoch}: not read: {sorted(missing)}"
        missing_by_epoch.append(sorted(missing))
    assert [seen[0][rank] for rank in range(WORLD_SIZE)] != [seen[1][rank] for rank in range(WORLD_SIZE)], \
        "the second epoch is shuffled anew"
    print(f"{total} clips in chunks of {_chunk_sizes(shards)}, {WORLD_SIZE} ranks x batch {BATCH_SIZE} x 2 workers: {batches_per_rank} batches a rank "
          f"an epoch; not read, by epoch: {missing_by_epoch}")
