"""The SD 1.5 recipe at real size: a random-init SD 1.5 folder, its byte breakdown, and the real CLI on it.

    OMP_NUM_THREADS=2 flock -x /tmp/s2dm-mem.lock .venv/bin/python benchmarks/real_size.py --stage bytes
    OMP_NUM_THREADS=2 flock -x /tmp/s2dm-mem.lock .venv/bin/python benchmarks/real_size.py --stage cli --steps 3
    .venv/bin/python benchmarks/real_size.py --scale 10 --stage all     # the scaled-down copy (smoke test)

The folder has SD 1.5's exact architecture (configs below are the published values of each part:
unet/, vae/, text_encoder/ CLIP ViT-L/14 text tower, scheduler/ PNDM) with random weights, since
nothing can be downloaded here; tokenizer/ is a small self-made character vocabulary, while the
text encoder keeps CLIP's 49408-token embedding. ``--scale k`` divides every channel width (and
the text tower's depth) by k: same code, small enough for a test.

``--stage bytes`` counts bytes from the real objects: fp32 weights, gradients, the state each
optimizer really allocates after one step on the real UNet parameters, the EMA copy, LoRA
adapter sizes from the real attention projections, and the activations one forward saves for
backward at 1 video x 16 frames x 16 x 16 latents (a saved-tensor hook sums the unique storages),
with and without gradient checkpointing. ``--stage cli`` runs ``fit`` (configs/mug.yaml,
--trainer.devices=1, validation off), ``predict`` one video (20 DDIM steps, guidance 7.5 from the
config), ``export`` and S2DMPipeline.from_pretrained on 128-px generated clips in MUG's layout, and
reports seconds per step (Lightning's SimpleProfiler) and each child's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GIB = 2 ** 30
# Published parameter counts of SD 1.5's parts (millions), checked at --scale 1.
KNOWN_MILLIONS = {"unet": 859.52, "vae": 83.65, "text_encoder": 123.06}
CLIP_VOCAB = 49408
FRAMES, LATENT = 16, 16  # the paper's 1 video x 16 frames per GPU; 128-px frames -> 16 x 16 latents


def _scaled(widths: tuple[int, ...], scale: int) -> tuple[int, ...]:
    return tuple(w // scale for w in widths)


def unet_config(scale: int = 1) -> dict:
    """SD 1.5's unet/config.json (attention_head_dim 8 = 8 heads per block in diffusers' naming)."""
    return dict(
        sample_size=64, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True,
        freq_shift=0, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=_scaled((320, 640, 1280, 1280), scale), layers_per_block=2,
        downsample_padding=1, mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32 if scale == 1 else 4,
        norm_eps=1e-5, cross_attention_dim=768, attention_head_dim=8,
    )


def vae_config(scale: int = 1) -> dict:
    """SD 1.5's vae/config.json."""
    return dict(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=_scaled((128, 256, 512, 512), scale),
        layers_per_block=2, act_fn="silu", latent_channels=4, norm_num_groups=32 if scale == 1 else 4,
        sample_size=512, scaling_factor=0.18215,
    )


def text_config(scale: int = 1, bos: int = CLIP_VOCAB - 2, eos: int = CLIP_VOCAB - 1) -> dict:
    """CLIP ViT-L/14's text tower. The width stays 768 at every scale (S2DM's flow token is 16 x 16 x 3 = 768)."""
    return dict(
        vocab_size=CLIP_VOCAB, hidden_size=768, intermediate_size=3072 // scale,
        num_hidden_layers=max(1, 12 // scale), num_attention_heads=12, max_position_embeddings=77,
        hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768,
        bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
    )


def scheduler_config() -> dict:
    """SD 1.5's scheduler/scheduler_config.json (PNDM; DDIM reads the same betas)."""
    return dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1)


