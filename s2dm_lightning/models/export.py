"""A trained S2DM as a diffusers pipeline folder: writing and loading it (the command: ``commands/export.py``).

The folder is the one written by ``S2DMPipeline.save_pretrained`` (diffusers' layout:
``model_index.json`` + safetensors sub-folders, see :mod:`s2dm_lightning.pipelines.s2dm_pipeline`).
``S2DMPipeline.from_pretrained(folder)`` samples from it; :func:`load_pretrained` rebuilds the S2DM
LightningModule from it alone (no training config). From a checkpoint trained with the EMA
callback, the exported weights are the EMA weights (the callback stores them as the checkpoint's
``state_dict``). A LoRA model is written merged (``lora="merged"``: a plain UNet) or as its base UNet with
the adapter in ``unet_lora/`` (``lora="adapter"``), which ``S2DMPipeline.from_pretrained`` puts back on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from s2dm_lightning.io import atomic_folder
from s2dm_lightning.models.text_encoder import CachedTextEncoder
from s2dm_lightning.training.lora import LORA_FOLDER, LoraExport, unet_for_export

if TYPE_CHECKING:
    from s2dm_lightning.models.s2dm import S2DM

INDEX_FILE = "model_index.json"


def save_pretrained(model: S2DM, folder: str | Path, lora: LoraExport = "merged") -> Path:
    """Write ``model`` to ``folder`` (replaced as a whole, atomically: a temp folder, then a rename); ``lora``:
    how a LoRA UNet is written (module doc)."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not (folder / INDEX_FILE).is_file():
        raise FileExistsError(f"'{folder}' exists and is not an exported S2DM; choose an empty or new folder")
    with atomic_folder(folder) as tmp:
        from s2dm_lightning.pipelines.s2dm_pipeline import S2DMPipeline

        unet = unet_for_export(model.unet, lora, Path(tmp) / LORA_FOLDER)
        S2DMPipeline.from_s2dm(model, unet=unet).save_pretrained(tmp)
    return folder


def load_pretrained(
    folder: str | Path, text_encoder: CachedTextEncoder | None = None, **overrides: Any
) -> S2DM:
    """Rebuild an S2DM from a folder written by :func:`save_pretrained` (in eval mode, on CPU).

    Args:
        folder: the exported folder.
        text_encoder: needed only when the model's encoder was not saved (a custom class).
        overrides: S2DM settings to change, e.g. ``num_inference_steps=50``, ``guidance_scale=5``.
    """
    from s2dm_lightning.pipelines.s2dm_pipeline import S2DMPipeline

    return S2DMPipeline.from_pretrained(folder, prompt_encoder=text_encoder).to_s2dm(**overrides)
