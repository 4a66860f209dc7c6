"""Which parameters a run trains: all of them, a subset named by patterns, or a LoRA adapter (peft).

* ``trainable_parameters``: glob patterns (``fnmatch``; ``*`` also crosses dots) over the module's
  parameter names, e.g. ``["unet.*attn*", "flow_conditioner.*"]``; every other parameter is frozen.
* ``lora_rank``: a peft LoRA adapter on the UNet's attention projections (diffusers'
  ``unet.add_adapter(LoraConfig(...))``, as its LoRA training scripts do: A Gaussian, B zero, so the
  network starts as the pretrained one); the UNet's own weights are frozen. Patterns add to it.

Either way the module's ``always_trained`` prefixes (the parts S2DM adds to Stable Diffusion: the flow
conditioner, the grown ``conv_in``) stay trainable: they start from fresh values and must learn. Frozen
encoders (VAE, text encoder) stay frozen whatever the patterns say.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

import torch
from torch import nn


def matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def select_trainable(
    module: nn.Module, patterns: Sequence[str] | None, always_trained: Sequence[str], lora: bool, key: str,
    frozen: set[str],
) -> None:
    """Freeze what the run does not train (module doc). ``key``: the config key of ``patterns`` (errors);
    ``frozen``: the names frozen before the adapter was added (the encoders), which stay frozen."""
    candidates = {name for name, _ in module.named_parameters() if name not in frozen}
    if patterns is not None:
        unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in candidates)]
        if unmatched:
            example = sorted(candidates)[:3]
            raise ValueError(f"{key}: pattern(s) {unmatched} match no trainable parameter (names look like "
                             f"{example}; '*' matches any characters, dots too)")
    if patterns is None and not lora:
        return
    for name, parameter in module.named_parameters():
        if name not in candidates:
            continue
        keep = (matches(name, patterns or ()) or any(name.startswith(prefix) for prefix in always_trained)
                or (lora and ".lora_" in name))
        parameter.requires_grad_(keep)


def trained_names(module: nn.Module) -> set[str]:
    return {name for name, p in module.named_parameters() if p.requires_grad}


def parameter_summary(module: nn.Module) -> str:
    """"training 123.4 M of 859.5 M parameters (unet 100.0 M of 859.5 M, ...)" for a module's parameters."""
    def count(parameters: Iterable[torch.Tensor], trained: bool) -> int:
        return sum(p.numel() for p in parameters if p.requires_grad or not trained)

    parts = [f"{name} {count(child.parameters(), True) / 1e6:.1f} M of {count(child.parameters(), False) / 1e6:.1f} M"
             for name, child in module.named_children() if count(child.parameters(), False)]
    return (f"training {count(module.parameters(), True) / 1e6:.1f} M of {count(module.parameters(), False) / 1e6:.1f} M"
            f" parameters ({', '.join(parts)})")


def keep_trained(state: dict[str, torch.Tensor], names: set[str]) -> dict[str, torch.Tensor]:
    """The entries of a state dict that are trained parameters."""
    return {k: v for k, v in state.items() if k in names}


def complete_with_frozen(state: dict[str, torch.Tensor], module: nn.Module, names: set[str]) -> dict[str, torch.Tensor]:
    """``state`` plus the module's own values of the entries that are not trained (the frozen base, reloaded from
    ``pretrained``); a trained parameter missing from ``state`` stays missing (a strict load then names it)."""
    own = module.state_dict()
    return {**{k: v for k, v in own.items() if k not in names and k not in state}, **state}
