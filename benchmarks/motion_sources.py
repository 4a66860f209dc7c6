"""One caption driven by each motion source of the pipeline, as a contact sheet (docs/pipeline.md).

    python benchmarks/motion_sources.py --pipeline exports/synthetic \
        --flow_config configs/synthetic_flow.yaml --flow_ckpt logs/synthetic_flow/version_0/checkpoints/last.ckpt \
        --video data/synthetic/videos/video_0002 --output docs/images/motion_sources.png

Rows: the driving video itself, then the video generated for ``--prompt`` with the motion of that
video (``flows_from_video``), of the caption alone through stage one (``flows_from_caption``) and of
a formula (``parametric_flows``); each generated row is followed by its flow as colour. Every
generated video starts from the same seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from s2dm_lightning.config import load_module
from s2dm_lightning.models.flow_generator import FlowGenerator
from s2dm_lightning.pipelines import S2DMPipeline, motion
from s2dm_lightning.video_files import write_png
from s2dm_lightning.visualization import contact_sheet, flow_to_rgb, resize_nearest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="a folder written by `python -m s2dm_lightning export`")
    parser.add_argument("--flow_config", required=True, help="the stage-one config (configs/synthetic_flow.yaml)")
    parser.add_argument("--flow_ckpt", required=True, help="a stage-one checkpoint")
    parser.add_argument("--video", required=True, help="the driving video (file or frame folder)")
    parser.add_argument("--prompt", default="a green triangle moves up")
    parser.add_argument("--formula", default="translate:0,-8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=3, help="nearest-neighbour upscaling of every frame")
    parser.add_argument("--output", default="docs/images/motion_sources.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pipe = S2DMPipeline.from_pretrained(args.pipeline)
    flow_generator = load_module(args.flow_config, args.flow_ckpt, FlowGenerator, "--flow_ckpt")
    video_flows, driving = motion.flows_from_video(args.video, pipe.flow_size)
    frame_size = pipe.unet.config.sample_size * (8 if pipe.vae is not None else 1)
    sources = {
        f"motion of the driving video ({Path(args.video).name})": video_flows,
        "motion of the caption alone (stage one)": motion.flows_from_caption(pipe, flow_generator, args.prompt,
                                                                             seed=args.seed)[0],
        f"motion of a formula ({args.formula})": motion.parametric_flows(args.formula, pipe.flow_size,
                                                                          frame_size=frame_size),
    }
    size = driving.shape[1]
    rows, labels = [driving], ["driving video"]
    for name, flows in sources.items():
        generator = [torch.Generator().manual_seed(args.seed)]
        frames = pipe(args.prompt, flows=flows[None], generator=generator).frames[0]
        rows.append((np.clip(frames, 0, 1) * 255).round().astype(np.uint8))
        rows.append(resize_nearest(flow_to_rgb(flows), size, size))
        labels += [f'"{args.prompt}", {name}', "its flow (hue = direction)"]
    sheet = contact_sheet(rows, labels, scale=args.scale)
    output = write_png(args.output, sheet)
    print(f"wrote {output} ({sheet.shape[1]} x {sheet.shape[0]} px)")


if __name__ == "__main__":
    main()
