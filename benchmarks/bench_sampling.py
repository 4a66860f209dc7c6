"""Sampling one 16-frame video with guidance: our batched sector sampler vs the plain per-frame way vs the floor.

    python benchmarks/bench_sampling.py [--config configs/synthetic.yaml] [--repeats 2]

Three ways to produce the same kind of video with the config's model (weights do not change speed):

* **ours**: ``S2DM.sample_videos``: every DDIM step denoises all frames and both guidance branches
  (conditional, unconditional) in ONE batched UNet call, the caption encoded once (cached);
* **plain per-frame**: what a user of a per-image diffusers pipeline would write: one pipeline call
  per frame, each encoding the caption and the empty prompt again, and every DDIM step calling the
  UNet twice (conditional and unconditional branch in separate calls) for one frame;
* **floor**: the pure network time, the same number of DDIM steps of batched UNet calls on inputs
  prepared beforehand (no scheduler, guidance, conditioning or text work).

Ratios: plain / ours (the speed-up of batching) and ours / floor (what the sampler adds to the
network). Medians over ``--repeats`` alternating measurements after one warm-up. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import DDIMScheduler

from s2dm_lightning.cli import S2DMCLI
from s2dm_lightning.diffusion import combine_guidance
from s2dm_lightning.flow_format import identity_condition


def one_video(model, num_frames: int) -> dict:
    """A one-video batch with a small rightward flow (content irrelevant to speed)."""
    size = model.flow_conditioner.flow_size
    flow = identity_condition(size, size).repeat(1, num_frames, 1, 1, 1)
    flow[:, :, 0] -= torch.linspace(0, 0.3, num_frames).view(1, num_frames, 1, 1)
    return {"flow": flow, "caption": ["a red square moves to the right"]}


def ours(model, batch: dict) -> float:
    start = time.perf_counter()
    model.sample_videos(batch, torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def plain_per_frame(model, batch: dict) -> float:
    """One diffusers-style DDIM loop per frame; cond and uncond branches in separate UNet calls."""
    encoder, hp = model.text_encoder, model.hparams
    caption, flow = batch["caption"][0], batch["flow"][0]
    shape = model.frame_shape()
    yes, no = torch.tensor([True]), torch.tensor([False])
    start = time.perf_counter()
    for i in range(flow.shape[0]):
        text, text_mask = encoder._encode_uncached([caption])  # a pipeline call encodes its prompts
        null, null_mask = encoder._encode_uncached([""])
        scheduler = DDIMScheduler.from_config(model.noise_scheduler.config)
        scheduler.set_timesteps(hp.num_inference_steps)
        latents = torch.randn((1, *shape), generator=torch.Generator().manual_seed(0))
        frame_flow = flow[i : i + 1]
        for t in scheduler.timesteps:
            x = scheduler.scale_model_input(latents, t)
            timestep = t.expand(1)
            cond = model.predict_noise(x, timestep, text, text_mask, frame_flow, yes, yes)
            uncond = model.predict_noise(x, timestep, null, null_mask, frame_flow, no, no)
            eps = combine_guidance([cond, uncond], model.guidance)
            latents = scheduler.step(eps, t, latents, eta=hp.eta,
                                     generator=torch.Generator().manual_seed(int(t))).prev_sample
    return time.perf_counter() - start


def floor(model, batch: dict) -> float:
    """Only the batched UNet calls of ``ours`` (all frames and branches), inputs prepared beforehand."""
    f = batch["flow"].shape[1]
    hidden, mask = model.text_condition(batch["caption"] + [""])
    n = 2  # guidance branches
    keep = torch.tensor([True] * f + [False] * f)
    hidden = torch.cat([hidden[:1].expand(f, -1, -1), hidden[1:].expand(f, -1, -1)])
    mask = torch.cat([mask[:1].expand(f, -1), mask[1:].expand(f, -1)])
    flows = batch["flow"][0].repeat(n, 1, 1, 1)
    tokens = model.flow_conditioner.tokens(flows, keep)
    if tokens is not None:
        hidden = torch.cat([hidden, tokens], 1)
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], tokens.shape[1])], 1)
    x = torch.randn(n * f, *model.frame_shape())
    channels = model.flow_conditioner.channels(flows, keep, x.shape[-2:])
    if channels is not None:
        x = torch.cat([x, channels], 1)
    mask = mask if model.text_encoder.use_attention_mask else None
    timesteps = torch.full((n * f,), 500)
    start = time.perf_counter()
    for _ in range(model.hparams.num_inference_steps):
        model.unet(x, timesteps, encoder_hidden_states=hidden, encoder_attention_mask=mask)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/synthetic.yaml")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = steady on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = S2DMCLI(args=["--config", args.config, "--trainer.logger=false"], run=False).model.eval()
    if model.guidance.mode != "joint" or model.guidance.scale == 1.0:
        raise SystemExit("this benchmark compares joint guidance with two branches; use a config with guidance_scale != 1")
    batch = one_video(model, args.frames)
    times: dict[str, list[float]] = {"ours": [], "plain": [], "floor": []}
    with torch.no_grad():
        ours(model, batch), floor(model, batch)  # warm-up (and the caption cache, as in real use)
        for _ in range(args.repeats):
            times["plain"].append(plain_per_frame(model, batch))
            times["ours"].append(ours(model, batch))
            times["floor"].append(floor(model, batch))
    med = {k: statistics.median(v) for k, v in times.items()}
    steps = model.hparams.num_inference_steps
    print(f"config {args.config}: one {args.frames}-frame video, {steps} DDIM steps, joint guidance "
          f"{model.guidance.scale} (2 branches), {torch.get_num_threads()} threads, medians of {args.repeats}")
    print("| way | UNet calls | seconds | vs ours |")
    print("|---|---|---|---|")
    print(f"| plain per-frame loop (text encoded per frame, branches separate) | {2 * steps * args.frames} x batch 1 "
          f"| {med['plain']:.3f} | {med['plain'] / med['ours']:.2f}x slower |")
    print(f"| ours: batched sector sampler | {steps} x batch {2 * args.frames} | {med['ours']:.3f} | 1.00 |")
    print(f"| floor: batched UNet calls only | {steps} x batch {2 * args.frames} | {med['floor']:.3f} "
          f"| ours = {med['ours'] / med['floor']:.3f} x floor |")


if __name__ == "__main__":
    main()
