"""Clips per second into training: the file-based datamodule vs local shards vs a local S3 server (issue #28).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/bench_streaming.py [--videos 41] [--epochs 3]

The same clips on every side: a synthetic world (``--videos`` videos of 32 frames, ``--resolution`` px, the
paper's MUG setting by default: 16 frames at 128 px, flows at the 16 x 16 latent size) is generated and its
flows preprocessed once; then

- **files**: ``SyntheticDataModule`` reading that folder (PNG frames decoded and resized per clip, the flow
  cache's files), one random clip of every training video an epoch;
- **shards**: the same training videos packed by ``pack_split`` (``python -m s2dm_lightning pack``), one clip
  a video, read by ``StreamingVideoDataModule`` from the local folder;
- **s3**: that shard set uploaded to moto's S3 server (tests/data/s3_server.py, the server the S3 tests use)
  on 127.0.0.1 and streamed with litdata's S3 client into an empty cache folder. The server is a thread of
  this process, so with 0 workers it shares the loading process's interpreter (a real object store does not).

Each side runs with 0 and 2 loader workers, ``--epochs`` epochs of one loader (as Lightning iterates it),
batches of ``--batch_size``. Reported: clips/s of the first epoch (workers starting; for s3 every chunk comes
over HTTP) and of the later ones (for s3 from litdata's local cache: a dataset larger than the cache would
stay at the first-epoch rate), the ratio to files with 0 workers measured in the same run, and the peak
resident set of a loader worker (VmHWM of the worker processes, sampled every batch; it counts the pages
shared with the parent after fork) and the most a worker held on its own (USS). ``--threads`` torch threads
(default 1). Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch

from s2dm_lightning.data.shards import pack_split
from s2dm_lightning.data.streaming import StreamingVideoDataModule
from s2dm_lightning.synthetic import SyntheticDataModule

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "bench_streaming.json"
if str(REPO) not in sys.path:  # tests/data/s3_server.py: the S3 tests' server
    sys.path.insert(0, str(REPO))


class WorkerMemory:
    """The largest VmHWM and USS seen among this process's loader workers (its child processes)."""

    def __init__(self) -> None:
        self.peak_rss = self.peak_uss = 0

    def sample(self) -> None:
        me = psutil.Process()
        for child in me.children(recursive=True):
            try:
                if child.cmdline() != me.cmdline():
                    continue  # not a forked loader worker (multiprocessing's resource tracker)
                status = Path(f"/proc/{child.pid}/status").read_text()
                hwm = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM"))
                self.peak_rss = max(self.peak_rss, hwm)
                self.peak_uss = max(self.peak_uss, child.memory_full_info().uss)
            except (psutil.Error, OSError, StopIteration):
                continue  # a worker that just ended


def epochs_of(loader, epochs: int) -> tuple[list[float], list[int], WorkerMemory]:
    """Seconds and clips of each epoch of one loader, and the workers' memory."""
    memory, seconds, clips = WorkerMemory(), [], []
    for _ in range(epochs):
        start, count = time.perf_counter(), 0
        for batch in loader:
            count += len(batch["frames"])
            memory.sample()
        seconds.append(time.perf_counter() - start)
        clips.append(count)
    return seconds, clips, memory


def data_args(args: argparse.Namespace, workers: int) -> dict:
    return dict(num_videos=args.videos, frames_per_video=32, image_size=args.resolution, resolution=args.resolution,
                flow_size=args.flow_size, num_frames=args.frames, batch_size=args.batch_size, num_workers=workers,
                val_videos=1, dis_preset="ultrafast")


def run(args: argparse.Namespace, tmp: Path) -> list[dict]:
    root = tmp / "synthetic"
    SyntheticDataModule(root=str(root), **data_args(args, 0)).preprocess(progress=False)
    packing = SyntheticDataModule(root=str(root), **data_args(args, 0))
    packing.setup("fit")
    shards = tmp / "shards"
    for split in ("train", "val"):  # val too: the datamodule looks for it (over S3 a missing one is an error)
        pack_split(packing, split, shards, clips_per_video=1, chunk_bytes=args.chunk_bytes)
    chunks = len(list((shards / "train").glob("chunk-*.bin")))
    print(f"{len(packing.datasets['train'])} training clips, {chunks} chunks of <= {args.chunk_bytes}", flush=True)

    def files(workers: int):
        datamodule = SyntheticDataModule(root=str(root), **data_args(args, workers))
        datamodule.setup("fit")
        return datamodule.train_dataloader()

    def streaming(input_dir: str, workers: int, cache: Path | None = None, storage_options: dict | None = None):
        datamodule = StreamingVideoDataModule(input_dir, batch_size=args.batch_size, num_workers=workers,
                                              cache_dir=str(cache) if cache else None,
                                              storage_options=storage_options)
        datamodule.setup("fit")
        return datamodule.train_dataloader()

    rows = []

    def measure(source: str, workers: int, make_loader) -> None:
        seconds, clips, memory = epochs_of(make_loader(), args.epochs)
        later = sum(clips[1:]) / sum(seconds[1:]) if len(seconds) > 1 else float("nan")
        row = dict(source=source, workers=workers, clips_per_epoch=clips[0], first_epoch=clips[0] / seconds[0],
                   later_epochs=later, worker_peak_rss=memory.peak_rss, worker_peak_uss=memory.peak_uss)
        rows.append(row)
        print(json.dumps(row), flush=True)

    for workers in args.workers:
        measure("files", workers, lambda w=workers: files(w))
        measure("shards", workers, lambda w=workers: streaming(str(shards), w))

    from tests.data.s3_server import BUCKET, S3ServerUnavailable, local_s3_server, upload

    try:
        with local_s3_server() as (url, environment):
            os.environ.update(environment)
            upload(shards, url, "bench")
            for workers in args.workers:
                cache = tmp / f"s3_cache_{workers}"  # empty: the first epoch downloads every chunk
                measure("s3", workers, lambda w=workers, c=cache: streaming(f"s3://{BUCKET}/bench", w, c,
                                                                             {"endpoint_url": url}))
    except S3ServerUnavailable as error:
        print(f"s3 rows skipped: {error}", flush=True)
    return rows


def table(rows: list[dict], args: argparse.Namespace) -> str:
    base = next(r for r in rows if r["source"] == "files" and r["workers"] == min(args.workers))
    lines = ["| source | workers | clips/s, epoch 1 | clips/s, epochs 2+ | vs files, 0 workers (epochs 2+) "
             "| worker peak RSS (USS) |", "|---|---|---|---|---|---|"]
    for r in rows:
        memory = (f"{r['worker_peak_rss'] / 2**20:.0f} MiB ({r['worker_peak_uss'] / 2**20:.0f} MiB)"
                  if r["workers"] else "(no worker)")
        lines.append(f"| {r['source']} | {r['workers']} | {r['first_epoch']:.1f} | {r['later_epochs']:.1f} | "
                     f"{r['later_epochs'] / base['later_epochs']:.2f} | {memory} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=41, help="synthetic videos (1 held out for validation, not read)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--flow_size", type=int, default=16)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--chunk_bytes", default="4MB", help="shard chunk size (several chunks: workers split them)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(args, Path(tmp))
    print(table(rows, args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
