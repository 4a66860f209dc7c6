"""The checkpoint-vs-config rule of ``fit/validate/test/predict --ckpt_path CKPT``.

LightningCLI on its own merges the hyperparameters stored in the checkpoint over the config and
the command line without a word, so ``--model.init_args.guidance_scale=3`` is ignored and a
config that differs from the run reports an error about a value the user never wrote. Here:

* settings that fix the network (the module's ``ARCHITECTURE_HPARAMS``; without that attribute,
  every nested ``class_path`` such as ``unet``) must be the checkpoint's: a difference stops the
  command with one line per key giving both values and the override that fixes it. The
  checkpoint's settings are its hyperparameters plus the ``model`` of the run's ``config.yaml``
  (``<run>/checkpoints/x.ckpt`` -> ``<run>/config.yaml``), which also holds the nested networks the
  hyperparameters leave out; without that file, :func:`shape_mismatches` still refuses weights that
  do not fit, naming the parameters;
* every other setting (sampling, guidance, learning rate, paths) comes from the config and the
  command line; one line per difference says so and gives the checkpoint's value;
* the frame geometry the checkpoint was trained under (``data.geometry``) must be the data module's.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from s2dm_lightning.commands.errors import CommandLineError

CLASS_PATH = "_class_path"  # how LightningCLI stores the model's class_path among its hyperparameters


class CheckpointConfigConflict(CommandLineError):
    """The config describes another network than the one whose weights the checkpoint holds."""


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"unet": {"init_args": {"in_channels": 6}}}`` -> ``{"unet.init_args.in_channels": 6}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def model_settings(model_config: dict[str, Any]) -> dict[str, Any]:
    """The config's ``model`` section ({class_path, init_args}) in the checkpoint's layout ({_class_path, ...})."""
    if "class_path" not in model_config:
        return dict(model_config)
    return {CLASS_PATH: model_config["class_path"], **(model_config.get("init_args") or {}),
            **(model_config.get("dict_kwargs") or {})}


def architecture_keys(class_path: str | None, checkpoint: dict[str, Any]) -> tuple[str, ...]:
    """The module's ``ARCHITECTURE_HPARAMS``, else every hyperparameter that is itself a class (``unet``, ...)."""
    if class_path:
        module_name, _, class_name = class_path.rpartition(".")
        try:
            declared = getattr(importlib.import_module(module_name), class_name).ARCHITECTURE_HPARAMS
        except (ImportError, AttributeError):
            declared = None
        if declared is not None:
            return (CLASS_PATH, *declared)
    nested = tuple(k for k, v in checkpoint.items() if isinstance(v, dict) and "class_path" in v)
    return (CLASS_PATH, *nested)


def _is_under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _option(key: str) -> str:
    return "model.class_path" if key == CLASS_PATH else f"model.init_args.{key}"


def _value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def report(notes: list[str]) -> None:
    for line in notes:
        print(line, file=sys.stderr)


def run_config_path(ckpt_path: str | Path) -> Path:
    """``<run>/config.yaml`` for ``<run>/checkpoints/x.ckpt`` (where LightningCLI saves a run's config)."""
    return Path(ckpt_path).resolve().parent.parent / "config.yaml"


def checkpoint_settings(checkpoint_hparams: dict[str, Any], ckpt_path: str | Path) -> dict[str, Any]:
    """The model settings the checkpoint was trained with: the run's saved ``model`` (when its config.yaml
    is there and names the same class) updated with the checkpoint's hyperparameters."""
    hparams = {k: v for k, v in checkpoint_hparams.items() if k != "_instantiator"}
    saved: dict[str, Any] = {}
    run_config = run_config_path(ckpt_path)
    if run_config.is_file():
        try:
            saved = model_settings((yaml.safe_load(run_config.read_text()) or {}).get("model") or {})
        except (OSError, yaml.YAMLError):
            saved = {}
        if hparams.get(CLASS_PATH, saved.get(CLASS_PATH)) != saved.get(CLASS_PATH):
            saved = {}  # a config.yaml of another model (a later run in the same folder): not this checkpoint's
    return {**saved, **hparams}


