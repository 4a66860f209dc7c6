"""Crafted "received" files for the safe-loading tests: each would create ``marker`` if its code ran.

- :func:`save_pickled_checkpoint`: a working checkpoint plus one pickled object whose ``__reduce__``
  calls ``exec`` (what ``torch.load(weights_only=False)`` would execute);
- :func:`save_marker_torchscript`: a TorchScript "I3D" (StyleGAN-V's call signature) whose ``forward``
  writes ``marker`` with ``torch.save`` (TorchScript can do that) and returns 400-d features;
- :func:`save_random_bytes`: bytes that are no file format at all.

Also :func:`run_cli`, the real command line in a subprocess with this checkout on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]


class _CreatesMarker:
    """Unpickling this runs ``open(marker, 'w')``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def save_pickled_checkpoint(path: Path, state_dict: dict[str, torch.Tensor], marker: Path) -> Path:
    """A Lightning-style checkpoint (``{"state_dict": ...}``) with a payload beside the weights."""
    torch.save({"state_dict": state_dict, "note": _CreatesMarker(marker)}, path)
    return path


class _MarkerI3D(nn.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = True
    ) -> torch.Tensor:
        torch.save(x.new_zeros(1), self.marker)  # the side effect: any program could do worse
        per_channel = x.mean(dim=(2, 3, 4))  # (B, 3): differs between videos
        return per_channel.repeat(1, 134)[:, :400]


def save_marker_torchscript(path: Path, marker: Path) -> Path:
    """A TorchScript file ``(B, 3, T, H, W) -> (B, 400)`` whose every call writes ``marker``."""
    torch.jit.script(_MarkerI3D(str(marker))).save(str(path))
    return path


def save_random_bytes(path: Path, size: int = 4096) -> Path:
    path.write_bytes(torch.randint(0, 256, (size,), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8).numpy().tobytes())
    return path


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m s2dm_lightning ARGS`` with this checkout first on the path; output captured."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("S2DM_I3D_WEIGHTS", None)
    return subprocess.run([sys.executable, "-m", "s2dm_lightning", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=timeout)


def last_line(stderr: str) -> str:
    """The last non-empty line of ``stderr`` (what the user sees last)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""
