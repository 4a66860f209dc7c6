"""Training throughput (frames/s) and the time of one 16-frame sample, for a config.

    python benchmarks/bench_training.py [--config configs/synthetic.yaml] [--steps 10]
    python benchmarks/bench_training.py --threads 1 2 [--steps 6]   # the thread-count comparison

``--threads A B ...`` times the same training step at each torch thread count, taking turns step by step
(A B A B ...) so that load from other work on the machine hits every count alike, and prints the median
s/step of each and its ratio to the first count.

The model is built from the config exactly as `fit` builds it; batches are random
frames with identity flows of the config's shapes (speed does not depend on content).
Not a test: numbers depend on the machine; compare them only within one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from s2dm_lightning.cli import S2DMCLI
from s2dm_lightning.commands.threads import usable_cores
from s2dm_lightning.flow_format import identity_condition


def build(config: str, overrides: list[str] | None = None):
    """The model and data module of ``config`` (plus CLI ``overrides``), built as ``fit`` builds them."""
    cli = S2DMCLI(args=["--config", config, "--trainer.logger=false", *(overrides or [])], run=False)
    return cli.model, cli.datamodule


def random_batch(model, batch_size: int, num_frames: int, resolution: int) -> dict:
    flow_size = model.flow_conditioner.flow_size
    flow = identity_condition(flow_size, flow_size).expand(batch_size, num_frames, 3, flow_size, flow_size)
    return {
        "frames": torch.rand(batch_size, num_frames, 3, resolution, resolution) * 2 - 1,
        "flow": flow.clone(),
        "caption": ["a red square moves to the left"] * batch_size,
        "video_id": [str(i) for i in range(batch_size)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/synthetic.yaml")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="compare these torch thread counts (training steps only, taking turns)")
    args = parser.parse_args()

    model, data = build(args.config)
    batch = random_batch(model, data.batch_size, data.num_frames, data.resolution)
    frames_per_step = data.batch_size * (model.hparams.frames_per_step or data.num_frames)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    if args.threads:
        compare_threads(model, batch, optimizer, args.threads, args.steps)
        return
    for step in range(args.steps + 2):
        if step == 2:
            start = time.perf_counter()
        loss = model.diffusion_loss(batch, model.noise_generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    train_seconds = (time.perf_counter() - start) / args.steps

    model.eval()
    one_video = {k: v[:1] for k, v in batch.items()}
    model.sample_videos(one_video, torch.Generator().manual_seed(0))  # warm-up
    start = time.perf_counter()
    model.sample_videos(one_video, torch.Generator().manual_seed(0))
    sample_seconds = time.perf_counter() - start

    print(f"config: {args.config}  threads: {torch.get_num_threads()}")
    print(f"training: {train_seconds:.3f} s/step, {frames_per_step} frames/step -> {frames_per_step / train_seconds:.1f} frames/s")
    print(
        f"sampling: one {data.num_frames}-frame video, {model.hparams.num_inference_steps} DDIM steps, "
        f"guidance {model.guidance.mode}: {sample_seconds:.2f} s"
    )


def train_step(model, batch, optimizer) -> None:
    loss = model.diffusion_loss(batch, model.noise_generator)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def compare_threads(model, batch, optimizer, counts: list[int], steps: int) -> None:
    """Median s/step at each thread count, one warm-up step each, the counts taking turns."""
    times: dict[int, list[float]] = {count: [] for count in counts}
    for round_ in range(steps + 1):
        for count in counts:
            torch.set_num_threads(count)
            start = time.perf_counter()
            train_step(model, batch, optimizer)
            if round_ > 0:
                times[count].append(time.perf_counter() - start)
    base = statistics.median(times[counts[0]])
    print(f"cores usable: {usable_cores()}  steps per count: {steps} (after 1 warm-up)")
    for count in counts:
        median = statistics.median(times[count])
        print(f"threads {count}: {median:.3f} s/step, ratio vs {counts[0]} thread(s): {median / base:.2f}")


if __name__ == "__main__":
    main()
