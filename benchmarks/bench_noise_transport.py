"""Cost of ``warped`` noise against ``shared`` noise, measured in the same run (docs/noise_transport.md).

    OMP_NUM_THREADS=1 python benchmarks/bench_noise_transport.py

Draws (B=4, F=16, C, S, S) noise at the latent size (C=4, S=16) and the pixel size (C=3, S=32) along
a zoom-and-rotate condition (every frame a different affine map: splits, disocclusions and clean
copies), best of ``--repeats`` timings each; prints the milliseconds and warped / shared.
"""

from __future__ import annotations

import argparse
import functools
import math
import time

import torch

from s2dm_lightning.diffusion import sample_video_noise
from s2dm_lightning.flow_format import affine_condition


def zoom_rotate_conditions(videos: int, frames: int, size: int) -> torch.Tensor:
    maps = []
    for f in range(frames):
        angle, scale = math.radians(2.0 * f), 1.0 - 0.02 * f
        maps.append([[scale * math.cos(angle), -scale * math.sin(angle), 0.3 * f],
                     [scale * math.sin(angle), scale * math.cos(angle), 0.0]])
    return affine_condition(torch.tensor(maps), size, size)[None].expand(videos, -1, -1, -1, -1).contiguous()


def best_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    for channels, size in ((4, 16), (3, 32)):
        condition = zoom_rotate_conditions(4, 16, size)
        g = torch.Generator().manual_seed(0)
        shape = (channels, size, size)
        shared = best_ms(functools.partial(sample_video_noise, 4, 16, shape, "shared", g), args.repeats)
        warped = best_ms(functools.partial(sample_video_noise, 4, 16, shape, "warped", g, condition=condition),
                         args.repeats)
        print(f"{channels}x{size}x{size}: shared {shared:.3f} ms, warped {warped:.3f} ms, ratio {warped / shared:.1f}")


if __name__ == "__main__":
    main()
