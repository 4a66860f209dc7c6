"""Flow preprocessing speed against its floor and the code before issue #19, on generated
MUG- and UTD-MHAD-sized trees; optionally data-loader throughput against a training step.

    python benchmarks/bench_preprocess.py [--dataset mug mhad] [--videos 4] [--frames 48] [--repeats 3]
    python benchmarks/bench_preprocess.py --loader   # also the data-loader part (below)

1. Writes ``--videos`` videos per dataset in its real layout and size (MUG: folders of 896 x 896
   JPEG frames; UTD-MHAD: 640 x 480 MJPG .avi files, LFDM crop) -- a texture panning over the
   frame, so the flow estimator has real work.
2. In ONE process, one OpenCV thread, alternating the three sides video by video (median of
   ``--repeats`` passes), per frame:
   - *ours*: what ``preprocess`` runs per video, by stage: decode (+ crop) and resize
     (``read_gray_video``; resize timed alone on the floor's decoded frames and subtracted),
     flow (``estimate_gray_sequence``), write (``FlowCache.save``);
   - *floor*: OpenCV alone, decoding at the needed size (JPEG: gray at the same libjpeg
     reduction; video: ``VideoCapture`` + gray) and two plain DIS calls per frame with the same
     preset, on frames resized beforehand (untimed);
   - *before*: a faithful copy of the per-video path before issue #19
     (``benchmarks/preprocess_before.py``: full-size RGB decode, then gray + resize, per-pair
     set-up) plus the same write.
   It prints ours / floor and before / ours, and how far the new flows are from the old ones:
   end-point error (px at the stored ``flow_size`` and at estimation size) and occlusion
   agreement, over every frame pair of the generated videos.
3. Times ``python -m s2dm_lightning preprocess``'s code path end to end (``--workers``
   processes) and extrapolates to the whole dataset (1,009 MUG / 861 UTD-MHAD videos).
4. With ``--loader``: the training DataLoader of that datamodule at the paper's 128 x 128,
   16 frames, 4 videos a batch (clips/s), against one training step of the model of
   ``--step-config`` (default configs/synthetic.yaml) -- above 1 the loader keeps up.

Not a test: numbers depend on the machine and its load (printed); compare them only within one run.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from s2dm_lightning.cli import S2DMCLI
from s2dm_lightning.data import MHADDataModule, MUGDataModule
from s2dm_lightning.data.flow import DIS_PRESETS, FlowSettings, estimate_gray_sequence, estimation_shape
from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.data.video_io import (
    JPEG_REDUCTIONS,
    crop_box,
    jpeg_reduction,
    list_frame_files,
    read_gray_video,
    resize_gray,
)
from s2dm_lightning.flow_format import identity_condition

sys.path.insert(0, str(Path(__file__).resolve().parent))
import preprocess_before  # noqa: E402  (the baseline, benchmark only)

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


def floor_decode(path: Path, crop, settings: FlowSettings) -> tuple[list[np.ndarray], tuple[int, int]]:
    """OpenCV alone: gray frames decoded at the needed size (cropped, not resized) and the estimation size."""
    if path.is_dir():
        files = list_frame_files(path)
        height, width = cv2.imread(str(files[0]), cv2.IMREAD_GRAYSCALE).shape  # untimed in effect: once a video
        shape_for = functools.partial(estimation_shape, settings=settings)
        reduction, target = jpeg_reduction(height, width, crop, shape_for)
        frames = [cv2.imread(str(f), JPEG_REDUCTIONS[reduction]) for f in files]
    else:
        capture = cv2.VideoCapture(str(path))
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        capture.release()
        target = None
    if crop is not None:
        top, bottom, left, right = crop_box(crop, *frames[0].shape)
        frames = [f[top:bottom, left:right] for f in frames]
    if target is None:
        target = estimation_shape(*frames[0].shape, settings)
    return frames, target


def time_sides(path: Path, crop, settings: FlowSettings, cache_dir: Path, order: int) -> dict[str, float]:
    """Seconds of each side and stage for one video; ``order`` rotates which side runs first."""
    out: dict[str, float] = {}
    ours_cache = FlowCache(cache_dir / "ours", settings)
    before_cache = FlowCache(cache_dir / "before", settings)

    def floor() -> None:
        start = time.perf_counter()
        frames, target = floor_decode(path, crop, settings)
        out["floor decode"] = time.perf_counter() - start
        resize_start = time.perf_counter()
        small = [resize_gray(f, target) for f in frames]
        out["resize alone"] = time.perf_counter() - resize_start
        preset = DIS_PRESETS[settings.dis_preset]
        start = time.perf_counter()
        for frame in small[1:]:
            cv2.DISOpticalFlow_create(preset).calc(frame, small[0], None)
            cv2.DISOpticalFlow_create(preset).calc(small[0], frame, None)
        out["floor flow"] = time.perf_counter() - start

    def ours() -> None:
        start = time.perf_counter()
        gray = read_gray_video(path, functools.partial(estimation_shape, settings=settings), crop)
        out["read"] = time.perf_counter() - start
        start = time.perf_counter()
        flow = estimate_gray_sequence(gray, settings)
        out["flow"] = time.perf_counter() - start
        start = time.perf_counter()
        ours_cache.save(path.name, flow)
        out["write"] = time.perf_counter() - start
        out["frames"] = len(gray)

    def before() -> None:
        start = time.perf_counter()
        before_cache.save(path.name, preprocess_before.compute(path, settings, crop))
        out["before"] = time.perf_counter() - start

    sides = [floor, ours, before]
    for side in sides[order % 3 :] + sides[: order % 3]:
        side()
    return out


def flow_change(videos: list[Path], settings: FlowSettings, cache_dir: Path, estimation_width: int) -> dict:
    """EPE (px at flow_size and at estimation size) and occlusion agreement, new vs before, frames 1.."""
    ours, before = FlowCache(cache_dir / "ours", settings), FlowCache(cache_dir / "before", settings)
    size = settings.flow_size
    epe, occ_abs, occ_agree = [], [], []
    for path in videos:
        new, old = ours.load(path.name)[1:], before.load(path.name)[1:]
        # cache round trip is float16 on both sides; grid units -> pixels at flow_size (align_corners=True)
        diff = (new[:, :2] - old[:, :2]) * (size - 1) / 2
        epe.append(diff.norm(dim=1).flatten())
        occ_abs.append((new[:, 2] - old[:, 2]).abs().flatten())
        occ_agree.append(((new[:, 2] > 0.5) == (old[:, 2] > 0.5)).float().flatten())
        motion = (old[:, :2] - identity_condition(size, size)[:2]) * (size - 1) / 2
    epe_all = torch.cat(epe)
    return {
        "epe": float(epe_all.mean()), "epe_max": float(epe_all.max()),
        "epe_estimation": float(epe_all.mean()) * estimation_width / size,
        "occ_abs": float(torch.cat(occ_abs).mean()), "occ_agree": float(torch.cat(occ_agree).mean()),
        "motion": float(motion.norm(dim=1).mean()),
    }


def bench_dataset(name: str, args, tmp: Path) -> None:
    root = tmp / name
    start = time.perf_counter()
    (write_mug if name == "mug" else write_mhad)(root, args.videos, args.frames)
    height, width = FRAME_SIZE[name]
    print(f"\n## {name}: {args.videos} videos x {args.frames} frames of {width}x{height} "
          f"(generated in {time.perf_counter() - start:.1f} s)")
    kind = MUGDataModule if name == "mug" else MHADDataModule
    module = kind(root=str(root), dis_preset=args.dis_preset, preprocess_workers=args.workers,
                  num_workers=args.workers, val_videos=1, cache_dir=str(tmp / f"{name}_cache"))
    records = module.records()
    settings = module.flow_settings
    crop = records[0].crop
    totals: list[dict[str, float]] = []
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    for repeat in range(args.repeats):
        run: dict[str, float] = {}
        for n, record in enumerate(records):
            for key, value in time_sides(Path(record.path), crop, settings, tmp / f"{name}_sides", repeat + n).items():
                run[key] = run.get(key, 0.0) + value
        totals.append(run)
    frames = totals[0]["frames"]
    per = {key: 1000 * float(np.median([t[key] for t in totals])) / frames for key in totals[0] if key != "frames"}
    decode = per["read"] - per["resize alone"]
    ours = per["read"] + per["flow"] + per["write"]
    floor = per["floor decode"] + per["floor flow"]
    gray_shape = estimation_shape(*floor_decode(Path(records[0].path), crop, settings)[0][0].shape, settings)
    print(f"one process, one thread, median of {args.repeats} passes, ms per frame (DIS {settings.dis_preset}, "
          f"estimation {gray_shape[1]}x{gray_shape[0]}, flow_size {settings.flow_size}):\n")
    print("| side | decode | resize | flow | write | total | ratio |\n|---|---|---|---|---|---|---|")
    print(f"| floor (OpenCV alone) | {per['floor decode']:.2f} | - | {per['floor flow']:.2f} | - | {floor:.2f} | 1 |")
    print(f"| ours | {decode:.2f} | {per['resize alone']:.2f} | {per['flow']:.2f} | {per['write']:.3f} | {ours:.2f} "
          f"| **{ours / floor:.2f}** x floor |")
    print(f"| before | | | | | {per['before']:.2f} | {per['before'] / floor:.2f} x floor; "
          f"before / ours **{per['before'] / ours:.2f}** |")
    change = flow_change([Path(r.path) for r in records], settings, tmp / f"{name}_sides", gray_shape[1])
    print(f"\nnew vs before flows: EPE {change['epe']:.4f} px at {settings.flow_size} px "
          f"(~{change['epe_estimation']:.3f} px at estimation size; max {change['epe_max']:.3f} px at "
          f"{settings.flow_size}) for a mean motion of {change['motion']:.2f} px; occlusion mean |diff| "
          f"{change['occ_abs']:.4f}, visible/occluded (> 0.5) agree on {100 * change['occ_agree']:.2f}% of pixels")

    start = time.perf_counter()
    summary = module.preprocess(progress=False)
    seconds = time.perf_counter() - start
    rate = summary.done / seconds
    full = FULL_SIZE[name]
    print(f"\nend to end, `preprocess` with {args.workers} worker processes: {rate:.2f} videos/s, "
          f"{1000 * seconds / max(summary.done * args.frames, 1):.1f} ms/frame wall (in-process ours above: "
          f"{ours:.1f} ms/frame on one core); the full dataset ({full} videos of {args.frames} frames): "
          f"~{full / rate / 60:.1f} min")
    if args.loader:
        loader_rate = loader_throughput(module, args.loader_batches)
        print(f"data loader ({args.workers} workers, {module.batch_size} clips of {module.num_frames} x "
              f"{module.resolution}px a batch): {loader_rate:.1f} clips/s")
        step_rate, what = step_throughput(args.step_config, args.steps)
        print(f"training step ({what}): consumes {step_rate:.1f} clips/s")
        ratio = loader_rate / step_rate
        verdict = "the loader keeps up" if ratio >= 1 else f"training would wait for data ({math.ceil(1 / ratio)}x)"
        print(f"loader : training = {ratio:.2f} ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", nargs="+", choices=("mug", "mhad"), default=["mug", "mhad"])
    parser.add_argument("--videos", type=int, default=4, help="videos to generate per dataset")
    parser.add_argument("--frames", type=int, default=48, help="frames per generated video")
    parser.add_argument("--repeats", type=int, default=3, help="passes of the in-process comparison")
    parser.add_argument("--workers", type=int, default=2, help="preprocessing and DataLoader worker processes")
    parser.add_argument("--dis-preset", default="medium", choices=("ultrafast", "fast", "medium"))
    parser.add_argument("--loader", action="store_true", help="also time the data loader against a training step")
    parser.add_argument("--loader-batches", type=int, default=8)
    parser.add_argument("--step-config", default="configs/synthetic.yaml")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.dataset:
            bench_dataset(name, args, Path(tmp))
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
