"""FVD feature extraction: our ``I3DFeatureExtractor`` vs the reference I3D code path, same weights, same input.

    python benchmarks/bench_fvd_features.py [--videos 2] [--frames 16] [--size 32] [--repeats 2]

The reference path is what the public FVD code in PyTorch does (VideoGPT / TATS ``fvd.preprocess``
then ``i3d(x)``): uint8 (B, T, H, W, 3) -> float, ``F.interpolate`` of every frame to 224 x 224
(bilinear, align_corners=False), scaled to [-1, 1], (B, 3, T, 224, 224), one network call. Ours:
``I3DFeatureExtractor(network, layout="BTHWC", resize_convention=...)`` on the same uint8 videos;
``torch`` is the same resize as the reference (features must match; the max difference is printed),
``tf1`` the TF FVD reference's resize (the default of our metrics). The network is shared by all
sides: the FVD I3D from ``--i3d_weights`` / ``$S2DM_I3D_WEIGHTS`` if the file exists, else a seeded
random ``InceptionI3d`` (same speed; nothing is downloaded, but a random I3D's outputs hardly depend
on the input, so then only the network-input difference says that both paths agree). Medians over
``--repeats`` alternating measurements after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from s2dm_lightning.metrics import (
    I3DFeatureExtractor,
    InceptionI3d,
    load_i3d,
    preprocess_for_i3d,
    resolve_i3d_weights,
)


def reference_preprocess(videos: torch.Tensor, target_resolution: int = 224) -> torch.Tensor:
    """VideoGPT's ``fvd.preprocess``: uint8 (B, T, H, W, C) -> float (B, C, T, 224, 224) in [-1, 1]."""
    b, t, h, w, c = videos.shape
    all_frames = videos.float().flatten(end_dim=1).permute(0, 3, 1, 2).contiguous()
    resized = F.interpolate(all_frames, size=target_resolution, mode="bilinear", align_corners=False)
    resized = resized.view(b, t, c, target_resolution, target_resolution).transpose(1, 2).contiguous()
    return 2.0 * resized / 255.0 - 1.0


def timed(fn, *args) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=32, help="input height and width before the resize to 224")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = steady on a shared machine)")
    parser.add_argument("--i3d_weights", default=None, help="i3d_pretrained_400.pt or i3d_torchscript.pt (optional)")
    parser.add_argument("--allow_torchscript", action="store_true",
                        help="allow a TorchScript --i3d_weights (it runs its own code; only a file you trust)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    weights = resolve_i3d_weights(args.i3d_weights)
    trained = weights is not None and Path(weights).is_file()
    network = load_i3d(weights, allow_torchscript=args.allow_torchscript) if trained else InceptionI3d().eval()
    videos = torch.randint(0, 256, (args.videos, args.frames, args.size, args.size, 3), dtype=torch.uint8)
    sides = {
        "reference": lambda v: network(reference_preprocess(v)),
        "ours_torch": I3DFeatureExtractor(network, layout="BTHWC", resize_convention="torch", chunk_size=None),
        "ours_tf1": I3DFeatureExtractor(network, layout="BTHWC", resize_convention="tf1", chunk_size=None),
    }
    times: dict[str, list[float]] = {k: [] for k in sides}
    outputs: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        sides["reference"](videos[:1])  # warm-up
        for _ in range(args.repeats):
            for name, fn in sides.items():
                seconds, outputs[name] = timed(fn, videos)
                times[name].append(seconds)
    med = {k: statistics.median(v) for k, v in times.items()}
    diff = float((outputs["ours_torch"] - outputs["reference"]).abs().max())
    input_diff = float((preprocess_for_i3d(videos, None, "BTHWC", 224, "torch") - reference_preprocess(videos)).abs().max())
    kind = f"I3D weights {weights}" if trained else "random-weight InceptionI3d"
    print(f"{args.videos} videos x {args.frames} frames, {args.size} px -> 224, {kind}, "
          f"{torch.get_num_threads()} threads, medians of {args.repeats}")
    print("| path | seconds | vs reference |")
    print("|---|---|---|")
    print(f"| reference (VideoGPT preprocess + i3d) | {med['reference']:.3f} | 1.000 |")
    print(f"| ours, resize_convention=torch | {med['ours_torch']:.3f} | {med['ours_torch'] / med['reference']:.3f} |")
    print(f"| ours, resize_convention=tf1 (default) | {med['ours_tf1']:.3f} | {med['ours_tf1'] / med['reference']:.3f} |")
    print(f"max |ours_torch - reference|: network input {input_diff:.1e} (of range 2), "
          f"{outputs['reference'].shape[1]} features {diff:.1e}")


if __name__ == "__main__":
    main()
