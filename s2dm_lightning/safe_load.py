"""Loading files that may come from someone else (checkpoints, caches, statistics, weights) as DATA.

A pickle or a TorchScript archive is a program: loading or calling it can run any code. So every
file a user may point at is read with a pickle-free loader: ``torch.load(weights_only=True)``,
safetensors, ``numpy.load(allow_pickle=False)``. TorchScript runs only when the user opts in with
a config key (e.g. ``metrics.allow_torchscript: true``) or when the file's SHA-256 is listed in
:data:`KNOWN_TORCHSCRIPT_SHA256`. Every error names the file and, where there is one, the config
key or option it came from, in one line (the last one a user sees). See docs/loading_files.md.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from s2dm_lightning.io import file_sha256

#: TorchScript files whose SHA-256 we have checked ourselves, and what they are. Empty: the
#: FVD-standard ``i3d_torchscript.pt`` (StyleGAN-V) could not be fetched and hashed here (no network),
#: and listing a hash nobody verified would vouch for an unknown file. Add ``sha256: description``
#: pairs only for files whose hash was computed from a copy obtained from the named source.
KNOWN_TORCHSCRIPT_SHA256: dict[str, str] = {}

#: How a file was loaded, as recorded in the evaluation report.
LOADED_AS_DATA = "data (pickle-free)"
LOADED_TORCHSCRIPT_OPTED_IN = "torchscript (opted in)"
LOADED_TORCHSCRIPT_KNOWN = "torchscript (known sha256)"


class ReceivedFileError(ValueError):
    """A file could not be loaded as data: damaged, of another kind, or holding code that was refused."""


def describe(path: str | os.PathLike, key: str | None = None) -> str:
    """How errors name a file: ``key='path'`` for a config key or option (``metrics.i3d_weights``,
    ``--ckpt_path``), ``what 'path'`` for a description with a space (``flow cache file``), else ``'path'``."""
    if not key:
        return f"'{os.fspath(path)}'"
    return f"{key} '{os.fspath(path)}'" if " " in key else f"{key}='{os.fspath(path)}'"


def _reason(error: BaseException) -> str:
    """One short line from torch's multi-paragraph ``weights_only`` message."""
    text = str(error)
    blocked = re.search(r"GLOBAL ([\w.]+)", text)
    if blocked:
        return (f"it holds pickled Python objects ({blocked.group(1)}) that would run code when loaded; "
                "they were refused (files are loaded with torch.load(weights_only=True))")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = next((line for line in lines if "Unsupported" in line or "invalid load key" in line), None)
    detail = detail or (lines[-1] if lines else type(error).__name__)
    if detail.startswith("Check the documentation") and len(lines) > 1:
        detail = lines[-2]
    return f"it is not a file of tensors written by torch.save ({type(error).__name__}: {detail[:200]})"


def is_torchscript_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is a TorchScript archive (a zip holding ``code/`` and ``constants.pkl``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


def load_torch_data(path: str | os.PathLike, key: str | None = None, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors, containers and plain values, never code.

    Raises:
        FileNotFoundError: ``path`` does not exist (named, with ``key``).
        ReceivedFileError: anything else (damaged, pickled objects, a TorchScript file), naming the file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{describe(path, key)} does not exist")
    if is_torchscript_file(path):
        raise ReceivedFileError(f"{describe(path, key)} is a TorchScript archive (a program), not a file of weights "
                                "or tensors; it is not loaded here")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise ReceivedFileError(f"{describe(path, key)} is unreadable: {_reason(error)}") from error


def load_checkpoint(path: str | os.PathLike, key: str | None = None) -> dict[str, Any]:
    """A Lightning checkpoint loaded pickle-free, as a dict with its ``state_dict`` (a bare state dict is
    returned as ``{"state_dict": it}``)."""
    checkpoint = load_torch_data(path, key)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ReceivedFileError(f"{describe(path, key)} holds no state_dict (a {type(checkpoint).__name__})")
    return checkpoint if state is not checkpoint else {"state_dict": state}


def load_checkpoint_state_dict(path: str | os.PathLike, key: str | None = None) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning checkpoint (or a bare state dict), loaded pickle-free."""
    return load_checkpoint(path, key)["state_dict"]


def load_numpy(path: str | os.PathLike, key: str | None = None) -> Any:
    """``numpy.load(path, allow_pickle=False)``: an array, or for ``.npz`` a dict of arrays."""
    try:
        payload = np.load(path, allow_pickle=False)
        if isinstance(payload, np.lib.npyio.NpzFile):
            with payload:
                return {name: payload[name] for name in payload.files}
        return payload
    except Exception as error:  # noqa: BLE001 - ValueError (pickled objects refused), OSError, zip errors
        raise ReceivedFileError(f"{describe(path, key)} is unreadable as numpy arrays "
                                f"({type(error).__name__}: {error})") from error


def load_safetensors(path: str | os.PathLike, key: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (on the CPU)."""
    from safetensors.torch import load_file

    try:
        return load_file(os.fspath(path))
    except Exception as error:  # noqa: BLE001 - SafetensorError, OSError
        raise ReceivedFileError(f"{describe(path, key)} is unreadable as safetensors "
                                f"({type(error).__name__}: {error})") from error


@dataclass(frozen=True)
class LoadedScript:
    """A TorchScript module and why it was allowed to load (``loaded_as``: one of the LOADED_* values)."""

    module: torch.jit.ScriptModule
    loaded_as: str
    sha256: str


def load_torchscript(
    path: str | os.PathLike, key: str, allowed: bool, opt_in_key: str, map_location: Any = "cpu"
) -> LoadedScript:
    """``torch.jit.load`` only if ``allowed`` (the user's opt-in) or the file's SHA-256 is known.

    Args:
        path: the TorchScript file.
        key: the config key that named it (for the messages).
        allowed: the value of the opt-in key.
        opt_in_key: the config key that opts in, e.g. ``metrics.allow_torchscript``.
    """
    sha = file_sha256(path)
    if sha in KNOWN_TORCHSCRIPT_SHA256:
        loaded_as = LOADED_TORCHSCRIPT_KNOWN
    elif allowed:
        loaded_as = LOADED_TORCHSCRIPT_OPTED_IN
    else:
        raise ReceivedFileError(
            f"{describe(path, key)} is a TorchScript file (sha256 {sha[:16]}...), a program that runs its own code "
            f"when used, and not one of the known files; it was not loaded. If you trust where it came from, "
            f"set `{opt_in_key}: true` (or --{opt_in_key}=true); a plain state dict needs no opt-in"
        )
    try:
        module = torch.jit.load(os.fspath(path), map_location=map_location)
    except Exception as error:  # noqa: BLE001
        raise ReceivedFileError(f"{describe(path, key)} is unreadable as TorchScript "
                                f"({type(error).__name__}: {error})") from error
    return LoadedScript(module, loaded_as, sha)
