"""A trained S2DM as a diffusers pipeline folder, and the ``export`` subcommand.

The folder is the one written by ``S2DMPipeline.save_pretrained`` (diffusers' layout:
``model_index.json`` + safetensors sub-folders, see :mod:`s2dm_lightning.pipelines.s2dm_pipeline`).
``S2DMPipeline.from_pretrained(folder)`` samples from it; ``S2DM.from_pretrained(folder)`` rebuilds
the LightningModule from it alone (no training config). From a checkpoint trained with the EMA
callback, the exported weights are the EMA weights (the callback stores them as the checkpoint's
``state_dict``).

    python -m s2dm_lightning export --config configs/mug.yaml --ckpt_path last --output_dir exports/mug
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s2dm_lightning.io import atomic_folder
from s2dm_lightning.models.text_encoder import CachedTextEncoder
from s2dm_lightning.safe_load import load_checkpoint_state_dict

if TYPE_CHECKING:
    from s2dm_lightning.models.s2dm import S2DM

INDEX_FILE = "model_index.json"


def save_pretrained(model: S2DM, folder: str | Path) -> Path:
    """Write ``model`` to ``folder`` (replaced as a whole, atomically: a temp folder, then a rename)."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not (folder / INDEX_FILE).is_file():
        raise FileExistsError(f"'{folder}' exists and is not an exported S2DM; choose an empty or new folder")
    with atomic_folder(folder) as tmp:
        from s2dm_lightning.pipelines.s2dm_pipeline import S2DMPipeline

        S2DMPipeline.from_s2dm(model).save_pretrained(tmp)
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


def _find_last_checkpoint(root: str | Path) -> Path:
    found = sorted(Path(root).rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"--ckpt_path last: no last.ckpt under trainer.default_root_dir='{root}'")
    return found[-1]


def export_main(argv: list[str]) -> Path:
    """``export --config CONFIG [overrides] --ckpt_path CKPT|last --output_dir DIR``.

    Builds the model from the config (as fit does), loads the checkpoint's ``state_dict``
    (the EMA weights when the EMA callback was used) and calls its ``save_pretrained``.
    """
    from s2dm_lightning.cli import S2DMCLI

    parser = argparse.ArgumentParser(prog="python -m s2dm_lightning export", add_help=False)
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint, or 'last' (newest last.ckpt of the run folder)")
    parser.add_argument("--output_dir", required=True, help="folder to write (S2DMPipeline.from_pretrained loads it)")
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
    save = getattr(cli.model, "save_pretrained", None)
    if save is None:
        raise SystemExit(f"export: {type(cli.model).__name__} has no save_pretrained()")
    out = save(known.output_dir)
    print(f"exported {path} -> {out}")
    return Path(out)
