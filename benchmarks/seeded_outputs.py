"""Are seeded outputs unchanged by a code change? Train the synthetic default briefly, sample its test
videos, and save (or compare with) what came out.

    python benchmarks/seeded_outputs.py --save outputs/seeded_before.pt      # on the old commit
    python benchmarks/seeded_outputs.py --compare outputs/seeded_before.pt   # on the new one

A fit of ``--steps`` steps of configs/synthetic.yaml through the real CLI (fixed seed, one thread, no
validation), then every test video sampled from its caption and real flows with ``predict``'s seeds.
On one machine and library build the trained weights and the videos must be bit-identical; the
comparison prints the largest weight and pixel differences.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def train_and_sample(steps: int, workdir: Path, num_videos: int) -> dict[str, torch.Tensor]:
    from s2dm_lightning.config import load_datamodule, load_module
    from s2dm_lightning.models import S2DM

    config = REPO / "configs" / "synthetic.yaml"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "s2dm_lightning", "fit", "--config", str(config),
         f"--trainer.max_steps={steps}", f"--trainer.val_check_interval={steps}", "--trainer.limit_val_batches=0",
         f"--trainer.default_root_dir={workdir}", f"--trainer.logger.init_args.save_dir={workdir}",
         f"--data.init_args.root={REPO / 'data' / 'synthetic'}"],
        check=True, cwd=workdir, env=env,
    )
    ckpt = next(workdir.glob("synthetic/version_*/checkpoints/last.ckpt"))
    torch.set_num_threads(1)
    model = load_module(str(config), str(ckpt), S2DM)
    data = load_datamodule(str(config), batch_size=4, root=str(REPO / "data" / "synthetic"))
    data.prepare_data()
    data.setup("test")
    videos = []
    for index, batch in enumerate(data.test_dataloader()):
        videos.append(model.sample_videos(batch, model.evaluation_generators(batch, index)))
        if sum(len(v) for v in videos) >= num_videos:
            break
    weights = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    return {"videos": torch.cat(videos)[:num_videos], **{f"weight/{k}": v for k, v in weights.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write the outputs here")
    group.add_argument("--compare", type=Path, help="compare with outputs written by --save")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--num_videos", type=int, default=8)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        outputs = train_and_sample(args.steps, Path(workdir), args.num_videos)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        torch.save(outputs, args.save)
        print(f"saved {len(outputs) - 1} weight tensors and videos {tuple(outputs['videos'].shape)} to {args.save}")
        return
    before = torch.load(args.compare, weights_only=True)
    assert before.keys() == outputs.keys(), f"different tensors: {sorted(before.keys() ^ outputs.keys())}"
    weight_diff = max((before[k] - outputs[k]).abs().max().item() for k in outputs if k.startswith("weight/"))
    video_diff = (before["videos"] - outputs["videos"]).abs().max().item()
    print(f"largest weight difference {weight_diff:.3g}, largest pixel difference {video_diff:.3g} "
          f"({'bit-identical' if weight_diff == 0 and video_diff == 0 else 'CHANGED'})")


if __name__ == "__main__":
    main()