def write_tokenizer(folder: Path) -> dict[str, int]:
    """The tiny CLIP tokenizer of the tests; its two special tokens are given CLIP's ids 49406/49407."""
    from tests.tiny_sd import write_clip_tokenizer

    write_clip_tokenizer(folder)
    vocab = json.loads((folder / "vocab.json").read_text())
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = CLIP_VOCAB - 2, CLIP_VOCAB - 1
    (folder / "vocab.json").write_text(json.dumps(vocab))
    return vocab


def make_sd15_folder(root: Path, scale: int = 1, seed: int = 0) -> Path:
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    write_tokenizer(root / "tokenizer")
    for name, build in (("unet", lambda: UNet2DConditionModel(**unet_config(scale))),
                        ("vae", lambda: AutoencoderKL(**vae_config(scale))),
                        ("text_encoder", lambda: CLIPTextModel(CLIPTextConfig(**text_config(scale))))):
        part = build()
        part.save_pretrained(root / name)
        del part
    PNDMScheduler(**scheduler_config()).save_pretrained(root / "scheduler")
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return root


def parameter_counts(root: Path) -> dict[str, int]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    counts = {}
    for name, cls in (("unet", UNet2DConditionModel), ("vae", AutoencoderKL), ("text_encoder", CLIPTextModel)):
        part = cls.from_pretrained(root / name)
        counts[name] = sum(p.numel() for p in part.parameters())
        del part
    return counts


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))


def optimizer_state_bytes(params: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer) -> int:
    """What ``optimizer`` really allocates: one step on zero gradients, then the bytes of its state."""
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer.step()
    size = sum(tensor_bytes(state.values()) for state in optimizer.state.values())
    for p in params:
        p.grad = None
    return size


def lora_parameters(unet: torch.nn.Module, rank: int) -> int:
    """peft's LoRA on the attention projections (to_q, to_k, to_v, to_out.0): A (r x in) + B (out x r) each."""
    targets = ("to_q", "to_k", "to_v", "to_out.0")
    return sum(rank * (m.in_features + m.out_features) for name, m in unet.named_modules()
               if isinstance(m, torch.nn.Linear) and name.endswith(targets))


def saved_activation_bytes(unet: torch.nn.Module, checkpointing: bool, batch: int = FRAMES,
                           latent: int = LATENT) -> int:
    """Bytes one bf16-autocast forward keeps for backward (unique storages), at ``batch`` x 4 x latent^2."""
    unet.train()
    if checkpointing:
        unet.enable_gradient_checkpointing()
    else:
        unet.disable_gradient_checkpointing()
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    sample = torch.randn(batch, 4, latent, latent)
    text = torch.randn(batch, 78, 768)  # 77 text tokens + S2DM's flow token
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            torch.autocast("cpu", dtype=torch.bfloat16):
        out = unet(sample, torch.full((batch,), 500), encoder_hidden_states=text).sample
    del out
    weights = {p.untyped_storage().data_ptr() for p in unet.parameters()}
    return sum(n for ptr, n in storages.items() if ptr not in weights)


