"""Training-step options on this machine: channels-last, bf16 autocast, torch.compile, vs today's step.

    python benchmarks/bench_training_options.py [--config configs/synthetic.yaml] [--steps 24]
        [--options baseline channels_last bf16 channels_last+bf16 compile compile+bf16] [--threads 1]
        [--data_root data/synthetic]

Every option trains its own copy of the config's model (built as ``fit`` builds it), all from the
same initial weights, in lockstep: step k of every option runs on the same batch with the same
seeded noise generator, the options taking turns (A B C A B C ...), so load drift on a shared machine
hits them alike. A step is the real ``S2DM.diffusion_loss`` + backward + the module's own AdamW and
warm-up schedule (``configure_optimizers``). Options:

- ``channels_last``: the UNet's weights and its input ``sample`` in ``torch.channels_last``;
- ``bf16``: ``torch.autocast("cpu", torch.bfloat16)`` around the loss, as Lightning's
  ``precision: bf16-mixed`` does (backward and optimizer outside it, weights stay float32);
- ``compile``: ``unet.compile()`` (torch.compile in place); its first step (compilation) is reported
  separately and left out of the median.

Batches: the config's data module (real clips, its batch size) when its ``root`` holds the data
(``--data_root`` to point at another copy), else random frames with identity flows of the same shapes
(speed does not depend on content; the loss curve then means little).

Printed: median s/step of each option after ``--warmup`` steps and its ratio to ``baseline``; the loss
curve check (same seed, same batches): mean loss over the last ``--last`` steps and the largest relative
difference of the ``--smooth``-step moving average from the baseline's; with ``--reference_seed`` the
baseline trained with other noise draws shows how far the curves move from the seed alone. Not a test:
compare numbers within one run.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import lightning as L
import torch
from bench_training import build, random_batch

OPTIONS = ("baseline", "channels_last", "bf16", "channels_last+bf16", "compile", "compile+bf16",
           "compile+channels_last")


def _sample_to_channels_last(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook: the UNet's ``sample`` (first argument) in channels-last memory format."""
    return (args[0].contiguous(memory_format=torch.channels_last), *args[1:]), kwargs


class OptionRun:
    """One option's copy of the model, optimiser, schedule and noise generator, and its step timings."""

    def __init__(self, name: str, template: L.LightningModule, seed: int) -> None:
        self.parts = set(name.split("+"))
        self.name = name if seed == 0 else f"{name}, noise seed {seed}"
        self.model = copy.deepcopy(template).train()
        if "channels_last" in self.parts:
            self.model.unet.to(memory_format=torch.channels_last)
            self.model.unet.register_forward_pre_hook(_sample_to_channels_last, with_kwargs=True)
        if "compile" in self.parts:
            self.model.unet.compile()
        optim = self.model.configure_optimizers()
        self.optimizer, self.schedule = optim["optimizer"], optim["lr_scheduler"]["scheduler"]
        self.generator = torch.Generator().manual_seed(seed)
        self.seconds: list[float] = []
        self.losses: list[float] = []

    def step(self, batch: dict) -> None:
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if "bf16" in self.parts else nullcontext()
        start = time.perf_counter()
        with autocast:
            loss = self.model.diffusion_loss(batch, self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        self.seconds.append(time.perf_counter() - start)
        self.losses.append(loss.item())


def batches(data, model, use_data: bool) -> Iterator[dict]:
    """The data module's training batches, endlessly (a seeded shuffle), or one random batch repeated."""
    if not use_data:
        return itertools.repeat(random_batch(model, data.batch_size, data.num_frames, data.resolution))
    data.setup("fit")
    L.seed_everything(0, verbose=False)
    return (batch for _ in itertools.count() for batch in data.train_dataloader())


def moving_average(values: list[float], window: int) -> list[float]:
    """Means of every ``window`` consecutive values."""
    return [statistics.fmean(values[i:i + window]) for i in range(len(values) - window + 1)]


def report(runs: list[OptionRun], warmup: int, last: int, smooth: int, header: str) -> None:
    base = runs[0]

    def median(run: OptionRun) -> float:
        return statistics.median(run.seconds[warmup:])

    base_avg = moving_average(base.losses, smooth)
    print(header)
    print(f"| option | s/step (median) | speed-up vs baseline | first step (s) | mean loss, last {last} steps "
          f"| max rel. diff. of {smooth}-step mean loss vs baseline |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        avg = moving_average(run.losses, smooth)
        diff = max(abs(a - b) / b for a, b in zip(avg, base_avg, strict=True)) if avg else float("nan")
        print(f"| {run.name} | {median(run):.3f} | {median(base) / median(run):.2f}x | {run.seconds[0]:.1f} "
              f"| {statistics.fmean(run.losses[-last:]):.4f} | {100 * diff:.1f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/synthetic.yaml")
    parser.add_argument("--options", nargs="+", default=list(OPTIONS[:6]), choices=OPTIONS,
                        help="options to compare ('baseline' is always run first)")
    parser.add_argument("--steps", type=int, default=24, help="training steps of every option")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the median (compilation)")
    parser.add_argument("--last", type=int, default=50, help="steps of the final mean loss")
    parser.add_argument("--smooth", type=int, default=25, help="window of the moving-average loss curve")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = steady on a shared machine)")
    parser.add_argument("--reference_seed", type=int,
                        help="also run the baseline with this noise seed (the others use 0): the loss curves' "
                             "spread from the seed alone, the yardstick of the loss-curve check")
    parser.add_argument("--data_root", help="the data module's root (default: the config's)")
    args = parser.parse_args()
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")
    torch.set_num_threads(args.threads)
    overrides = [f"--data.init_args.root={args.data_root}"] if args.data_root else []
    template, data = build(args.config, overrides)
    use_data = Path(data.root).is_dir() and any(Path(data.root).iterdir())
    names = ["baseline"] + [name for name in args.options if name != "baseline"]
    runs = [OptionRun(name, template, 0) for name in names]
    if args.reference_seed is not None:
        runs.append(OptionRun("baseline", template, args.reference_seed))
    start = time.perf_counter()
    for _, batch in zip(range(args.steps), batches(data, template, use_data), strict=False):
        for run in runs:
            run.step(batch)
    frames = data.batch_size * (template.hparams.frames_per_step or data.num_frames)
    header = (f"config {args.config}, {'data ' + str(data.root) if use_data else 'random batches'}, batch "
              f"{data.batch_size} x {template.hparams.frames_per_step or data.num_frames} frames ({frames} UNet "
              f"samples), {args.steps} steps per option in lockstep ({args.warmup} warm-up), {torch.get_num_threads()} "
              f"threads, torch {torch.__version__}, {time.perf_counter() - start:.0f} s wall")
    report(runs, args.warmup, min(args.last, args.steps), min(args.smooth, args.steps), header)


if __name__ == "__main__":
    main()
