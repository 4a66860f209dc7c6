"""LoRA on the UNet through peft (diffusers' ``add_adapter``), and the two forms it is exported in.

An exported pipeline folder holds either the merged UNet (the adapter's update added into the weights:
a plain diffusers UNet, as fast as the original) or the base UNet with the adapter beside it in
``unet_lora/`` (diffusers' ``save_lora_adapter`` file, which ``S2DMPipeline.from_pretrained`` loads back
with ``load_lora_adapter``): the base stays the pretrained weights, the adapter a small file of its own.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from torch import nn

LORA_ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
LORA_FOLDER = "unet_lora"  # the adapter's sub-folder of an exported pipeline
LoraExport = Literal["merged", "adapter"]
LORA_EXPORTS = ("merged", "adapter")
ADAPTER_NAME = "default"  # peft's and diffusers' default adapter name


def add_lora_adapter(unet: nn.Module, rank: int, alpha: float | None, target_modules: Sequence[str]) -> None:
    """A peft LoRA adapter of ``rank`` (update scaled by alpha / rank; alpha None = rank) on ``target_modules``;
    A starts Gaussian and B zero (``init_lora_weights="gaussian"``, as diffusers' LoRA scripts): the network
    starts as the pretrained one. peft freezes the UNet's own weights."""
    from peft import LoraConfig

    config = LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else rank, init_lora_weights="gaussian",
                        target_modules=list(target_modules))
    unet.add_adapter(config, adapter_name=ADAPTER_NAME)


def has_lora_adapter(unet: nn.Module) -> bool:
    """True when ``unet`` carries a peft adapter."""
    return bool(getattr(unet, "peft_config", None))


def unet_for_export(unet: nn.Module, form: LoraExport, adapter_folder: Path) -> nn.Module:
    """A copy of a LoRA ``unet`` without peft layers: ``merged`` (the update fused into the weights) or the base
    weights, the adapter then written to ``adapter_folder``. A UNet without an adapter is returned as it is."""
    if not has_lora_adapter(unet):
        if form == "adapter":
            raise ValueError("export --lora adapter: the model has no LoRA adapter (model.init_args.lora_rank)")
        return unet
    plain = copy.deepcopy(unet)
    if form == "merged":
        plain.fuse_lora()
    else:
        unet.save_lora_adapter(str(adapter_folder), adapter_name=ADAPTER_NAME)
    plain.unload_lora()  # the peft layers out: merged weights, or the untouched base
    return plain


def load_exported_adapter(unet: nn.Module, folder: Path) -> None:
    """Put the adapter of an exported pipeline folder (``unet_lora/``, if any) onto its base ``unet``."""
    adapter = Path(folder) / LORA_FOLDER
    if adapter.is_dir():
        unet.load_lora_adapter(str(adapter), prefix=None, adapter_name=ADAPTER_NAME, use_safetensors=True)