def byte_breakdown(root: Path) -> dict[str, int]:
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(root / "unet")
    params = [p for p in unet.parameters()]
    n = sum(p.numel() for p in params)
    report = {"unet_parameters": n, "weights_fp32": tensor_bytes(params), "gradients_fp32": tensor_bytes(params),
              "ema_copy_fp32": tensor_bytes(params)}
    report["adamw_state"] = optimizer_state_bytes(params, torch.optim.AdamW(params, lr=2e-5, weight_decay=0))
    report["adafactor_state"] = optimizer_state_bytes(params, torch.optim.Adafactor(params, lr=2e-5))
    try:
        import bitsandbytes as bnb

        report["adamw8bit_state"] = optimizer_state_bytes(params, bnb.optim.AdamW8bit(params, lr=2e-5))
        report["adamw8bit_source"] = "bitsandbytes.optim.AdamW8bit, one step"
    except ImportError:
        # bitsandbytes' documented layout: 2 uint8 moments per parameter + one fp32 absmax per 256-value
        # block each (block-wise quantisation, Dettmers et al. 2022); tensors under 4096 values stay fp32.
        small = sum(p.numel() for p in params if p.numel() < 4096)
        report["adamw8bit_state"] = 2 * (n - small) + 2 * 4 * ((n - small) // 256) + 8 * small
        report["adamw8bit_source"] = "bitsandbytes' documented layout (not installed here)"
    for rank in (16, 64):
        report[f"lora{rank}_parameters"] = lora_parameters(unet, rank)
    report["activations_checkpointing"] = saved_activation_bytes(unet, checkpointing=True)
    report["activations_no_checkpointing"] = saved_activation_bytes(unet, checkpointing=False)
    return report


# ---------------------------------------------------------------- the real CLI
def run_child(argv: list[str], log: Path) -> tuple[float, float, str]:
    """Run one command; (wall seconds, peak resident GiB of that child, its output)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with open(log, "w") as out:
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    text = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed (exit {os.waitstatus_to_exitcode(status)}); see {log}\n"
                         + text[-3000:])
    return wall, usage.ru_maxrss / 2 ** 20, text  # ru_maxrss is KiB on Linux


def profiled_mean(text: str, action: str) -> float | None:
    """Mean seconds of ``action`` in Lightning's SimpleProfiler table (| action | mean | ...)."""
    match = re.search(rf"\|\s*[^|\n]*{re.escape(action)}[^|\n]*\|\s*([0-9.eE+-]+)", text)
    return float(match.group(1)) if match else None


def write_mug_clips(root: Path, num_frames: int = 20) -> Path:
    """128-px generated clips in MUG's layout: 2 subjects x 2 expressions (one training, the rest held out)."""
    from tests.data.fake_datasets import make_mug_tree

    return make_mug_tree(root, subjects=("001", "020"), expressions=("anger", "fear"), session_subjects=(),
                         num_frames=num_frames, size=128)


def overlay_config(work: Path, steps: int) -> Path:
    """What the benchmark changes in configs/mug.yaml: paths, step count, no validation, no sample callback."""
    mug = yaml.safe_load((REPO / "configs" / "mug.yaml").read_text())
    dropped = ("SampleVideosCallback", "LearningRateMonitor")  # validation samples; no logger to monitor
    callbacks = [c for c in mug["trainer"]["callbacks"] if not c["class_path"].endswith(dropped)]
    for c in callbacks:
        if c["class_path"].endswith("ModelCheckpoint"):
            c["init_args"] = {**c["init_args"], "dirpath": str(work / "checkpoints"), "every_n_train_steps": steps}
        if c["class_path"].endswith("VideoPredictionWriter"):
            c["init_args"] = {**c["init_args"], "output_dir": str(work / "predict")}
    overlay = {
        "trainer": {"accelerator": "cpu", "devices": 1, "strategy": "auto", "max_steps": steps,
                    "limit_val_batches": 0, "logger": False, "default_root_dir": str(work),
                    "enable_progress_bar": False, "profiler": "simple", "callbacks": callbacks},
        "model": {"init_args": {"pretrained": str(work / "sd15"), "vae_path": None,
                                "latent_cache_dir": str(work / "latents")}},
        "data": {"init_args": {"root": str(work / "mug"), "num_workers": 0, "val_videos": 1,
                               "preprocess_workers": 0, "dis_preset": "ultrafast"}},
    }
    path = work / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay, sort_keys=False))
    return path


PIPELINE_SNIPPET = """
import sys, time, torch
from s2dm_lightning.pipelines import S2DMPipeline
from s2dm_lightning.flow_format import identity_condition
pipe = S2DMPipeline.from_pretrained(sys.argv[1])
flows = identity_condition({n}, {n}).repeat({f}, 1, 1, 1)[None]
start = time.perf_counter()
video = pipe("a face showing anger", flows, generator=torch.Generator().manual_seed(0)).frames
print("PIPELINE_SECONDS", time.perf_counter() - start, tuple(video.shape))
"""


