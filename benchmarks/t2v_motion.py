"""Does two-stage text-to-video move things the way the prompt says? (synthetic data)

    python benchmarks/t2v_motion.py --s2dm_config CFG --s2dm_ckpt CKPT --flow_config CFG --flow_ckpt CKPT \
        [--data_root data/synthetic] [--seeds 0 1] [--output_dir outputs/t2v_motion] [--control]

Direction of a flow sequence: minus the magnitude-weighted mean displacement of its last 4
frames (the grid says where a pixel comes FROM, so a shape moving right has dx < 0). Direction
of a video: centroid of its saturated pixels (the shape; backgrounds are muted) in the last 4
frames minus that in the first 4. Either is "right" when, of left/right/up/down, the caption's
direction has the largest dot product with it. Reported for: the dataset's own flows and videos
(the ceiling of the measures), stage one alone on the test videos' real first frames, and the
full pipeline from prompts (one per colour x direction, shapes cycled). ``--control`` adds the
pipeline on the test captions with their real flows (does stage two follow true flows?) and with
generated ones.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch

from s2dm_lightning.commands.sample import write_outputs
from s2dm_lightning.pipelines import TwoStageTextToVideo
from s2dm_lightning.synthetic import SyntheticDataModule
from s2dm_lightning.synthetic.motion import direction_score as score
from s2dm_lightning.synthetic.motion import flow_direction, video_direction
from s2dm_lightning.synthetic.world import COLORS, MOTIONS, SHAPES, caption_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("s2dm_config", "s2dm_ckpt", "flow_config", "flow_ckpt"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--data_root", default="data/synthetic")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--output_dir", default="outputs/t2v_motion")
    parser.add_argument("--control", action="store_true",
                        help="also run the pipeline on the test captions with their real flows and with generated ones")
    args = parser.parse_args()
    start = time.time()
    pipeline = TwoStageTextToVideo.from_checkpoints(args.s2dm_config, args.s2dm_ckpt, args.flow_config, args.flow_ckpt)
    data = SyntheticDataModule(root=args.data_root, batch_size=64)
    data.setup("test")
    test = next(iter(data.test_dataloader()))
    results: dict[str, dict] = {
        "dataset_flows": score(flow_direction(test["flow"]), test["caption"]),
        "dataset_videos": score(video_direction(test["frames"]), test["caption"]),
    }
    stage_one = [pipeline.flow_generator.sample_flows(test["frames"][:, 0], test["caption"],
                                                      generator=torch.Generator().manual_seed(seed))
                 for seed in args.seeds]
    results["stage_one_on_test_first_frames"] = score(
        flow_direction(torch.cat(stage_one)), list(test["caption"]) * len(args.seeds))

    shapes = itertools.cycle(SHAPES)
    prompts = [caption_for(color, next(shapes), motion) for motion in MOTIONS for color in COLORS]
    flows, videos = [], []
    for seed in args.seeds:
        out = pipeline(prompts, seed=seed)
        flows.append(out.flows)
        videos.append(out.frames)
        write_outputs(out, Path(args.output_dir) / f"seed{seed}", scale=4)
    results["pipeline_flows"] = score(flow_direction(torch.cat(flows)), prompts * len(args.seeds))
    results["pipeline_videos"] = score(video_direction(torch.cat(videos)), prompts * len(args.seeds))
    if args.control:  # is stage two the limit? the same test captions with real and with generated flows
        real = pipeline(test["caption"], seed=0, reference_flows=test["flow"])
        results["control_test_captions_real_flows_videos"] = score(video_direction(real.frames), test["caption"])
        generated = pipeline(test["caption"], seed=0)
        results["control_test_captions_generated_flows"] = score(flow_direction(generated.flows), test["caption"])
        results["control_test_captions_generated_flows_videos"] = score(video_direction(generated.frames),
                                                                         test["caption"])
        write_outputs(real, Path(args.output_dir) / "control_real_flows", scale=4)
    results["minutes"] = round((time.time() - start) / 60, 1)
    print(json.dumps(results, indent=2))
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(args.output_dir) / "motion.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
