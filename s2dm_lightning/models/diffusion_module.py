"""What the diffusion LightningModules share: their seeds, their sampling settings, their training loop.

``S2DM`` and ``FlowGenerator`` derive from :class:`DiffusionModule` (training noise generator,
training/validation steps, the training recipe: optimiser class, LR schedule, Min-SNR loss weighting,
LoRA / a trained subset and checkpoints of what is trained); ``TwoStageS2DM`` only evaluates and uses
:func:`evaluation_seeds`.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from diffusers import SchedulerMixin
from lightning.pytorch.utilities import rank_zero_info

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
from s2dm_lightning.diffusion.loss_weighting import min_snr_weights, weighted_mse
from s2dm_lightning.training import (
    LORA_ATTENTION_PROJECTIONS,
    LR_SCHEDULES,
    LRSchedule,
    OptimizerFactory,
    build_optimizer,
)
from s2dm_lightning.training.lora import add_lora_adapter
from s2dm_lightning.training.trainable import (
    complete_with_frozen,
    keep_trained,
    parameter_summary,
    select_trainable,
    trained_names,
)
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


@dataclass(frozen=True)
class TrainingRecipe:
    """The training options of a diffusion module (the arguments of :class:`DiffusionModule`)."""

    optimizer: OptimizerFactory | None = None
    lr_schedule: LRSchedule = "constant"
    lr_decay_steps: int | None = None
    snr_gamma: float | None = None
    lora_rank: int | None = None
    lora_alpha: float | None = None
    lora_target_modules: tuple[str, ...] = LORA_ATTENTION_PROJECTIONS
    trainable_parameters: tuple[str, ...] | None = None

    @property
    def trains_subset(self) -> bool:
        return self.lora_rank is not None or self.trainable_parameters is not None


class DiffusionModule(L.LightningModule):
    """Base of the trainable diffusion modules: ``diffusion_loss`` drawn from the seeded generators.

    Subclasses set ``self.sampling`` (:class:`SamplingSettings`), have the hparams ``learning_rate``,
    ``weight_decay`` and ``warmup_steps``, pass the recipe's arguments on (``**training_options``) and call
    :meth:`prepare_trainable` once their networks exist.
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

    def _check_checkpoint_geometry(self, checkpoint: dict[str, Any]) -> None:
        """Under a data module with another frame geometry than the checkpoint's, a ValueError naming both."""
        stored = checkpoint.get(CHECKPOINT_KEY)
        where = getattr(self._trainer, "ckpt_path", None) or "(being loaded)"
        problem = geometry_conflict(stored, self._data_frame_geometry(), where)
        if problem is not None:
            raise ValueError(problem)
        if stored is not None:
            self.frame_geometry = stored

    def __init__(
        self,
        optimizer: OptimizerFactory | None = None,
        lr_schedule: LRSchedule = "constant",
        lr_decay_steps: int | None = None,
        snr_gamma: float | None = None,
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        lora_target_modules: Sequence[str] = LORA_ATTENTION_PROJECTIONS,
        trainable_parameters: Sequence[str] | None = None,
    ) -> None:
        """The training recipe (docs/sd15_recipe.md, "Training options").

        Args:
            optimizer: the optimiser class (``class_path`` + ``init_args``), built on the trainable parameters
                with ``lr=learning_rate`` and ``weight_decay=weight_decay`` (so ``init_args`` take neither).
                None = ``torch.optim.AdamW``. E.g. ``torch.optim.Adafactor``, or
                ``s2dm_lightning.training.AdamW8bit`` (bitsandbytes, the ``optim8bit`` extra).
            lr_schedule: ``constant`` (linear warm-up over ``warmup_steps``, then constant) or ``cosine``
                (the same warm-up, then a cosine decay to 0 at ``lr_decay_steps``); stepped every optimiser step.
            lr_decay_steps: length of the cosine schedule in optimiser steps; None = the trainer's total
                (``trainer.max_steps``, or the epochs' steps).
            snr_gamma: Min-SNR-gamma loss weighting (Hang et al., ICCV 2023; the paper uses 5): each frame's
                loss weighted by min(SNR, gamma) / SNR (epsilon), / (SNR + 1) (v_prediction) or min(SNR,
                gamma) (sample). None = the plain mean squared error (the paper's Eq. 11).
            lora_rank: train a LoRA adapter of this rank (peft, ``unet.add_adapter``) on the UNet's
                ``lora_target_modules`` instead of the UNet's weights; the parts S2DM adds (flow
                conditioner, grown ``conv_in``) stay fully trained. None = no adapter.
            lora_alpha: LoRA scale numerator (the update is scaled by alpha / rank); None = ``lora_rank``.
            lora_target_modules: the UNet modules that get an adapter (peft's ``target_modules``): the
                attention projections by default.
            trainable_parameters: glob patterns of the parameter names to train, e.g. ``["unet.*attn*"]``
                (``*`` matches dots too); everything else is frozen except the parts S2DM adds. None = all
                (with LoRA: the adapter). With LoRA or patterns and a ``pretrained`` folder, checkpoints hold
                only the trained parameters (and their optimiser state): the frozen rest is reloaded from
                ``pretrained``.
        """
        super().__init__()
        check_choice(KEY + "lr_schedule", lr_schedule, LR_SCHEDULES)
        check_number(KEY + "lr_decay_steps", lr_decay_steps, at_least=1, optional=True)
        check_number(KEY + "snr_gamma", snr_gamma, above=0, optional=True)
        check_number(KEY + "lora_rank", lora_rank, at_least=1, optional=True)
        check_number(KEY + "lora_alpha", lora_alpha, above=0, optional=True)
        patterns = None if trainable_parameters is None else tuple(trainable_parameters)
        if patterns is not None and not patterns:
            raise ValueError(f"{KEY}trainable_parameters is empty: nothing would be trained (null = all)")
        self.recipe = TrainingRecipe(optimizer, lr_schedule, lr_decay_steps, snr_gamma, lora_rank, lora_alpha,
                                     tuple(lora_target_modules), patterns)

    def prepare_trainable(self, always_trained: Sequence[str]) -> None:
        """Add the LoRA adapter to ``self.unet`` and freeze what the recipe does not train; the parameter
        names starting with an ``always_trained`` prefix (the parts the model adds) stay trainable."""
        recipe = self.recipe
        frozen = {name for name, p in self.named_parameters() if not p.requires_grad}  # the encoders
        if recipe.lora_rank is not None:
            add_lora_adapter(self.unet, recipe.lora_rank, recipe.lora_alpha, recipe.lora_target_modules)
        select_trainable(self, recipe.trainable_parameters, always_trained, recipe.lora_rank is not None,
                         KEY + "trainable_parameters", frozen)

    def diffusion_loss(self, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
        """The training loss of ``batch``, every random draw from ``generator`` (subclasses define it)."""
        raise NotImplementedError

    def prediction_loss(self, prediction: torch.Tensor, target: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The mean squared error of (N, ...) predictions at (N,) timesteps, Min-SNR weighted with ``snr_gamma``."""
        if self.recipe.snr_gamma is None:
            return F.mse_loss(prediction.float(), target.float())
        config = self.noise_scheduler.config
        weights = min_snr_weights(self.noise_scheduler.alphas_cumprod, timesteps, config.prediction_type,
                                  self.recipe.snr_gamma)
        return weighted_mse(prediction, target, weights)
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
        rank_zero_info(parameter_summary(self))
        recipe = self.recipe
        decay_steps = recipe.lr_decay_steps
        if recipe.lr_schedule == "cosine" and decay_steps is None:
            total = self.trainer.estimated_stepping_batches
            if total == float("inf"):
                raise ValueError(f"{KEY}lr_schedule='cosine' needs {KEY}lr_decay_steps or trainer.max_steps")
            decay_steps = int(total)
        return build_optimizer(self.parameters(), recipe.optimizer, learning_rate=self.hparams.learning_rate,
                               weight_decay=self.hparams.weight_decay, schedule=recipe.lr_schedule,
                               warmup_steps=self.hparams.warmup_steps, decay_steps=decay_steps)

    # ------------------------------------------------- checkpoints of what is trained
    @property
    def saves_trained_only(self) -> bool:
        """Checkpoints hold only the trained parameters: a subset is trained and the frozen rest comes from
        ``pretrained`` (a network without that folder is saved whole: its frozen weights exist nowhere else)."""
        return self.recipe.trains_subset and self.hparams.get("pretrained") is not None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Runs after the EMA callback's hook: "state_dict" is then the EMA copy, "current_model_state" the weights.
        checkpoint[CHECKPOINT_KEY] = self.frame_geometry
        if self.saves_trained_only:
            names = trained_names(self)
            for key in ("state_dict", "current_model_state"):
                if key in checkpoint:
                    checkpoint[key] = keep_trained(checkpoint[key], names)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Before Lightning's strict load and the EMA callback's: both get the frozen base (from ``pretrained``).
        self._check_checkpoint_geometry(checkpoint)
        if self.recipe.trains_subset:
            names = trained_names(self)
            for key in ("state_dict", "current_model_state"):
                if key in checkpoint:
                    checkpoint[key] = complete_with_frozen(checkpoint[key], self, names)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """``nn.Module.load_state_dict``; a checkpoint of the trained parameters only gets the frozen rest from
        this module (export, sample and the demo load checkpoints through here)."""
        if self.recipe.trains_subset:
            state_dict = complete_with_frozen(dict(state_dict), self, trained_names(self))
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
