"""Data pipeline timings: synthetic generation, flow preprocessing per DIS preset, clip loading.

    python benchmarks/bench_data.py [--videos 24] [--workers 0]

Also reports the flow error against the synthetic data's true motion (pixels at the
stored resolution): on the shape (pixels it fully covers in frame i) and on the static
background (pixels it covers in neither frame 0 nor frame i).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from s2dm_lightning.data import FlowCache, FlowSettings, preprocess_flows, read_metadata
from s2dm_lightning.flow_format import grid_to_displacement
from s2dm_lightning.synthetic import SyntheticDataModule
from s2dm_lightning.synthetic.shapes import MOTIONS, coverage
from s2dm_lightning.synthetic.world import generate_synthetic_dataset


def true_motion(
    root: Path, video_id: str, seed: int, frames: int, size: int
) -> tuple[np.ndarray, float, str]:
    """(direction, step in px per frame, shape) of a synthetic video, replaying its generator."""
    rows = {r["video_id"]: r for r in csv.DictReader(open(root / "metadata.csv"))}
    row = rows[video_id]
    rng = np.random.default_rng([seed, int(video_id.split("_")[1])])
    rng.uniform(10, 70, size=3), rng.uniform(10, 70, size=3), rng.uniform(0, 2 * np.pi)  # background draws
    travel = rng.uniform(0.30, 0.35) * size
    return np.array(MOTIONS[row["motion"]]), travel / (frames - 1), row["shape"]


def flow_errors(root: Path, cache: FlowCache, seed: int, frames: int, size: int) -> tuple[float, float]:
    shape_errors, background_errors = [], []
    for record in read_metadata(root / "metadata.csv"):
        direction, step, shape = true_motion(root, record.video_id, seed, frames, size)
        displacement = grid_to_displacement(cache.load(record.video_id))[:, :2] * (size - 1) / 2
        masks = [coverage(shape, *(size / 2 + direction * step * i), size / 8, size) for i in range(frames)]
        for i in range(1, frames):
            on_shape = torch.from_numpy(masks[i] == 1)
            still = torch.from_numpy((masks[i] == 0) & (masks[0] == 0))
            expected = torch.tensor(-direction * step * i, dtype=torch.float32)[:, None]
            shape_errors.append((displacement[i][:, on_shape] - expected).norm(dim=0).mean().item())
            background_errors.append(displacement[i][:, still].norm(dim=0).mean().item())
    return float(np.mean(shape_errors)), float(np.mean(background_errors))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        start = time.perf_counter()
        generate_synthetic_dataset(root, args.videos, args.frames, args.size)
        print(f"generate {args.videos} videos x {args.frames} frames: {time.perf_counter() - start:.2f} s")
        records = read_metadata(root / "metadata.csv")
        for preset in ("ultrafast", "fast", "medium"):
            cache = FlowCache(
                Path(tmp) / f"cache_{preset}", FlowSettings(dis_preset=preset, flow_size=args.size)
            )
            start = time.perf_counter()
            summary = preprocess_flows(records, cache, num_workers=args.workers, progress=False)
            seconds = time.perf_counter() - start
            shape_error, background_error = flow_errors(root, cache, 0, args.frames, args.size)
            print(
                f"flows dis {preset:9s}: {seconds / max(summary.done, 1) * 1000:6.1f} ms/video, "
                f"error on shape {shape_error:.2f} px, on background {background_error:.2f} px"
            )
        module = SyntheticDataModule(
            root=str(root),
            num_videos=args.videos,
            frames_per_video=args.frames,
            image_size=args.size,
            cache_dir=str(Path(tmp) / "cache_medium"),
            batch_size=8,
        )
        module.setup("fit")
        start, count = time.perf_counter(), 0
        for batch in module.train_dataloader():
            count += batch["frames"].shape[0]
        print(f"train clips (16 frames): {count / (time.perf_counter() - start):.1f} videos/s, num_workers=0")


if __name__ == "__main__":
    main()
