"""A tiny Stable-Diffusion-1.5-shaped folder, written with ``save_pretrained`` (no download).

Same layout and classes as the real ``stable-diffusion-v1-5`` folder -- ``unet/``, ``vae/``
(4 blocks: 8x downsampling, scaling_factor 0.18215), ``text_encoder/`` (a CLIPTextModel of
width 768 = SD 1.5's, one layer), ``tokenizer/`` (vocab.json + merges.txt +
tokenizer_config.json, as SD ships it) and ``scheduler/`` (SD 1.5's PNDM config) -- so
it is loaded through exactly the code path of the real folder, only with tiny layers.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

SD_TEXT_WIDTH = 768
SD_SCALING_FACTOR = 0.18215
SPECIAL = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
           "unk_token": "<|endoftext|>"}


def write_clip_tokenizer(folder: Path) -> Path:
    """CLIP's byte-level BPE files with a character vocabulary (no merges), SD's file layout."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "special_tokens_map.json").write_text(json.dumps(SPECIAL))
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, **SPECIAL}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def tiny_sd_unet(cross_dim: int = SD_TEXT_WIDTH, sample_size: int = 4) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=cross_dim,
        attention_head_dim=4,
        norm_num_groups=4,
    )


def tiny_sd_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=SD_SCALING_FACTOR,
    )


def tiny_clip_text_model(width: int = SD_TEXT_WIDTH, vocab_size: int = 74) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=77,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )
    return CLIPTextModel(config)


def sd15_scheduler() -> PNDMScheduler:
    """SD 1.5's scheduler/scheduler_config.json values."""
    return PNDMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        set_alpha_to_one=False,
        skip_prk_steps=True,
        steps_offset=1,
    )


def make_tiny_sd_folder(root: Path, seed: int = 0, skip: tuple[str, ...] = ()) -> Path:
    """Write the tiny SD folder under ``root`` (leaving out the sub-folders named in ``skip``)."""
    torch.manual_seed(seed)
    parts = {
        "unet": tiny_sd_unet,
        "vae": tiny_sd_vae,
        "text_encoder": tiny_clip_text_model,
        "scheduler": sd15_scheduler,
    }
    for name, build in parts.items():
        if name not in skip:
            build().save_pretrained(root / name)
    if "tokenizer" not in skip:
        write_clip_tokenizer(root / "tokenizer")
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return root