def cli_path(work: Path, steps: int) -> dict[str, float]:
    """fit -> predict (one video) -> export -> pipeline, each a child process of the real CLI."""
    python = [sys.executable, "-m", "s2dm_lightning"]
    configs = ["--config", str(REPO / "configs" / "mug.yaml"), "--config", str(overlay_config(work, steps))]
    results: dict[str, float] = {}
    wall, rss, _ = run_child([*python, "preprocess", *configs], work / "preprocess.log")
    results.update(preprocess_s=wall, preprocess_peak_gib=rss)
    wall, rss, text = run_child([*python, "fit", *configs, "--trainer.devices=1"], work / "fit.log")
    results.update(fit_s=wall, fit_peak_gib=rss, step_s=profiled_mean(text, "run_training_batch") or float("nan"))
    last = work / "checkpoints" / "last.ckpt"
    wall, rss, text = run_child([*python, "predict", *configs, f"--ckpt_path={last}",
                                 "--trainer.limit_predict_batches=1", "--data.init_args.batch_size=1"],
                                work / "predict.log")
    results.update(predict_s=wall, predict_peak_gib=rss,
                   predict_video_s=profiled_mean(text, "predict_step") or float("nan"))
    wall, rss, _ = run_child([*python, "export", *configs, f"--ckpt_path={last}", f"--output_dir={work / 'export'}"],
                             work / "export.log")
    results.update(export_s=wall, export_peak_gib=rss)
    snippet = PIPELINE_SNIPPET.format(n=LATENT, f=FRAMES)
    wall, rss, text = run_child([sys.executable, "-c", snippet, str(work / "export")], work / "pipeline.log")
    results.update(pipeline_peak_gib=rss,
                   pipeline_video_s=float(re.search(r"PIPELINE_SECONDS ([0-9.]+)", text).group(1)))
    return results


def print_table(title: str, rows: dict) -> None:
    print(f"\n{title}")
    for key, value in rows.items():
        if isinstance(value, float):
            shown = f"{value:.2f}"
        elif isinstance(value, int) and value > 10 ** 6 and not key.endswith("parameters"):
            shown = f"{value / GIB:.2f} GiB"
        elif isinstance(value, int):
            shown = f"{value / 1e6:.2f} M"
        else:
            shown = str(value)
        print(f"  {key:32s} {shown}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1, help="divide every width by this (1 = SD 1.5 exactly)")
    parser.add_argument("--stage", choices=("bytes", "cli", "all"), default="all")
    parser.add_argument("--steps", type=int, default=3, help="training steps of fit")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    print(f"threads: torch {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    with tempfile.TemporaryDirectory(prefix="real_size_") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        make_sd15_folder(work / "sd15", scale=args.scale)
        counts = parameter_counts(work / "sd15")
        print_table(f"parameters (scale {args.scale})", {f"{k}_parameters": v for k, v in counts.items()})
        results: dict = {"scale": args.scale, "parameters": counts}
        if args.scale == 1:
            for name, millions in KNOWN_MILLIONS.items():
                if abs(counts[name] / 1e6 - millions) > 0.01:
                    raise SystemExit(f"{name}: {counts[name] / 1e6:.2f} M parameters, SD 1.5 has {millions} M")
            print("  parameter counts match SD 1.5's published values")
        if args.stage in ("bytes", "all"):
            results["bytes"] = byte_breakdown(work / "sd15")
            print_table("bytes of the real objects (UNet trained, 1 video x 16 frames x 16x16 latents)",
                        results["bytes"])
        if args.stage in ("cli", "all"):
            write_mug_clips(work / "mug")
            results["cli"] = cli_path(work, args.steps)
            print_table("real CLI (configs/mug.yaml, devices 1, no validation)", results["cli"])
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
