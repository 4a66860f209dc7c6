"""Classifier-free guidance with two conditions: text c and flow y^i.

``joint`` (the paper): eps = eps(0, 0) + s * (eps(c, y) - eps(0, 0)), one scale (7.5).
``separate`` (multi-condition guidance, as InstructPix2Pix does for two inputs):
eps = eps(0, 0) + s_c * (eps(c, 0) - eps(0, 0)) + s_y * (eps(c, y) - eps(c, 0)).
A branch is a pair (keep_text, keep_flow).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from s2dm_lightning.validation import check_choice, check_number

GUIDANCE_MODES = ("joint", "separate")
# What a scale means, for the error message: the combination extrapolates from the weaker
# prediction towards the stronger one, so a negative scale pushes away from the condition.
GUIDANCE_SCALE_NOTE = "0 ignores the condition, between 0 and 1 weakens it, 1 = no guidance, > 1 strengthens it"

Branch = tuple[bool, bool]


@dataclass(frozen=True)
class GuidanceSettings:
    """How conditional and unconditional predictions are combined at sampling time.

    Args:
        mode: ``joint`` (one scale against the fully unconditional prediction, the paper)
            or ``separate`` (separate text and flow scales).
        scale: the joint guidance scale (paper: 7.5); 1.0 disables guidance.
        text_scale: text scale s_c of ``separate`` mode.
        flow_scale: flow scale s_y of ``separate`` mode.
    """

    mode: Literal["joint", "separate"] = "joint"
    scale: float = 7.5
    text_scale: float = 7.5
    flow_scale: float = 1.5

    def __post_init__(self) -> None:
        check_choice("guidance mode", self.mode, GUIDANCE_MODES)
        check_guidance_scales({"guidance scale": self.scale, "text guidance scale": self.text_scale,
                               "flow guidance scale": self.flow_scale})


def check_guidance_scales(scales: dict[str, float]) -> None:
    """Every scale (config key -> value) must be >= 0; the message says what values below 1 mean."""
    for key, value in scales.items():
        check_number(key, value, at_least=0, note=GUIDANCE_SCALE_NOTE)


def guidance_branches(settings: GuidanceSettings) -> list[Branch]:
    """The (keep_text, keep_flow) branches the denoiser has to evaluate, conditional first."""
    if settings.mode == "joint":
        return [(True, True)] if settings.scale == 1.0 else [(True, True), (False, False)]
    return [(True, True), (True, False), (False, False)]


def combine_guidance(predictions: list[torch.Tensor], settings: GuidanceSettings) -> torch.Tensor:
    """Combine the per-branch noise predictions (ordered as ``guidance_branches``)."""
    if settings.mode == "joint":
        if len(predictions) == 1:
            return predictions[0]
        cond, uncond = predictions
        return uncond + settings.scale * (cond - uncond)
    cond, text_only, uncond = predictions
    return uncond + settings.text_scale * (text_only - uncond) + settings.flow_scale * (cond - text_only)
