"""Latent (Stable Diffusion 1.5) training: throughput and peak memory with and without gradient checkpointing.

    python benchmarks/bench_latent.py --pretrained pretrained/stable-diffusion-v1-5   # the real SD 1.5
    python benchmarks/bench_latent.py                  # no SD on disk: an SD-shaped UNet at reduced width

Each setting runs in its own process, so its peak memory is its own: on CUDA
``torch.cuda.max_memory_allocated`` (bf16 autocast, as ``precision: bf16-mixed``), on CPU the
process's peak resident set size (``resource.getrusage``; fp32; it includes the Python
runtime and the loaded libraries, so compare the two settings, not absolute values).
One step = ``--videos`` videos of ``--frames`` 128-px frames through the VAE encoder (no
latent cache), the UNet forward and backward, and Adam, like one training step of
configs/mug.yaml on one GPU. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def build_sd_shaped_folder(root: Path, width: int) -> Path:
    """An SD-1.5-shaped folder at reduced width: SD's block layout, CLIP width 768, 8x VAE."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.tiny_sd import write_clip_tokenizer

    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=2, cross_attention_dim=768,
        block_out_channels=(width, 2 * width, 4 * width, 4 * width), attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    ).save_pretrained(root / "unet")
    AutoencoderKL(block_out_channels=(32, 64, 64, 64), down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=32,
                  scaling_factor=0.18215).save_pretrained(root / "vae")
    text = CLIPTextConfig(vocab_size=74, hidden_size=768, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2, bos_token_id=72, eos_token_id=73, pad_token_id=73)
    CLIPTextModel(text).save_pretrained(root / "text_encoder")
    write_clip_tokenizer(root / "tokenizer")
    DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).save_pretrained(root / "scheduler")
    return root


def run_one(pretrained: str, checkpointing: bool, videos: int, frames: int, steps: int, device: str) -> dict:
    from s2dm_lightning.flow_format import identity_condition
    from s2dm_lightning.models import S2DM

    model = S2DM(pretrained=pretrained, flow_fusion="tokens", flow_size=16, sample_size=16,
                 gradient_checkpointing=checkpointing, frames_per_step=None).to(device)
    model.setup("fit")
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=2e-5)
    batch = {
        "frames": torch.rand(videos, frames, 3, 128, 128, device=device) * 2 - 1,
        "flow": identity_condition(16, 16).expand(videos, frames, 3, 16, 16).clone().to(device),
        "caption": ["Person 020 is making fear expression"] * videos,
        "video_id": [str(i) for i in range(videos)],
    }
    cuda = device.startswith("cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)
    generator = torch.Generator(device=device).manual_seed(0)
    for step in range(steps + 2):
        if step == 2:  # two warm-up steps (allocator, kernels)
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
        with autocast:
            loss = model.diffusion_loss(batch, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    if cuda:
        peak, kind = torch.cuda.max_memory_allocated() / 2**30, "CUDA max_memory_allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "CPU peak RSS"
    return {"gradient_checkpointing": checkpointing, "seconds_per_step": seconds, "videos_per_s": videos / seconds,
            "frames_per_s": videos * frames / seconds, "peak_gib": peak, "memory": kind,
            "unet_parameters_M": sum(p.numel() for p in model.unet.parameters()) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", default=None, help="a local SD 1.5 folder; default: an SD-shaped stand-in")
    parser.add_argument("--width", type=int, default=64, help="stand-in UNet's first block width (SD 1.5: 320)")
    parser.add_argument("--videos", type=int, default=1, help="videos per step (paper: 1 per GPU)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed steps after 2 warm-up steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: one setting, JSON out
    args = parser.parse_args()

    if args.child is not None:
        result = run_one(args.pretrained, args.child == "on", args.videos, args.frames, args.steps, args.device)
        print("RESULT " + json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        pretrained = args.pretrained or str(build_sd_shaped_folder(Path(tmp) / "sd", args.width))
        label = args.pretrained or f"SD-shaped stand-in (width {args.width}; SD 1.5 is 320)"
        print(f"model: {label}; device: {args.device}; {args.videos} video(s) x {args.frames} frames at 128 px a step")
        for setting in ("off", "on"):
            command = [sys.executable, __file__, "--child", setting, "--pretrained", pretrained,
                       "--videos", str(args.videos), "--frames", str(args.frames), "--steps", str(args.steps),
                       "--device", args.device]
            out = subprocess.run(command, capture_output=True, text=True, check=False)
            lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            if out.returncode != 0 or not lines:
                print(f"gradient checkpointing {setting}: FAILED\n{out.stderr[-2000:]}")
                continue
            r = json.loads(lines[-1][len("RESULT "):])
            print(f"gradient checkpointing {setting:>3}: {r['seconds_per_step']:.3f} s/step, "
                  f"{r['videos_per_s']:.2f} videos/s, {r['frames_per_s']:.1f} frames/s, "
                  f"{r['memory']} {r['peak_gib']:.2f} GiB (UNet {r['unet_parameters_M']:.1f} M parameters)")


if __name__ == "__main__":
    main()
