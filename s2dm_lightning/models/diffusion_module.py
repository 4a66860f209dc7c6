"""What the diffusion LightningModules share: their seeds, their sampling settings, their training loop.

``S2DM`` and ``FlowGenerator`` derive from :class:`DiffusionModule` (training noise generator,
training/validation steps, AdamW); ``TwoStageS2DM`` only evaluates and uses :func:`evaluation_seeds`.

Seeds (the strides are primes, so that no two (rank, step, run, video) combinations of a
realistic run meet on the same seed):

* training noise (nu, t, dropout, frame choice): ``torch.initial_seed() + RANK_SEED_STRIDE * rank
  + STEP_SEED_STRIDE * step``, ``step`` being the step at which the generator is made: DDP ranks
  never draw the same noise, a resumed run does not replay the noise of its first steps;
* validation loss of batch i: ``VALIDATION_SEED + i`` (the same draws every validation round);
* evaluation (predict/test): video k of the dataset in run r (``--n_runs``) samples with
  ``sampling_seed + RUN_SEED_STRIDE * r + k``, on any device, batch size or number of ranks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from diffusers import SchedulerMixin

from s2dm_lightning.data.geometry import (
    CHECKPOINT_KEY,
    DEFAULT_FRAME_GEOMETRY,
    check_geometry,
    geometry_conflict,
)
from s2dm_lightning.diffusion import (
    DEFAULT_SAMPLER,
    GUIDANCE_MODES,
    GuidanceSettings,
    build_sampler,
    check_guidance_scales,
    check_sampler_settings,
)
from s2dm_lightning.models.optim import adamw_with_warmup
from s2dm_lightning.validation import check_choice, check_number, check_probability

KEY = "model.init_args."
RANK_SEED_STRIDE = 7919
STEP_SEED_STRIDE = 104729
RUN_SEED_STRIDE = 100_003
VALIDATION_SEED = 1000


def training_generator(
    current: torch.Generator | None, device: torch.device, rank: int, step: int
) -> torch.Generator:
    """``current`` if it lives on ``device``, else a new generator seeded by the training rule (module doc)."""
    if current is not None and current.device == device:
        return current
    seed = torch.initial_seed() + RANK_SEED_STRIDE * rank + STEP_SEED_STRIDE * step
    return torch.Generator(device=device).manual_seed(seed % 2**63)


def evaluation_seeds(sampling_seed: int, run: int, batch: dict[str, Any], batch_idx: int) -> list[int]:
    """One seed per video of ``batch``: ``sampling_seed + RUN_SEED_STRIDE * run + k``.

    k is the video's index in the dataset (``batch["sample_index"]``); a hand-made batch
    without it uses the position ``batch_idx * batch size + i``.
    """
    num_videos = len(batch["caption"])
    if "sample_index" in batch:
        indices = [int(i) for i in batch["sample_index"]]
    else:
        indices = [batch_idx * num_videos + i for i in range(num_videos)]
    base = sampling_seed + RUN_SEED_STRIDE * run
    return [base + k for k in indices]


def check_training_arguments(hparams: Any, dropout_names: tuple[str, ...]) -> None:
    """Dropout probabilities in [0, 1], learning rate > 0, weight decay and warm-up >= 0, named by config key."""
    for name in dropout_names:
        check_probability(KEY + name, hparams[name])
    check_number(KEY + "learning_rate", hparams.learning_rate, above=0)
    for name in ("weight_decay", "warmup_steps"):
        check_number(KEY + name, hparams[name], at_least=0)


@dataclass(frozen=True)
class SamplingSettings:
    """How a diffusion module samples: steps, eta, classifier-free guidance and the scheduler.

    Built once from the module's arguments (:meth:`from_hparams`); a call that samples
    differently passes ``settings.replace(...)`` instead of changing the module.
    """

    num_inference_steps: int
    eta: float
    guidance: GuidanceSettings
    sampler: str = DEFAULT_SAMPLER
    sampler_options: dict[str, Any] | None = None

    @classmethod
    def from_hparams(cls, hparams: Any, second_scale: str) -> SamplingSettings:
        """From ``guidance_mode``, ``guidance_scale``, ``text_guidance_scale``, ``second_scale`` (the
        scale of the second condition: ``flow_guidance_scale`` or ``reference_guidance_scale``),
        ``num_inference_steps``, ``eta`` and (where the module has them) ``sampler`` and
        ``sampler_options``; mode and scales are checked by config key."""
        check_choice(KEY + "guidance_mode", hparams.guidance_mode, GUIDANCE_MODES)
        scales = ("guidance_scale", "text_guidance_scale", second_scale)
        check_guidance_scales({KEY + name: hparams[name] for name in scales})
        guidance = GuidanceSettings(hparams.guidance_mode, *(hparams[name] for name in scales))
        return cls(hparams.num_inference_steps, hparams.eta, guidance, hparams.get("sampler", DEFAULT_SAMPLER),
                   hparams.get("sampler_options"))

    def check_steps(self, num_train_timesteps: int) -> None:
        """1 <= steps <= the scheduler's training timesteps and eta >= 0 (named by config key)."""
        check_sampler_settings(self.num_inference_steps, self.eta, num_train_timesteps, KEY)

    def scheduler(self, training_config: Any) -> SchedulerMixin:
        """A fresh ``sampler`` built from the training schedule's config (errors name the config key)."""
        return build_sampler(training_config, self.sampler, self.sampler_options, self.eta, KEY)

    def replace(self, **changes: Any) -> SamplingSettings:
        """A copy with ``changes`` (a None value keeps the setting)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


class DiffusionModule(L.LightningModule):
    """Base of the trainable diffusion modules: ``diffusion_loss`` drawn from the seeded generators.

    Subclasses set ``self.sampling`` (:class:`SamplingSettings`) and have the hparams
    ``learning_rate``, ``weight_decay`` and ``warmup_steps``.
    """

    sampling: SamplingSettings
    _noise_generator: torch.Generator | None = None
    _frame_geometry: str = DEFAULT_FRAME_GEOMETRY

    # ------------------------------------------------------------ frame geometry (data.geometry)
    def _data_frame_geometry(self) -> str | None:
        trainer = self._trainer
        return getattr(getattr(trainer, "datamodule", None), "frame_geometry", None) if trainer is not None else None

    @property
    def frame_geometry(self) -> str:
        """How frames of another aspect were made square for this network (``data.geometry``): the attached
        data module's while training, else the checkpoint's or the exported pipeline's (``crop`` if neither
        says). ``sample --motion_from`` and ``--image`` follow it."""
        return self._data_frame_geometry() or self._frame_geometry

    @frame_geometry.setter
    def frame_geometry(self, value: str) -> None:
        self._frame_geometry = check_geometry(value)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = self.frame_geometry

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the checkpoint's frame geometry; under a data module with another one, a ValueError."""
        stored = checkpoint.get(CHECKPOINT_KEY)
        where = getattr(self._trainer, "ckpt_path", None) or "(being loaded)"
        problem = geometry_conflict(stored, self._data_frame_geometry(), where)
        if problem is not None:
            raise ValueError(problem)
        if stored is not None:
            self.frame_geometry = stored

    def diffusion_loss(self, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
        """The training loss of ``batch``, every random draw from ``generator`` (subclasses define it)."""
        raise NotImplementedError

    @property
    def guidance(self) -> GuidanceSettings:
        """The guidance of ``sampling`` (the module's default)."""
        return self.sampling.guidance

    @property
    def noise_generator(self) -> torch.Generator:
        """Training randomness, seeded from the global seed, the rank and the step (module doc)."""
        self._noise_generator = training_generator(self._noise_generator, self.device, self.global_rank,
                                                   self.global_step)
        return self._noise_generator

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.diffusion_loss(batch, self.noise_generator)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["caption"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        generator = torch.Generator(device=self.device).manual_seed(VALIDATION_SEED + batch_idx)
        loss = self.diffusion_loss(batch, generator)
        self.log("val/loss", loss, prog_bar=True, batch_size=len(batch["caption"]), sync_dist=True)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        return adamw_with_warmup(self.parameters(), self.hparams.learning_rate, self.hparams.weight_decay,
                                 self.hparams.warmup_steps)
