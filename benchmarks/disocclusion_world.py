"""The disocclusion synthetic world in one picture, and how far warping frame 1 is from it (docs/datasets.md).

    python benchmarks/disocclusion_world.py [--output docs/images/synthetic_disocclusion.png]

Renders one video per transform (rotating, growing, shrinking; 16 frames, 32 px) and shows every third
frame: the video, frame 1 warped with the ground-truth flow, and the visibility map (white = visible in
frame 1). Prints, per video, the mean warp error on visible and on invisible pixels and the invisible
share of the last frame.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from s2dm_lightning.flow_format import warp
from s2dm_lightning.synthetic.disocclusion import disocclusion_caption, render_disocclusion_video
from s2dm_lightning.video_files import write_png
from s2dm_lightning.visualization import contact_sheet, occlusion_to_rgb

CASES = [("red", "square", "moves to the left", "rotating"), ("green", "circle", "moves up", "growing"),
         ("blue", "triangle", "moves to the right", "shrinking")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="docs/images/synthetic_disocclusion.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows, labels = [], []
    for index, case in enumerate(CASES):
        video, conditions = render_disocclusion_video(*case, 16, 32, np.random.default_rng([args.seed, index]))
        frames = torch.from_numpy(video).permute(0, 3, 1, 2).float()
        warped = warp(frames[:1].expand(len(frames), -1, -1, -1).contiguous(), torch.from_numpy(conditions))
        error, visible = (warped - frames).abs().amax(1), torch.from_numpy(conditions[:, 2] == 1)
        print(f"{disocclusion_caption(*case)}: warp error visible {error[visible].mean():.4f}, "
              f"invisible {error[~visible].mean():.1f} (uint8 levels); last frame invisible "
              f"{(~visible[-1]).float().mean():.0%}")
        shown = slice(0, 16, 3)
        rows += [video[shown], warped.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()[shown],
                 occlusion_to_rgb(conditions)[shown]]
        labels += [disocclusion_caption(*case), "frame 1 warped by the true flow", "visible in frame 1"]
    write_png(args.output, contact_sheet(rows, labels, scale=3))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
