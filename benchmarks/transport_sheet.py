"""Texture sticking by eye: shared vs warped noise on the textured world, same seed, same conditions.

    python benchmarks/transport_sheet.py --runs outputs/study/textured/runs --seed 0 --steps 400 \
        [--clips 0 1] [--output docs/images/noise_transport_textured.png]

Takes the ablation's ``shared-both-seed<s>-steps<N>`` and ``warped-both-seed<s>-steps<N>`` runs
(``benchmarks/ablation.py --mode transport --world textured``), samples the chosen test clips with the
seeds the ablation uses (video k: ``SEED_STRIDE * s + k``) and shows every third frame of: the real
clip, each model's video, its high-pass pattern (``texture_sticking.high_pass``, grey, x4: the detail
that should travel with the shape and stay still on the background), and the two residuals the sticking
measure averages over the shape (``texture_sticking.pattern_residuals``, black = 0, x4, shown on the
real shape's pixels only, the rest blue): against frame 1's pattern carried by the true flow ("moved")
and against it in place ("still"). Where the detail sticks, the shape is dark in "still" and bright in
"moved"; where it travels, the other way round.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from s2dm_lightning.config import load_datamodule, load_module
from s2dm_lightning.evaluation.features import quantize_to_uint8_levels
from s2dm_lightning.models import S2DM
from s2dm_lightning.synthetic.ablation import SEED_STRIDE
from s2dm_lightning.synthetic.motion import shape_mask
from s2dm_lightning.synthetic.texture_sticking import high_pass, pattern_residuals
from s2dm_lightning.video_files import write_png
from s2dm_lightning.visualization import contact_sheet

SHOWN = slice(0, 16, 3)


def pattern_video(videos: torch.Tensor) -> torch.Tensor:
    """(B, F, 3, H, W) -> the high-pass pattern as grey video in [-1, 1] (amplified 4x: it is small)."""
    return (4 * high_pass(videos)).clamp(-1, 1).expand(*videos.shape)


def residual_video(residual: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """(B, F, 1, H, W) residual >= 0 -> video in [-1, 1]: grey on the (B, F, H, W) shape (0 black, x4), blue off it."""
    grey = ((4 * residual).clamp(0, 1) * 2 - 1).expand(-1, -1, 3, -1, -1)
    off_shape = torch.tensor([-1.0, -1.0, -0.4]).view(1, 1, 3, 1, 1).expand_as(grey)
    return torch.where(shape[:, :, None], grey, off_shape)


@torch.no_grad()
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="outputs/study/textured/runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--clips", type=int, nargs="+", default=[0, 1], help="test clip indices")
    parser.add_argument("--output", default="docs/images/noise_transport_textured.png")
    args = parser.parse_args(argv)
    sampled, data = {}, None
    for noise in ("shared", "warped"):
        run_dir = Path(args.runs) / f"{noise}-both-seed{args.seed}-steps{args.steps}"
        done = json.loads((run_dir / "done.json").read_text())
        model = load_module(run_dir / "config.yaml", done["checkpoint"], S2DM)
        if data is None:
            data = load_datamodule(run_dir / "config.yaml")
            data.prepare_data()
            data.setup("test")
            items = [data.datasets["test"][k] for k in args.clips]
            batch = {key: [item[key] for item in items] for key in items[0]}
            batch = {k: torch.stack(v) if isinstance(v[0], torch.Tensor) else v for k, v in batch.items()}
        generators = [torch.Generator().manual_seed(SEED_STRIDE * args.seed + k) for k in args.clips]
        sampled[noise] = quantize_to_uint8_levels(model.sample_videos(batch, generators, noise_sharing=noise))
    rows, labels = [], []
    for index, caption in enumerate(batch["caption"]):
        rows.append(batch["frames"][index][SHOWN])
        labels.append(f"real: {caption}")
        for noise, videos in sampled.items():
            video = videos[index:index + 1]
            moved, still = pattern_residuals(video, batch["flow"][index:index + 1])
            shape = shape_mask(batch["frames"][index:index + 1])
            rows += [video[0][SHOWN], pattern_video(video)[0][SHOWN],
                     residual_video(moved, shape)[0][SHOWN], residual_video(still, shape)[0][SHOWN]]
            labels += [f"{noise} noise (seed {args.seed}, {args.steps} steps)", f"{noise}: high-pass x4",
                       f"{noise}: |pattern - frame 1's moved by the flow| x4 (dark: detail travels)",
                       f"{noise}: |pattern - frame 1's in place| x4 (dark: detail sticks)"]
    write_png(args.output, contact_sheet(rows, labels, scale=4))
    print(f"wrote {args.output}: frames 1, 4, ..., 16 of test clips {args.clips}")


if __name__ == "__main__":
    main()
