"""Flow preprocessing throughput on a generated MUG- or UTD-MHAD-sized tree, and data-loader
throughput against what a training step consumes.

    python benchmarks/bench_preprocess.py [--dataset mug|mhad] [--videos 6] [--frames 48] [--workers 2]

1. Writes ``--videos`` videos in the dataset's real layout and size (MUG: folders of
   896 x 896 JPEG frames; UTD-MHAD: 640 x 480 MJPG .avi files) -- a texture panning over
   the frame, so the flow estimator has real work -- and times
   ``python -m s2dm_lightning preprocess``'s code path on it (videos/s, with the estimated
   time for the whole dataset: 1,009 MUG / 861 UTD-MHAD videos).
2. Times the training DataLoader of that datamodule at the paper's 128 x 128, 16 frames,
   4 videos a batch (clips/s), and one training step of a model --
   ``model.diffusion_loss(batch, model.noise_generator).backward()`` for the model of
   ``--step-config`` (default configs/synthetic.yaml, the built-in default) on a batch of
   its config's shapes -- and prints loader clips/s : step clips/s. Above 1 the loader
   keeps up with training; below 1 training waits for data.

Not a test: numbers depend on the machine and its load; compare them only within one run.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from s2dm_lightning.cli import S2DMCLI
from s2dm_lightning.data import MHADDataModule, MUGDataModule
from s2dm_lightning.flow_format import identity_condition

FULL_SIZE = {"mug": 1009, "mhad": 861}
FRAME_SIZE = {"mug": (896, 896), "mhad": (480, 640)}  # (height, width)


def panning_frames(num_frames: int, height: int, width: int, seed: int, step: int = 3) -> np.ndarray:
    """uint8 RGB (F, H, W, 3): a window panning over a smooth random colour texture."""
    rng = np.random.default_rng(seed)
    big_h, big_w = height + step * num_frames, width + step * num_frames
    noise = rng.uniform(0, 255, size=(big_h // 4, big_w // 4, 3)).astype(np.float32)
    texture = cv2.resize(cv2.GaussianBlur(noise, (0, 0), 1.5), (big_w, big_h), interpolation=cv2.INTER_CUBIC)
    texture = np.clip(texture, 0, 255).astype(np.uint8)
    return np.stack([texture[step * i : step * i + height, step * i : step * i + width] for i in range(num_frames)])


def write_mug(root: Path, videos: int, frames: int) -> None:
    height, width = FRAME_SIZE["mug"]
    for n in range(videos):
        subject, expression = f"{n // 2 + 1:03d}", ("anger", "fear")[n % 2]
        take = root / "subjects3" / subject / expression / "take000"
        take.mkdir(parents=True)
        for i, frame in enumerate(panning_frames(frames, height, width, seed=n)):
            cv2.imwrite(str(take / f"img_{i:04d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def write_mhad(root: Path, videos: int, frames: int) -> None:
    height, width = FRAME_SIZE["mhad"]
    root.mkdir(parents=True)
    for n in range(videos):
        path = root / f"a{n % 2 + 1}_s{n // 2 + 1}_t1_color.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (width, height))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write '{path}'")
        for frame in panning_frames(frames, height, width, seed=n):
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()


def loader_throughput(module, batches: int) -> float:
    """Training clips per second over ``batches`` batches (after the first, which starts the workers)."""
    module.setup("fit")
    loader = module.train_dataloader()
    seen, start = 0, None
    while seen < batches:
        for batch in loader:
            if start is None:
                start, count = time.perf_counter(), 0
                continue
            count += batch["frames"].shape[0]
            seen += 1
            if seen >= batches:
                break
    return count / (time.perf_counter() - start)


def step_throughput(config: str, steps: int) -> tuple[float, str]:
    """Clips per second one training step (loss + backward) of ``config``'s model consumes."""
    argv, sys.argv = sys.argv, sys.argv[:1]  # this script's own flags are not the CLI's
    try:
        cli = S2DMCLI(args=["--config", config, "--trainer.logger=false"], run=False)
    finally:
        sys.argv = argv
    model, data = cli.model, cli.datamodule
    model.train()
    size, frames, batch_size = data.resolution, data.num_frames, data.batch_size
    flow_size = model.flow_conditioner.flow_size
    batch = {
        "frames": torch.rand(batch_size, frames, 3, size, size) * 2 - 1,
        "flow": identity_condition(flow_size, flow_size).expand(batch_size, frames, 3, flow_size, flow_size).clone(),
        "caption": ["a red square moves left"] * batch_size,
    }
    times = []
    for _ in range(steps + 1):  # the first step warms up (text cache, allocator)
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        model.diffusion_loss(batch, model.noise_generator).backward()
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times[1:]))
    return batch_size / seconds, f"{config}: {batch_size} clips of {frames} x {size}px, {seconds:.3f} s/step"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("mug", "mhad"), default="mug")
    parser.add_argument("--videos", type=int, default=6, help="videos to generate")
    parser.add_argument("--frames", type=int, default=48, help="frames per generated video")
    parser.add_argument("--workers", type=int, default=2, help="preprocessing and DataLoader worker processes")
    parser.add_argument("--dis-preset", default="medium", choices=("ultrafast", "fast", "medium"))
    parser.add_argument("--loader-batches", type=int, default=8)
    parser.add_argument("--step-config", default="configs/synthetic.yaml")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / args.dataset
        start = time.perf_counter()
        (write_mug if args.dataset == "mug" else write_mhad)(root, args.videos, args.frames)
        height, width = FRAME_SIZE[args.dataset]
        print(f"generated {args.videos} {args.dataset} videos x {args.frames} frames of {width}x{height} "
              f"in {time.perf_counter() - start:.1f} s")

        kind = MUGDataModule if args.dataset == "mug" else MHADDataModule
        module = kind(root=str(root), dis_preset=args.dis_preset, preprocess_workers=args.workers,
                      num_workers=args.workers, val_videos=1)
        start = time.perf_counter()
        summary = module.preprocess(progress=False)
        seconds = time.perf_counter() - start
        rate = summary.done / seconds
        full = FULL_SIZE[args.dataset]
        print(f"preprocess ({args.workers} workers, DIS {args.dis_preset}, flow_size "
              f"{module.flow_settings.flow_size}): {rate:.2f} videos/s, {seconds / max(summary.done, 1):.1f} s/video "
              f"of {args.frames} frames ({1000 * seconds / max(summary.done * args.frames, 1):.0f} ms/frame); "
              f"the full dataset ({full} videos of this length): ~{full / rate / 60:.0f} min")

        loader_rate = loader_throughput(module, args.loader_batches)
        print(f"data loader ({args.workers} workers, {module.batch_size} clips of {module.num_frames} x "
              f"{module.resolution}px a batch): {loader_rate:.1f} clips/s")

    step_rate, what = step_throughput(args.step_config, args.steps)
    print(f"training step ({what}): consumes {step_rate:.1f} clips/s")
    ratio = loader_rate / step_rate
    verdict = "the loader keeps up" if ratio >= 1 else f"training would wait for data ({math.ceil(1 / ratio)}x)"
    print(f"loader : training = {ratio:.2f} ({verdict})")


if __name__ == "__main__":
    main()
