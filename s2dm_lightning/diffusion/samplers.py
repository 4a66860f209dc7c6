"""Which diffusers scheduler runs the sector-shaped reverse process, built from the training schedule.

S2DM samples with DDIM (the paper: 20 steps). Any diffusers scheduler whose ``step`` either draws
no noise or takes the noise as an argument (``variance_noise``) can replace it, e.g.
``DPMSolverMultistepScheduler`` (DPM-Solver++; ``algorithm_type: sde-dpmsolver++`` for the SDE
variant) or ``UniPCMultistepScheduler``: the sampler then hands it noise shared by the frames of a
video. A scheduler whose ``step`` draws its own noise from a generator (DDPM, Euler ancestral, ...)
would give every frame its own draw, breaking the sector, and is refused.
"""

from __future__ import annotations

import inspect
from typing import Any

import diffusers
from diffusers import DDPMScheduler, SchedulerMixin

DEFAULT_SAMPLER = "DDIMScheduler"
EXAMPLES = "DDIMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler, DEISMultistepScheduler"


def step_parameters(scheduler: SchedulerMixin | type) -> set[str]:
    """The argument names of the scheduler's ``step``."""
    return set(inspect.signature(scheduler.step).parameters)


def check_shareable_noise(scheduler: SchedulerMixin | type, eta: float, key: str = "sampler") -> None:
    """Refuse a scheduler that draws noise inside ``step`` (it cannot be shared by a video's frames),
    and eta > 0 for one that has no eta; ``key`` names the setting in the error."""
    cls = scheduler if isinstance(scheduler, type) else type(scheduler)
    params = step_parameters(cls)
    if "generator" in params and "variance_noise" not in params:
        raise ValueError(
            f"{key}={cls.__name__!r}: its step draws noise itself, one draw per frame, so the frames of a "
            f"video could not share it (S2DM's sector); use a scheduler whose step is deterministic or takes "
            f"variance_noise, e.g. {EXAMPLES}"
        )
    if eta > 0 and "eta" not in params:
        raise ValueError(
            f"eta={eta} is DDIM's stochasticity; {key}={cls.__name__!r} has no eta: set eta to 0 (for a "
            "stochastic DPM-Solver use sampler_options {algorithm_type: sde-dpmsolver++})"
        )


def sampler_class(name: str, key: str = "sampler") -> type[SchedulerMixin]:
    """The diffusers scheduler class called ``name``; a ValueError naming ``key`` otherwise."""
    try:
        cls = getattr(diffusers, name, None) if isinstance(name, str) else None
    except (ImportError, RuntimeError) as error:  # a scheduler that needs a missing backend (torchsde, ...)
        raise ValueError(f"{key}={name!r} cannot be used here: {error}".strip()) from error
    if not (isinstance(cls, type) and issubclass(cls, SchedulerMixin)):
        raise ValueError(f"{key}={name!r} is not a diffusers scheduler class; e.g. {EXAMPLES}")
    return cls


def sampler_config(training_config: Any, cls: type[SchedulerMixin], options: dict[str, Any]) -> dict[str, Any]:
    """The training schedule's config for ``cls``, with ``options`` on top.

    A schedule that clips x_0 to [-1, 1] (``clip_sample``, the pixel-space default) keeps doing so in a
    scheduler without ``clip_sample`` but with dynamic thresholding: with ``sample_max_value=1`` the
    threshold s = clamp(quantile, 1, 1) = 1, which is exactly the clip.
    """
    config = dict(training_config)
    init = inspect.signature(cls.__init__).parameters
    overrides = dict(options)
    if config.get("clip_sample") and "clip_sample" not in init and "thresholding" in init \
            and float(config.get("clip_sample_range", 1.0)) == 1.0:
        overrides = {"thresholding": True, "sample_max_value": 1.0, **overrides}
    # from_config gives the new class its own default for keys the old one had defaulted: not for ours.
    defaulted = [k for k in config.get("_use_default_values", []) if k not in overrides]
    return {**config, **overrides, "_use_default_values": defaulted}


def build_sampler(
    training_config: Any,
    name: str = DEFAULT_SAMPLER,
    options: dict[str, Any] | None = None,
    eta: float = 0.0,
    prefix: str = "",
) -> SchedulerMixin:
    """A fresh scheduler ``name`` from the training (DDPM) schedule's config.

    Args:
        training_config: the noise scheduler's ``config`` (betas, T, prediction_type, ...).
        name: a diffusers scheduler class, e.g. ``DDIMScheduler`` or ``DPMSolverMultistepScheduler``.
        options: its own settings on top of the training schedule (e.g. ``{"algorithm_type": "sde-dpmsolver++"}``).
        eta: the DDIM eta that will be used (> 0 only for a scheduler that has one).
        prefix: prepended to ``sampler``/``sampler_options`` in errors (the config key).
    """
    key = f"{prefix}sampler"
    cls = sampler_class(name, key)
    check_shareable_noise(cls, eta, key)
    options = dict(options or {})
    init = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(options) - set(init) - {"self"})
    if unknown:
        raise ValueError(f"{prefix}sampler_options has {unknown[0]!r}, which {name} does not take; its options: "
                         f"{', '.join(p for p in init if p not in ('self', 'kwargs'))}")
    try:
        return cls.from_config(sampler_config(training_config, cls, options))
    except (ValueError, NotImplementedError, TypeError) as error:
        raise ValueError(f"{prefix}sampler_options={options} do not make a {name}: {error}") from error


def default_noise_scheduler(clip_sample: bool = True) -> DDPMScheduler:
    """The DDPM schedule for pixel-space training: linear betas 1e-4 .. 0.02, T = 1000.

    ``clip_sample`` keeps DDIM's x_0 prediction in [-1, 1]: near t = T, sqrt(alpha_hat_t) is
    about 0.006, so without clipping small eps errors blow up into saturated noise. Latent
    models (SD 1.5) use their own scheduler config, or this one with clipping off.
    """
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=clip_sample)
