"""A run's saved config: build its ``model`` or ``data`` section (``class_path`` + ``init_args``) from the YAML.

Reads a ``fit`` config or the ``config.yaml`` LightningCLI saves beside a run's logs, without the
command line (for scripts, notebooks, benchmarks and the ``sample`` command).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import yaml

from s2dm_lightning.safe_load import load_checkpoint


def _build_section(config_path: str | Path, section: str, base: type, overrides: dict[str, Any] | None = None):
    """Instantiate one ``class_path``/``init_args`` section (``model`` or ``data``) of an experiment YAML."""
    from jsonargparse import ArgumentParser

    config_path = Path(config_path)
    if not config_path.is_file():
        raise FileNotFoundError(f"{section} config {config_path} does not exist")
    config = yaml.safe_load(config_path.read_text()) or {}
    if section not in config:
        raise ValueError(f"{config_path} has no '{section}' section")
    value = dict(config[section])
    if overrides:
        value["init_args"] = {**value.get("init_args", {}), **overrides}
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(base, section, required=True)
    try:
        return getattr(parser.instantiate(parser.parse_object({section: value})), section)
    except Exception as error:
        raise ValueError(f"could not build the {section} section of {config_path}: {error}") from error


def load_datamodule(config_path: str | Path, **overrides: Any) -> L.LightningDataModule:
    """Build the ``data`` section of an experiment YAML (a ``fit`` config or a run's saved ``config.yaml``).

    ``overrides`` replace init arguments, e.g. ``batch_size=4``.
    """
    return _build_section(config_path, "data", L.LightningDataModule, overrides)


def load_module(
    config_path: str | Path, checkpoint_path: str | Path | None, expected: type[L.LightningModule],
    checkpoint_key: str | None = None,
):
    """Build the ``model`` section of an experiment YAML and load a Lightning checkpoint into it.

    Only ``model`` is read (a ``fit`` config, or the ``config.yaml`` LightningCLI saves beside the
    logs); trainer and data sections are ignored, no seed is set. ``checkpoint_path`` None keeps
    the freshly initialised weights; the module's ``on_load_checkpoint`` sees the whole checkpoint, as in
    Lightning. The module is returned in eval mode on the CPU. The checkpoint is
    loaded pickle-free (:func:`s2dm_lightning.safe_load.load_checkpoint_state_dict`); errors name it and
    ``checkpoint_key`` (the option that gave it, e.g. ``--s2dm_ckpt``).
    """
    module = _build_section(config_path, "model", L.LightningModule)
    if not isinstance(module, expected):
        raise TypeError(f"{config_path} builds a {type(module).__name__}, expected a {expected.__name__}")
    if checkpoint_path is not None:
        checkpoint_path = Path(checkpoint_path)
        if not checkpoint_path.is_file():
            raise FileNotFoundError(f"checkpoint {checkpoint_path} does not exist")
        checkpoint = load_checkpoint(checkpoint_path, checkpoint_key)
        try:
            module.load_state_dict(checkpoint["state_dict"], strict=True)
        except RuntimeError as error:
            raise ValueError(
                f"checkpoint {checkpoint_path} does not fit the model of {config_path} (was it trained with "
                f"another config?): {error}"
            ) from error
        module.on_load_checkpoint(checkpoint)  # as Lightning does: e.g. the frame geometry it was trained under
    return module.eval()