def shape_mismatches(checkpoint_state: dict[str, Any], model_state: dict[str, Any]) -> list[str]:
    """One line per weight whose shape in the checkpoint differs from the instantiated model's."""
    return [f"  {name}: checkpoint {tuple(checkpoint_state[name].shape)}, config {tuple(tensor.shape)}"
            for name, tensor in model_state.items()
            if name in checkpoint_state and tuple(checkpoint_state[name].shape) != tuple(tensor.shape)]


def refuse_mismatched_weights(checkpoint_state: dict[str, Any], model_state: dict[str, Any], ckpt_path: str) -> None:
    """Raise :class:`CheckpointConfigConflict` naming the weights that do not fit the config's network."""
    lines = shape_mismatches(checkpoint_state, model_state)
    if lines:
        more = f"\n  ... and {len(lines) - 8} more" if len(lines) > 8 else ""
        raise CheckpointConfigConflict(
            f"--ckpt_path {ckpt_path} holds weights of other shapes than the config's network:\n"
            + "\n".join(lines[:8]) + more + "\nUse the config the checkpoint was trained with"
        )


def refuse_other_geometry(checkpoint: dict[str, Any], datamodule: Any, ckpt_path: str) -> None:
    """Raise :class:`CheckpointConfigConflict` when the checkpoint's frame geometry is not the data's
    (``data.geometry.geometry_conflict``; the module's ``on_load_checkpoint`` says the same later, here it stops
    the command before any work)."""
    from s2dm_lightning.data.geometry import CHECKPOINT_KEY, geometry_conflict

    problem = geometry_conflict(checkpoint.get(CHECKPOINT_KEY), getattr(datamodule, "frame_geometry", None),
                                f"--ckpt_path {ckpt_path}")
    if problem is not None:
        raise CheckpointConfigConflict(problem)


def reconcile(checkpoint_hparams: dict[str, Any], model_config: dict[str, Any], ckpt_path: str) -> list[str]:
    """Apply the rule above: print (to stderr) and return one line per difference where the config's value
    is kept, then raise :class:`CheckpointConfigConflict` if an architecture setting differs."""
    checkpoint = checkpoint_settings(checkpoint_hparams, ckpt_path)
    config = model_settings(model_config)
    arch = architecture_keys(config.get(CLASS_PATH), checkpoint)
    ckpt_flat, config_flat = flatten(checkpoint), flatten(config)
    refused, notes = [], []
    for key in sorted(ckpt_flat.keys() | config_flat.keys()):
        in_ckpt, in_config = key in ckpt_flat, key in config_flat
        if in_ckpt and in_config and _same(ckpt_flat[key], config_flat[key]):
            continue
        if in_ckpt and in_config and _is_under(key, arch):
            refused.append((key, ckpt_flat[key], config_flat[key]))
        elif in_ckpt and in_config:  # a setting that does not fix the network: the config's stays
            notes.append(f"ckpt_path: {_option(key)}={_value(config_flat[key])} from the config/command line "
                         f"(the checkpoint was trained with {_value(ckpt_flat[key])})")
        elif in_ckpt:  # (a key only in the config is a setting newer than the checkpoint: its default stays)
            notes.append(f"ckpt_path: the checkpoint's {_option(key)}={_value(ckpt_flat[key])} is not a setting "
                         "of this model; ignored")
    report(notes)
    if refused:
        lines = [f"  {_option(key)}: checkpoint {_value(c)}, config {_value(v)}" for key, c, v in refused]
        fixes = " ".join(f"--{_option(key)}={_value(c)}" for key, c, _ in refused if key != CLASS_PATH)
        run_config = run_config_path(ckpt_path)
        hint = f", or use the run's own config: --config {run_config}" if run_config.is_file() else ""
        raise CheckpointConfigConflict(
            f"--ckpt_path {ckpt_path} holds the weights of another network than the config describes "
            f"(these settings fix the network's shape or what it predicts):\n" + "\n".join(lines)
            + f"\nGive the checkpoint's values ({fixes}){hint}"
        )
    return notes


