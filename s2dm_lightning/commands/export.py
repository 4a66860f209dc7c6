"""``python -m s2dm_lightning export``: a trained model as a self-contained diffusers pipeline folder.

    python -m s2dm_lightning export --config configs/mug.yaml --ckpt_path last --output_dir exports/mug

The folder and its loading: :mod:`s2dm_lightning.models.export`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lightning.pytorch import LightningModule

from s2dm_lightning.commands.lightning import S2DMCLI
from s2dm_lightning.models.export import save_pretrained
from s2dm_lightning.models.s2dm import S2DM
from s2dm_lightning.safe_load import load_checkpoint_state_dict
from s2dm_lightning.training import LORA_EXPORTS, LoraExport


def _find_last_checkpoint(root: str | Path) -> Path:
    found = sorted(Path(root).rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"--ckpt_path last: no last.ckpt under trainer.default_root_dir='{root}'")
    return found[-1]


def main(argv: list[str]) -> Path:
    """``export --config CONFIG [overrides] --ckpt_path CKPT|last --output_dir DIR``.

    Builds the model from the config (as fit does), loads the checkpoint's ``state_dict``
    (the EMA weights when the EMA callback was used) and writes it with :func:`write_folder`.
    """
    parser = argparse.ArgumentParser(prog="python -m s2dm_lightning export", add_help=False)
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint, or 'last' (newest last.ckpt of the run folder)")
    parser.add_argument("--output_dir", required=True, help="folder to write (S2DMPipeline.from_pretrained loads it)")
    parser.add_argument("--lora", choices=LORA_EXPORTS, default="merged",
                        help="a LoRA model (model.init_args.lora_rank): 'merged' = the adapter fused into the UNet "
                             "(default), 'adapter' = the base UNet plus the adapter in unet_lora/ (loaded back "
                             "by S2DMPipeline.from_pretrained)")
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        print("  plus --config CONFIG.yaml and any fit-style overrides")
        raise SystemExit(0)
    known, rest = parser.parse_known_args(argv)
    # One process on any machine: a 4-GPU training config must still export on a laptop.
    cli = S2DMCLI(args=[*rest, "--trainer.devices=1", "--trainer.strategy=auto", "--trainer.logger=false"], run=False)
    ckpt = known.ckpt_path
    path = _find_last_checkpoint(cli.trainer.default_root_dir) if ckpt == "last" else Path(ckpt)
    cli.model.load_state_dict(load_checkpoint_state_dict(path, "--ckpt_path"))  # pickle-free: may come from others
    out = write_folder(cli.model, known.output_dir, known.lora)
    print(f"exported {path} -> {out}")
    return Path(out)


def write_folder(model: LightningModule, folder: str | Path, lora: LoraExport = "merged") -> Path:
    """An S2DM as a pipeline folder (:func:`s2dm_lightning.models.export.save_pretrained`); any other module
    through its own ``save_pretrained(folder)`` (e.g. the fine-tuned VAE of ``configs/*_vae.yaml``)."""
    if isinstance(model, S2DM):
        return save_pretrained(model, folder, lora)
    save = getattr(model, "save_pretrained", None)
    if save is None:
        raise SystemExit(f"export: {type(model).__name__} has no save_pretrained()")
    return Path(save(folder))
