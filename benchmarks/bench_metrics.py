"""Benchmark of the metric pieces on this machine (not a test; nothing is downloaded).

Prints I3D feature-extraction throughput (random weights, uint8 videos preprocessed to 224 x 224)
and the time of the Fréchet distance for d-dimensional features.

Example:
    python benchmarks/bench_metrics.py --videos 4 --frames 16 --fd-samples 2048 --fd-dim 400
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from s2dm_lightning.metrics import I3DFeatureExtractor, InceptionI3d, frechet_distance, mean_cov_from_sums  # noqa: E402


def bench_i3d(videos: int, frames: int, size: int, batch_size: int, repeats: int) -> float:
    """Return videos/s of preprocessing + I3D on random uint8 videos (after one warm-up batch).

    Args:
        videos: videos per timed pass.
        frames: frames per video (>= 9).
        size: input height and width before the resize to 224.
        batch_size: videos per network call.
        repeats: timed passes.
    """
    extractor = I3DFeatureExtractor(InceptionI3d(), chunk_size=batch_size)
    data = torch.randint(0, 256, (videos, frames, size, size, 3), dtype=torch.uint8)
    extractor(data[:1])  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        feats = extractor(data)
    elapsed = time.perf_counter() - start
    assert feats.shape == (videos, 400)
    return videos * repeats / elapsed


def bench_frechet(samples: int, dim: int, repeats: int) -> tuple[float, float]:
    """Return (seconds for the statistics from streaming sums, seconds for the distance itself).

    Args:
        samples: feature vectors per side.
        dim: feature width.
        repeats: timed repetitions (the mean is reported).
    """
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(samples, dim, generator=gen, dtype=torch.float64)
    fake = torch.randn(samples, dim, generator=gen, dtype=torch.float64) + 0.1
    t0 = time.perf_counter()
    for _ in range(repeats):
        stats = [mean_cov_from_sums(x.sum(0), x.T @ x, samples) for x in (real, fake)]
    t1 = time.perf_counter()
    for _ in range(repeats):
        frechet_distance(*stats[0], *stats[1])
    t2 = time.perf_counter()
    return (t1 - t0) / repeats, (t2 - t1) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=4, help="videos per timed I3D pass")
    parser.add_argument("--frames", type=int, default=16, help="frames per video (>= 9)")
    parser.add_argument("--size", type=int, default=128, help="video height/width before the resize to 224")
    parser.add_argument("--batch-size", type=int, default=2, help="videos per I3D call")
    parser.add_argument("--i3d-repeats", type=int, default=1, help="timed I3D passes")
    parser.add_argument(
        "--fd-samples", type=int, default=2048, help="features per side for the Fréchet distance"
    )
    parser.add_argument("--fd-dim", type=int, default=400, help="feature width")
    parser.add_argument("--fd-repeats", type=int, default=3, help="timed Fréchet computations")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--skip-i3d", action="store_true", help="only time the Fréchet distance")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    if not args.skip_i3d:
        rate = bench_i3d(args.videos, args.frames, args.size, args.batch_size, args.i3d_repeats)
        print(
            f"I3D features: {rate:.2f} videos/s ({args.videos} videos x {args.frames} frames, "
            f"{args.size}px -> 224px, batch {args.batch_size}, random weights)"
        )
    stats_s, fd_s = bench_frechet(args.fd_samples, args.fd_dim, args.fd_repeats)
    print(
        f"Fréchet distance, {args.fd_samples} x {args.fd_dim}-d per side: statistics {stats_s * 1e3:.1f} ms, "
        f"distance (float64 eigh) {fd_s * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
