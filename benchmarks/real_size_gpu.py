"""What fits where, measured: each training row of docs/real_size.md for a few steps on one device.

    python benchmarks/real_size_gpu.py                       # CUDA, SD 1.5's UNet at full size
    python benchmarks/real_size_gpu.py --device cpu --scale 8 --steps 1   # the dry run on CPU

Rows: full fine-tuning with AdamW / 8-bit AdamW (bitsandbytes) / Adafactor, LoRA rank 16 and 64
(peft on to_q, to_k, to_v, to_out.0), each with and without gradient checkpointing and an fp32 EMA
copy; bf16 autocast over fp32 master weights, 1 video x 16 frames x 16 x 16 latents, 77 text + 1
flow token (S2DM's `tokens` fusion). Prints, per row, the peak torch.cuda.max_memory_allocated (on
CPU: the process's peak resident memory so far, which only grows) and the mean seconds of the steps
after the first. A row whose library is missing is printed as skipped with the reason.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_size import FRAMES, LATENT, unet_config  # noqa: E402

GIB = 2 ** 30
ROWS = ("full-adamw", "full-adamw8bit", "full-adafactor", "lora16", "lora64")


def build_optimizer(row: str, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if row == "full-adamw8bit":
        import bitsandbytes as bnb  # the `bitsandbytes` package; CUDA builds only

        return bnb.optim.AdamW8bit(params, lr=2e-5, weight_decay=0)
    if row == "full-adafactor":
        return torch.optim.Adafactor(params, lr=2e-5)
    return torch.optim.AdamW(params, lr=2e-5 if row.startswith("full") else 1e-4, weight_decay=0)


def build_unet(row: str, scale: int, device: torch.device) -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(**unet_config(scale))
    if row.startswith("lora"):
        from peft import LoraConfig  # the `peft` package

        rank = int(row.removeprefix("lora"))
        unet.requires_grad_(False)
        unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    return unet.to(device)


def peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_row(row: str, checkpointing: bool, ema: bool, args, device: torch.device) -> str:
    try:
        unet = build_unet(row, args.scale, device)
        params = [p for p in unet.parameters() if p.requires_grad]
        optimizer = build_optimizer(row, params)
    except ImportError as error:
        return f"skipped ({error.name} not installed)"
    if checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    ema_copy = [p.detach().clone() for p in params] if ema else []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sample = torch.randn(FRAMES, 4, LATENT, LATENT, device=device)
    text = torch.randn(FRAMES, 78, 768, device=device)
    timestep = torch.full((FRAMES,), 500, device=device)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = unet(sample, timestep, encoder_hidden_states=text).sample.float().pow(2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for average, p in zip(ema_copy, params if ema else [], strict=True):
                average.lerp_(p, 1 - 0.9999)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    peak = peak_bytes(device) / GIB
    trained = sum(p.numel() for p in params)
    step = sum(times[1:]) / len(times[1:]) if len(times) > 1 else times[0]
    del unet, optimizer, ema_copy, params
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return f"{peak:7.2f} GiB  {step:8.2f} s/step  ({trained / 1e6:.2f} M trained, {len(times)} steps)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scale", type=int, default=1, help="divide the UNet's widths (1 = SD 1.5 exactly)")
    parser.add_argument("--steps", type=int, default=4, help="steps a row; the first is left out of the mean")
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here; use --device cpu for the dry run")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {name}; UNet scale {args.scale}; 1 video x {FRAMES} frames x {LATENT}x{LATENT} latents, bf16 autocast")
    print(f"{'row':16s} {'checkpointing':13s} {'ema':4s} peak / seconds a step")
    for row, checkpointing, ema in itertools.product(args.rows, (True, False), (True, False)):
        result = run_row(row, checkpointing, ema, args, device)
        print(f"{row:16s} {str(checkpointing):13s} {str(ema):4s} {result}", flush=True)


if __name__ == "__main__":
    main()
