"""The layout of a local diffusers Stable Diffusion folder (``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``,
``scheduler/``) and the check of one sub-folder, shared by the loaders of :mod:`.pretrained` and :mod:`.text_encoder`."""

from __future__ import annotations

from pathlib import Path

SD_SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


class PretrainedFolderError(FileNotFoundError):
    """A pretrained folder (or one of its sub-folders) is missing or incomplete."""


def pretrained_subfolder(root: str | Path, name: str, key: str = "model.pretrained") -> Path:
    """``root/name`` with a config file, or a :class:`PretrainedFolderError` naming what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise PretrainedFolderError(
            f"{key}={str(root)!r} is not a folder (resolved: '{root.resolve()}'); set it to a local "
            f"diffusers Stable Diffusion folder with the sub-folders {', '.join(s + '/' for s in SD_SUBFOLDERS)}"
        )
    folder = root / name
    if not folder.is_dir():
        present = sorted(p.name + "/" for p in root.iterdir() if p.is_dir())
        raise PretrainedFolderError(
            f"{key}={str(root)!r} has no '{name}/' sub-folder (it has: {', '.join(present) or 'none'}); "
            f"a diffusers Stable Diffusion folder holds {', '.join(s + '/' for s in SD_SUBFOLDERS)}. "
            f"Copy the missing part, or give model.{_component_key(name)} explicitly in the config"
        )
    config = "scheduler_config.json" if name == "scheduler" else "config.json"
    if name != "tokenizer" and not (folder / config).is_file():
        raise PretrainedFolderError(f"'{folder}' has no {config} ({key}={str(root)!r} is incomplete)")
    if name == "tokenizer" and not any((folder / f).is_file() for f in ("vocab.json", "tokenizer.json")):
        raise PretrainedFolderError(
            f"'{folder}' has neither vocab.json (+ merges.txt) nor tokenizer.json ({key}={str(root)!r} is incomplete)"
        )
    return folder


def _component_key(name: str) -> str:
    return {"scheduler": "noise_scheduler", "tokenizer": "text_encoder"}.get(name, name)
