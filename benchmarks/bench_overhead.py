"""Training-step overhead: our LightningModule through a Lightning Trainer vs a bare PyTorch + diffusers loop.

    python benchmarks/bench_overhead.py [--config configs/synthetic.yaml] [--steps 10] [--repeats 2]

Both sides run the same computation on the same machine, in one process, alternately: the model of
the config (built as ``fit`` builds it), the same in-memory DataLoader (random frames, identity flows,
the config's batch and clip size), the same optimiser and learning-rate schedule. The bare loop is
what one would write by hand with diffusers: draw one noise and one timestep per video (shared by its
frames), ``DDPMScheduler.add_noise``, condition dropout, flow tokens/channels, ``UNet2DConditionModel``,
MSE, backward, AdamW, LR scheduler. The Lightning side is ``Trainer(max_steps=N).fit(model)`` with
logging of the loss (``self.log``), no logger, checkpointing or progress bar.

Per-step time = from the start of step ``--warmup`` to the end of the last step, divided by the steps
in between (data fetch included on both sides); the Trainer's one-off set-up is reported separately.
The ratio Lightning / bare is the overhead (goal: < 1.05). Not a test: compare numbers within one run.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from s2dm_lightning.cli import S2DMCLI
from s2dm_lightning.flow_format import identity_condition


class RandomClips(Dataset):
    """``n`` fixed random clips in the form of the video datasets (frames, flow, caption, video_id)."""

    def __init__(self, n: int, frames: int, size: int, flow_size: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.frames = torch.rand(n, frames, 3, size, size, generator=g) * 2 - 1
        self.flow = identity_condition(flow_size, flow_size).expand(n, frames, 3, flow_size, flow_size).clone()
        self.captions = [f"a red square moves {['up', 'down'][i % 2]}" for i in range(n)]

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, i: int) -> dict:
        return {"frames": self.frames[i], "flow": self.flow[i], "caption": self.captions[i], "video_id": str(i)}


class StepTimer(L.Callback):
    """Timestamps of the start of every training batch and of the end of the last one."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.end = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()


def lightning_run(model, loader: DataLoader, steps: int, warmup: int) -> tuple[float, float]:
    """(seconds per step after warm-up, seconds of fit outside the steps: set-up + tear-down) via a Trainer."""
    timer = StepTimer()
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0, callbacks=[timer])
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=loader)
    outside = (timer.starts[0] - start) + (time.perf_counter() - timer.end)
    return (timer.end - timer.starts[warmup]) / (steps - warmup), outside


def bare_run(model, loader: DataLoader, steps: int, warmup: int) -> float:
    """Seconds per step after warm-up of a hand-written PyTorch + diffusers loop doing the same computation."""
    unet, conditioner, encoder = model.unet, model.flow_conditioner, model.text_encoder
    scheduler, hp = model.noise_scheduler, model.hparams
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    warm = max(1, hp.warmup_steps)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warm))
    generator = torch.Generator().manual_seed(0)
    null_hidden, null_mask = encoder.encode([""])
    model.train()
    starts, step, end = [], 0, 0.0
    while step < steps:
        for batch in loader:
            starts.append(time.perf_counter())
            frames, flow = batch["frames"], batch["flow"]
            b, f = frames.shape[:2]
            k = hp.frames_per_step or f
            order = torch.rand(b, f, generator=generator).argsort(1)[:, :k]
            rows = torch.arange(b)[:, None]
            x0, flow = frames[rows, order].flatten(0, 1), flow[rows, order].flatten(0, 1)
            noise = torch.randn(b, 1, *x0.shape[1:], generator=generator).expand(b, k, *x0.shape[1:]).flatten(0, 1)
            t = torch.randint(0, scheduler.config.num_train_timesteps, (b, 1), generator=generator).expand(b, k)
            x_t = scheduler.add_noise(x0, noise, t.flatten())
            keep_text = (torch.rand(b, generator=generator) >= hp.text_dropout).repeat_interleave(k)
            keep_flow = (torch.rand(b, generator=generator) >= hp.flow_dropout).repeat_interleave(k)
            hidden, mask = encoder.encode(list(batch["caption"]))
            hidden, mask = hidden.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
            hidden = torch.where(keep_text.view(-1, 1, 1), hidden, null_hidden)
            mask = torch.where(keep_text.view(-1, 1), mask, null_mask)
            tokens = conditioner.tokens(flow, keep_flow)
            if tokens is not None:
                hidden = torch.cat([hidden, tokens], 1)
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], tokens.shape[1])], 1)
            channels = conditioner.channels(flow, keep_flow, x_t.shape[-2:])
            if channels is not None:
                x_t = torch.cat([x_t, channels], 1)
            eps = unet(x_t, t.flatten(), encoder_hidden_states=hidden,
                       encoder_attention_mask=mask if encoder.use_attention_mask else None).sample
            # the config's prediction_type, computed as diffusers' training examples do
            kind = scheduler.config.prediction_type
            if kind == "v_prediction":
                target = scheduler.get_velocity(x0, noise, t.flatten())
            else:
                target = x0 if kind == "sample" else noise
            loss = F.mse_loss(eps, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            lr_schedule.step()
            end = time.perf_counter()
            step += 1
            if step == steps:
                break
    return (end - starts[warmup]) / (steps - warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/synthetic.yaml")
    parser.add_argument("--steps", type=int, default=10, help="training steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps of each measurement")
    parser.add_argument("--repeats", type=int, default=2, help="alternating measurements of each side")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = steady on a shared machine)")
    args = parser.parse_args()
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")
    torch.set_num_threads(args.threads)
    cli = S2DMCLI(args=["--config", args.config, "--trainer.logger=false"], run=False)
    template, data = cli.model, cli.datamodule
    clips = RandomClips(4 * data.batch_size, data.num_frames, data.resolution, template.flow_conditioner.flow_size)
    loader = DataLoader(clips, batch_size=data.batch_size, shuffle=True, drop_last=True)

    bare, ours, fits = [], [], []
    for _ in range(args.repeats):  # alternate, each side on a fresh copy of the same initial model
        bare.append(bare_run(copy.deepcopy(template), loader, args.steps, args.warmup))
        per_step, outside = lightning_run(copy.deepcopy(template), loader, args.steps, args.warmup)
        ours.append(per_step)
        fits.append(outside)
    b, o = statistics.median(bare), statistics.median(ours)
    setup = statistics.median(fits)
    print(f"config {args.config}, batch {data.batch_size} x {template.hparams.frames_per_step or data.num_frames} "
          f"frames, {args.steps} steps ({args.warmup} warm-up) x {args.repeats} repeats, "
          f"{torch.get_num_threads()} threads")
    print("| training step | s/step (median) | ratio |")
    print("|---|---|---|")
    print(f"| bare PyTorch + diffusers loop | {b:.4f} | 1.00 |")
    print(f"| S2DM LightningModule, Lightning Trainer.fit | {o:.4f} | {o / b:.3f} |")
    print(f"Lightning overhead per step: {100 * (o / b - 1):+.1f}% (goal < 5%); "
          f"one-off Trainer set-up and tear-down: about {setup:.2f} s per fit")


if __name__ == "__main__":
    main()
