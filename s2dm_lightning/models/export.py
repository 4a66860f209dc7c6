"""A trained S2DM as a self-contained folder, and the ``export`` subcommand.

Layout (the Stable Diffusion folder layout plus two files, so the same loaders read it)::

    folder/
      unet/                      UNet2DConditionModel (conv_in already grown for concat/both)
      vae/                       AutoencoderKL (absent for pixel-space models)
      text_encoder/, tokenizer/  the CLIP text encoder (MiniLM: text_encoder/ holds both)
      scheduler/                 the training noise schedule (DDPM config)
      flow_conditioner.safetensors   flow-token projection / null tokens / positions
      s2dm.json                  {"format": 1, "settings": the S2DM arguments, "text_encoder": {...}, "vae": bool}

``S2DM.from_pretrained(folder)`` rebuilds the model from these files alone (no training
config). From a checkpoint trained with the EMA callback, the exported weights are the
EMA weights (the callback stores them as the checkpoint's ``state_dict``).

    python -m s2dm_lightning export --config configs/mug.yaml --ckpt_path last --output_dir exports/mug
"""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors.torch import save_file

from s2dm_lightning import __version__
from s2dm_lightning.io import atomic_folder
from s2dm_lightning.models.pretrained import PretrainedFolderError, load_noise_scheduler, load_unet, load_vae
from s2dm_lightning.models.text_encoder import CachedTextEncoder, CLIPTextEncoder, MiniLMTextEncoder
from s2dm_lightning.safe_load import load_checkpoint_state_dict, load_safetensors

if TYPE_CHECKING:
    from s2dm_lightning.models.s2dm import S2DM

EXPORT_FORMAT = 1
SETTINGS_FILE = "s2dm.json"
FLOW_FILE = "flow_conditioner.safetensors"
# Arguments that describe where the networks came from or how training ran, not the model.
_NOT_EXPORTED = ("pretrained", "vae_path", "gradient_checkpointing", "latent_cache_dir")


def _text_encoder_spec(encoder: CachedTextEncoder) -> dict[str, Any]:
    if isinstance(encoder, CLIPTextEncoder):
        return {"class": "CLIPTextEncoder", "max_length": encoder.max_length, "saved": True}
    if isinstance(encoder, MiniLMTextEncoder):
        return {"class": "MiniLMTextEncoder", "max_length": encoder.max_length, "saved": True}
    return {"class": f"{type(encoder).__module__}.{type(encoder).__qualname__}", "saved": False}


def save_pretrained(model: S2DM, folder: str | Path) -> Path:
    """Write ``model`` to ``folder`` (replaced as a whole, atomically: a temp folder, then a rename)."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not (folder / SETTINGS_FILE).is_file():
        raise FileExistsError(f"'{folder}' exists and is not an exported S2DM; choose an empty or new folder")
    with atomic_folder(folder) as tmp:
        model.unet.save_pretrained(tmp / "unet")
        if model.vae is not None:
            model.vae.save_pretrained(tmp / "vae")
        spec = _text_encoder_spec(model.text_encoder)
        if spec["saved"]:
            model.text_encoder.save_pretrained(tmp)
        model.noise_scheduler.save_pretrained(tmp / "scheduler")
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.flow_conditioner.state_dict().items()}
        save_file(tensors, tmp / FLOW_FILE)
        accepted = inspect.signature(type(model).__init__).parameters  # hparams may hold e.g. the CLI's _class_path
        settings = {k: v for k, v in dict(model.hparams).items() if k in accepted and k not in _NOT_EXPORTED}
        meta = {"format": EXPORT_FORMAT, "package_version": __version__, "settings": settings,
                "text_encoder": spec, "vae": model.vae is not None}
        (tmp / SETTINGS_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
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
    from s2dm_lightning.models.s2dm import S2DM

    folder = Path(folder)
    if not (folder / SETTINGS_FILE).is_file():
        raise PretrainedFolderError(f"'{folder}' has no {SETTINGS_FILE}: not a folder written by S2DM.save_pretrained")
    meta = json.loads((folder / SETTINGS_FILE).read_text())
    if meta.get("format") != EXPORT_FORMAT:
        raise ValueError(f"'{folder / SETTINGS_FILE}' has format {meta.get('format')}, this version reads {EXPORT_FORMAT}")
    key = f"S2DM folder '{folder}'"
    if text_encoder is None:
        spec = meta["text_encoder"]
        if spec["class"] == "CLIPTextEncoder":
            text_encoder = CLIPTextEncoder(str(folder), max_length=spec["max_length"])
        elif spec["class"] == "MiniLMTextEncoder":
            text_encoder = MiniLMTextEncoder(str(folder / "text_encoder"), max_length=spec["max_length"])
        else:
            raise ValueError(f"{key} was exported with a text encoder of class {spec['class']} that is not saved; "
                             "pass text_encoder=... to from_pretrained")
    model = S2DM(
        unet=load_unet(folder, key),
        text_encoder=text_encoder,
        noise_scheduler=load_noise_scheduler(folder, key, clip_sample=None),
        vae=load_vae(folder, key) if meta["vae"] else None,
        **{**meta["settings"], **overrides},
    )
    model.flow_conditioner.load_state_dict(load_safetensors(folder / FLOW_FILE))
    return model.eval()


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
    parser.add_argument("--output_dir", required=True, help="folder to write (S2DM.from_pretrained loads it)")
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
