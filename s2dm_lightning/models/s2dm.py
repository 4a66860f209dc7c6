"""The S2DM LightningModule: eps_theta(x_t^i, t, y^i, c) trained with sector-shaped noise.

Symbols (paper Sec. 3.2-3.3): x_0^i frame i of a video (or its VAE latent z_0^i),
nu the noise shared by the frames of a video (Eq. 7), t the shared timestep, y^i the
flow/occlusion condition of frame i, c the caption. Loss: Eq. 11.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from einops import rearrange, repeat

from s2dm_lightning.diffusion import (
    GuidanceSettings,
    NoiseSharing,
    add_noise_to_videos,
    check_noise_sharing,
    check_prediction_type,
    default_noise_scheduler,
    diffusion_target,
    sample_condition_keep,
    sample_video_noise,
    sample_video_timesteps,
    sector_sample,
)
from s2dm_lightning.diffusion.sector_sampler import Denoiser
from s2dm_lightning.flow_format import FLOW_CHANNELS
from s2dm_lightning.models.denoiser import TextCondition, conditioned_noise, decode_frames, guided_denoiser
from s2dm_lightning.models.diffusion_module import (
    KEY,
    DiffusionModule,
    SamplingSettings,
    check_training_arguments,
    evaluation_seeds,
)
from s2dm_lightning.models.flow_conditioning import FLOW_FUSIONS, FlowConditioner, FlowFusion
from s2dm_lightning.models.frame_size import check_datamodule_fits, check_frame_size
from s2dm_lightning.models.latent_preparation import cache_training_latents
from s2dm_lightning.models.pretrained import resolve_components
from s2dm_lightning.models.reference_condition import (
    REFERENCE_CONDITIONS,
    ReferenceCondition,
    check_reference_use,
    encode_reference,
    encode_reference_image,
    reference_channel_count,
    reference_channels,
)
from s2dm_lightning.models.text_encoder import CachedTextEncoder
from s2dm_lightning.validation import check_choice, check_number


def _check_arguments(hparams: Any) -> None:
    """The plain numbers and choices of S2DM's arguments, each named by its config key."""
    for name in ("sample_size", "flow_patch_size", "frames_per_step", "flow_size"):
        check_number(KEY + name, hparams[name], at_least=1, optional=name != "flow_size")
    for name, choices in (("flow_fusion", FLOW_FUSIONS), ("reference_condition", REFERENCE_CONDITIONS)):
        check_choice(KEY + name, hparams[name], choices)
    for name in ("noise_sharing", "sample_noise_sharing"):
        check_noise_sharing(KEY + name, hparams[name])
    check_training_arguments(hparams, ("text_dropout", "flow_dropout", "reference_dropout"))


class S2DM(DiffusionModule):
    """Sector-shaped diffusion model for flow-guided video generation.

    Networks come from the config (``unet``, ``text_encoder``, ...), from a local Stable
    Diffusion folder (``pretrained``), or both: components given explicitly win.

    Args:
        unet: the per-frame denoiser (a diffusers ``UNet2DConditionModel``). Its ``in_channels``
            must be the frame channels C, + 3 with flow fusion ``concat``/``both``, + the
            reference channels (``reference_condition``: C for ``frame``, C + 1 for ``warped``).
            None = ``pretrained/unet`` (its conv_in grown by those zero-initialised channels).
        text_encoder: frozen encoder of the caption c (cached per prompt). None =
            ``CLIPTextEncoder`` of ``pretrained/text_encoder`` + ``pretrained/tokenizer``.
        noise_scheduler: the training noise schedule (DDPM); sampling uses ``sampler`` built
            from its config. None = ``pretrained/scheduler``, else linear betas, 1000 steps.
            Its ``prediction_type`` sets what eps_theta predicts: ``epsilon`` (the paper,
            SD 1.5), ``v_prediction`` or ``sample`` (x_0).
        vae: optional frozen autoencoder: diffusion then runs on its latents. None =
            ``vae_path``, else ``pretrained/vae`` (pixel space without either).
        pretrained: a LOCAL diffusers Stable Diffusion folder (``unet/``, ``vae/``,
            ``text_encoder/``, ``tokenizer/``, ``scheduler/``), e.g. SD 1.5, or a folder
            written by ``save_pretrained``. Nothing is downloaded.
        vae_path: a local AutoencoderKL folder (e.g. the output of configs/mug_vae.yaml),
            or a folder holding ``vae/``; replaces the VAE of ``pretrained``.
        sample_size: h = w of x_0 in diffusion space (latents: frame size / 8, so 16 for
            128-px frames with SD's VAE); None = the UNet's ``config.sample_size``.
        gradient_checkpointing: recompute the UNet's activations in the backward pass
            (less memory, slower); switched on in ``setup("fit")``.
        latent_cache_dir: cache the VAE latents of every frame of the training videos in
            this folder at the start of fit (or in ``preprocess``), so the VAE encoder is
            not run every epoch and training clips carry latents instead of frames (see
            ``data.latent_cache``); None = encode every step.
        latent_sample: x_0 = a sample of the VAE posterior (as SD was trained) if True,
            its mean if False.
        flow_fusion: how y^i enters: ``tokens`` (paper), ``concat`` or ``both``.
        flow_size: h = w of the flow maps the data module provides.
        flow_patch_size: patch size of the flow tokens; None = one token for the whole map.
        noise_sharing: ``shared`` (S2DM: one nu and one t per video) or ``independent``
            (standard diffusion, the paper's ablation III) during training.
        sample_noise_sharing: the same choice for sampling (ablation II uses ``independent``).
        text_dropout: probability of dropping the caption of a video (classifier-free).
        flow_dropout: probability of dropping the flows of a video, drawn independently.
        reference_condition: image-to-video: the video's first frame (x_0 of frame 0: pixels, or
            the scaled VAE posterior mean) as extra UNet input channels of every frame. ``none``
            (the paper: no extra channels), ``frame`` (the reference as it is: C channels) or
            ``warped`` (the reference warped by the frame's flow times its visibility, plus the
            visibility map: C + 1 channels). See docs/image_to_video.md.
        reference_dropout: probability of dropping the reference of a video (all its channels
            zero), drawn independently of text and flow; used with ``reference_condition``.
        frames_per_step: train on this many random frames of each clip (None = all); the
            noise and t stay shared by the frames kept.
        learning_rate: Adam(W) learning rate (paper: 2e-5 with SD 1.5).
        weight_decay: AdamW weight decay.
        warmup_steps: linear learning-rate warm-up steps.
        guidance_mode: ``joint`` (one scale, the paper) or ``separate`` (text and flow scales).
        guidance_scale: joint classifier-free guidance scale (paper: 7.5).
        text_guidance_scale: text scale in ``separate`` mode.
        flow_guidance_scale: flow scale in ``separate`` mode.
        num_inference_steps: sampling steps (paper: 20 DDIM steps).
        eta: DDIM eta; > 0 adds noise, shared by the frames of a video in shared mode (0 for
            other samplers).
        sampling_seed: seed of the z_T drawn in ``predict`` (offset by the batch index).
        sampler: the diffusers scheduler class that samples (paper: ``DDIMScheduler``), e.g.
            ``DPMSolverMultistepScheduler`` or ``UniPCMultistepScheduler``, built from
            ``noise_scheduler``'s config; one whose step draws its own noise is refused.
        sampler_options: its settings on top of that config, e.g. ``{algorithm_type: sde-dpmsolver++}``
            (the SDE solver; its noise is shared by the frames of a video like DDIM's).
        training_options: the training recipe of :class:`DiffusionModule`: ``optimizer``, ``lr_schedule``,
            ``lr_decay_steps``, ``snr_gamma``, ``lora_rank``/``_alpha``/``_target_modules``, ``trainable_parameters``.
    """

    # Settings the trained weights are tied to (their shapes, or what the network predicts): a checkpoint
    # only loads into a config with the same values (s2dm_lightning.commands.checkpoint_config).
    ARCHITECTURE_HPARAMS = ("unet", "vae", "text_encoder.class_path", "noise_scheduler", "sample_size",
                            "flow_fusion", "flow_size", "flow_patch_size", "reference_condition",
                            "lora_rank", "lora_alpha", "lora_target_modules", "trainable_parameters")

    def __init__(
        self,
        unet: UNet2DConditionModel | None = None,
        text_encoder: CachedTextEncoder | None = None,
        noise_scheduler: DDPMScheduler | None = None,
        vae: AutoencoderKL | None = None,
        pretrained: str | None = None,
        vae_path: str | None = None,
        sample_size: int | None = None,
        gradient_checkpointing: bool = False,
        latent_cache_dir: str | None = None,
        latent_sample: bool = True,
        flow_fusion: FlowFusion = "tokens",
        flow_size: int = 32,
        flow_patch_size: int | None = None,
        noise_sharing: NoiseSharing = "shared",
        sample_noise_sharing: NoiseSharing = "shared",
        text_dropout: float = 0.1,
        flow_dropout: float = 0.1,
        reference_condition: ReferenceCondition = "none",
        reference_dropout: float = 0.1,
        frames_per_step: int | None = None,
        learning_rate: float = 1e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        guidance_mode: Literal["joint", "separate"] = "joint",
        guidance_scale: float = 7.5,
        text_guidance_scale: float = 7.5,
        flow_guidance_scale: float = 1.5,
        num_inference_steps: int = 20,
        eta: float = 0.0,
        sampling_seed: int = 0,
        sampler: str = "DDIMScheduler",
        sampler_options: dict[str, Any] | None = None,
        **training_options: Any,
    ) -> None:
        super().__init__(**training_options)  # the optimiser (a callable) lives in self.recipe, not the hparams
        self.save_hyperparameters(ignore=["unet", "text_encoder", "noise_scheduler", "vae", "optimizer"])
        _check_arguments(self.hparams)
        self.sampling = SamplingSettings.from_hparams(self.hparams, "flow_guidance_scale")
        flow_channels = FLOW_CHANNELS if flow_fusion in ("concat", "both") else 0

        def extra_channels(data_channels: int) -> int:
            return flow_channels + reference_channel_count(reference_condition, data_channels)

        unet, text_encoder, noise_scheduler, vae = resolve_components(
            pretrained, unet, text_encoder, noise_scheduler, vae, vae_path, extra_channels
        )
        self.unet = unet
        self.text_encoder = text_encoder
        self.noise_scheduler = noise_scheduler or default_noise_scheduler(clip_sample=vae is None)
        check_prediction_type(self.noise_scheduler.config.prediction_type, "model.noise_scheduler prediction_type")
        self.sampling.check_steps(self.noise_scheduler.config.num_train_timesteps)
        self.sampling.scheduler(self.noise_scheduler.config)  # a bad sampler / options / eta stops here
        self.vae = vae
        if vae is not None:
            vae.requires_grad_(False).eval()
        self.flow_conditioner = FlowConditioner(flow_fusion, flow_size, text_encoder.width, flow_patch_size)
        if sample_size is not None:
            check_frame_size(f"{KEY}sample_size", sample_size, self.unet)
        self._check_unet_channels()
        grown_conv_in = self.unet.config.in_channels > self.unet.config.out_channels  # flow / reference channels
        self.prepare_trainable(("flow_conditioner.", *(("unet.conv_in.",) if grown_conv_in else ())))

    # ------------------------------------------------------------------ set-up
    def _check_unet_channels(self) -> None:
        data_channels = self.vae.config.latent_channels if self.vae is not None else 3
        reference = self.hparams.reference_condition
        expected_in = (data_channels + self.flow_conditioner.extra_in_channels
                       + reference_channel_count(reference, data_channels))
        config = self.unet.config
        if config.in_channels != expected_in or config.out_channels != data_channels:
            raise ValueError(
                f"model.unet has in_channels={config.in_channels}, out_channels={config.out_channels}; "
                f"flow_fusion={self.flow_conditioner.fusion!r} with reference_condition={reference!r} on "
                f"{data_channels}-channel "
                f"{'latents' if self.vae is not None else 'frames'} needs in_channels={expected_in}, "
                f"out_channels={data_channels}"
            )
        if config.cross_attention_dim != self.text_encoder.width:
            raise ValueError(
                f"model.unet.cross_attention_dim={config.cross_attention_dim} must equal the text "
                f"encoder's width {self.text_encoder.width}"
            )

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        if datamodule is not None:  # the data's settings against the networks, before any step
            check_datamodule_fits(datamodule, self.unet, self.vae, self.flow_conditioner.flow_size)
            if hasattr(datamodule, "captions"):
                self.text_encoder.check_prompts(datamodule.captions())
        # Here, not in __init__: diffusers' checkpointing function cannot be pickled (ddp_spawn pickles the model).
        if stage == "fit" and self.hparams.gradient_checkpointing and not self.unet.is_gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()

    # ----------------------------------------------------------- latent cache
    def on_fit_start(self) -> None:
        if self.hparams.latent_cache_dir is not None:
            self.prepare_latent_cache(self.trainer.datamodule)

    def prepare_latent_cache(self, datamodule: Any, device: torch.device | None = None,
                             require_complete: bool = True) -> Any:
        """This VAE's latents of the training videos in ``latent_cache_dir`` (DDP ranks share the work), carried
        by the training clips instead of frames (:func:`~s2dm_lightning.models.latent_preparation.cache_training_latents`)."""
        trainer = self._trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return cache_training_latents(datamodule, self.vae, self.hparams.latent_cache_dir, device, rank, world,
                                 barrier=trainer.strategy.barrier if trainer is not None else None,
                                 require_complete=require_complete)

    # ------------------------------------------------------------- data space
    @torch.no_grad()
    def encode_frames(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Frames (..., 3, H, W) in [-1, 1] -> diffusion space x_0 (pixels, or scaled VAE latents).

        Latents: ``scaling_factor`` * a posterior sample drawn with ``generator`` (its mean
        with ``latent_sample=False``).
        """
        if self.vae is None:
            return frames
        lead = frames.shape[:-3]
        dist = self.vae.encode(frames.flatten(0, len(lead) - 1).to(self.vae.dtype)).latent_dist
        latents = dist.sample(generator) if self.hparams.latent_sample else dist.mean
        latents = latents.float() * self.vae.config.scaling_factor  # float32 x_0 (and nu) under bf16 autocast too
        return latents.view(*lead, *latents.shape[1:])

    def cached_latents(self, batch: dict[str, Any], order: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        """x_0 (B, F, C, h, w) from the batch's cached posterior ``latent_mean``/``latent_std`` (the law of
        ``encode_frames``: ``scaling_factor`` * (mean + std * eps), or * mean with ``latent_sample=False``)."""
        assert self.vae is not None, "latent batches need the model's VAE (its scaling_factor)"
        mean, std = batch["latent_mean"].to(self.device), batch["latent_std"].to(self.device)
        if order is not None:
            mean, std = _gather_frames(mean, order), _gather_frames(std, order)
        latents = mean
        if self.hparams.latent_sample:
            latents = mean + std * torch.randn(mean.shape, generator=generator, device=self.device)
        return latents * self.vae.config.scaling_factor

    def reference_x0(self, batch: dict[str, Any]) -> torch.Tensor:
        """x_0 (B, C, h, w) of the batch's first frames: cached ``latent_mean`` or encoded ``frames``."""
        if "latent_mean" in batch:  # latent batches come with a VAE (cached_latents checks it)
            return batch["latent_mean"][:, 0].to(self.device).float() * self.vae.config.scaling_factor
        return encode_reference(self.vae, batch["frames"][:, 0].to(self.device))

    def sampling_reference(self, batch: dict[str, Any], image: torch.Tensor | None) -> torch.Tensor | None:
        """The reference x_0 (B, C, h, w) a sampling call conditions on, or None (dropped / no condition).

        ``image`` (B, 3, H, W) in [-1, 1] wins; else a dataset batch's first frames (validation samples,
        predict, test); a batch of captions and flows alone (text-to-video) has its reference dropped.
        """
        mode = self.hparams.reference_condition
        check_reference_use(mode, image)
        if mode == "none":
            return None
        if image is None:
            return self.reference_x0(batch) if "frames" in batch or "latent_mean" in batch else None
        return encode_reference_image(self.vae, image, len(batch["caption"]), self.frame_shape(), self.device)

    def decode_frames(self, x0: torch.Tensor) -> torch.Tensor:
        """Diffusion space -> frames in [-1, 1]."""
        return decode_frames(self.vae, x0)

    def frame_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of x_0 in diffusion space."""
        size = self.hparams.sample_size or self.unet.config.sample_size
        size = size if isinstance(size, int) else size[0]
        return (self.unet.config.out_channels, size, size)

    # ------------------------------------------------------------- the network
    def text_condition(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, mask = self.text_encoder.encode(list(captions))
        return hidden.to(self.device, self.unet.dtype), mask.to(self.device)

    def text_condition_with_null(self, captions: list[str]) -> TextCondition:
        """The captions' hidden states and mask, with the empty caption's for dropped-text rows."""
        hidden, mask = self.text_condition(captions)
        null_hidden, null_mask = self.text_condition([""])
        return TextCondition(hidden, mask, null_hidden, null_mask, self.text_encoder.use_attention_mask)

    def predict_noise(
        self,
        x_t: torch.Tensor,
        timesteps: torch.Tensor,
        text_hidden: torch.Tensor,
        text_mask: torch.Tensor,
        flow: torch.Tensor,
        keep_text: torch.Tensor,
        keep_flow: torch.Tensor,
        reference: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """eps_theta for N frames: x_t (N, C, H, W), t (N,), text (N, L, D), flow (N, 3, h, w);
        ``reference``: the reference channels (N, R, H, W) of a ``reference_condition`` model."""
        null_hidden, null_mask = self.text_condition([""])
        text = TextCondition(text_hidden, text_mask, null_hidden, null_mask, self.text_encoder.use_attention_mask)
        return conditioned_noise(self.unet, self.flow_conditioner, x_t, timesteps, text, flow, keep_text, keep_flow,
                                 reference)

    # --------------------------------------------------------------- training
    def _frame_order(self, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor | None:
        """(B, k) random frames of each clip to train on (``frames_per_step``), or None for all."""
        k = self.hparams.frames_per_step
        b, f = batch["flow"].shape[:2]
        if k is None or k >= f:
            return None
        return torch.rand((b, f), generator=generator, device=self.device).argsort(dim=1)[:, :k]

    def diffusion_loss(self, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
        """Eq. 11: || nu - eps_theta(x_t^i, t, y^i, c) ||^2 with nu, t shared by a video's frames.

        x_0 comes from the batch's ``latent_mean``/``latent_std`` (clips of a latent cache) or its
        ``frames``. The target follows the noise scheduler's ``prediction_type``: nu (the paper), x_0 or v.
        """
        self.flow_conditioner.check_flow(batch["flow"])
        order = self._frame_order(batch, generator)
        flow = batch["flow"] if order is None else _gather_frames(batch["flow"], order)
        if "latent_mean" in batch:
            x0 = self.cached_latents(batch, order, generator)
        else:
            x0 = self.encode_frames(batch["frames"] if order is None else _gather_frames(batch["frames"], order), generator)
        b, f = x0.shape[:2]
        mode = self.hparams.noise_sharing
        nu = sample_video_noise(b, f, tuple(x0.shape[2:]), mode, generator, self.device, x0.dtype, flow)
        t = sample_video_timesteps(b, f, self.noise_scheduler.config.num_train_timesteps, mode, generator, self.device)
        x_t = add_noise_to_videos(self.noise_scheduler.alphas_cumprod, x0, nu, t)
        keep_text = sample_condition_keep(b, self.hparams.text_dropout, generator, self.device)
        keep_flow = sample_condition_keep(b, self.hparams.flow_dropout, generator, self.device)
        reference = self._training_reference(batch, flow, generator)
        text_hidden, text_mask = self.text_condition(batch["caption"])
        eps = self.predict_noise(
            rearrange(x_t, "b f c h w -> (b f) c h w"),
            rearrange(t, "b f -> (b f)"),
            repeat(text_hidden, "b l d -> (b f) l d", f=f),
            repeat(text_mask, "b l -> (b f) l", f=f),
            rearrange(flow, "b f c h w -> (b f) c h w"),
            repeat(keep_text, "b -> (b f)", f=f),
            repeat(keep_flow, "b -> (b f)", f=f),
            reference,
        )
        target = diffusion_target(self.noise_scheduler.alphas_cumprod, self.noise_scheduler.config.prediction_type,
                                  x0, nu, t)
        return self.prediction_loss(eps, rearrange(target, "b f c h w -> (b f) c h w"), rearrange(t, "b f -> (b f)"))

    def _training_reference(self, batch: dict[str, Any], flow: torch.Tensor,
                            generator: torch.Generator) -> torch.Tensor | None:
        """Reference channels ((B F), R, h, w) of the training frames (flows (B, F, 3, h, w)), the reference
        dropped per video with ``reference_dropout``; None without a reference condition (no draw then)."""
        mode, (b, f) = self.hparams.reference_condition, flow.shape[:2]
        if mode == "none":
            return None
        keep = sample_condition_keep(b, self.hparams.reference_dropout, generator, self.device)
        return reference_channels(mode, repeat(self.reference_x0(batch), "b c h w -> (b f) c h w", f=f),
                                  rearrange(flow.to(self.device), "b f c h w -> (b f) c h w"),
                                  repeat(keep, "b -> (b f)", f=f))

    # --------------------------------------------------------------- sampling
    def make_denoiser(self, captions: list[str], flow: torch.Tensor, guidance: GuidanceSettings | None = None,
                      reference: torch.Tensor | None = None) -> Denoiser:
        """The guided eps for (B, F, C, H, W) x_t: all frames and branches in ONE network call;
        ``reference``: x_0 (B, C, h, w) of the first frames (None: dropped)."""
        text = self.text_condition_with_null(captions)
        return guided_denoiser(self.unet, self.flow_conditioner, guidance or self.guidance, text, flow, self.device,
                               self.hparams.reference_condition, reference)

    @torch.no_grad()
    def sample_videos(
        self,
        batch: dict[str, Any],
        generator: torch.Generator | list[torch.Generator] | None = None,
        initial_noise: torch.Tensor | None = None,
        noise_sharing: NoiseSharing | None = None,
        progress: bool = False,
        sampling: SamplingSettings | None = None,
        image: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sample (B, F, 3, H, W) frames in [-1, 1] for the batch's captions and flows.

        ``sampling``: steps, eta, guidance and sampler of this call (default: the model's ``sampling``).
        ``image``: the first frame (B or 1, 3, H, W) in [-1, 1] for a ``reference_condition`` model
        (image-to-video; see :meth:`sampling_reference` for what is used without it).
        """
        sampling = sampling or self.sampling
        flow = batch["flow"]
        self.flow_conditioner.check_flow(flow)
        b, f = flow.shape[:2]
        reference = self.sampling_reference(batch, image)
        scheduler = sampling.scheduler(self.noise_scheduler.config)
        x0 = sector_sample(
            self.make_denoiser(list(batch["caption"]), flow, sampling.guidance, reference),
            scheduler,
            num_videos=b,
            num_frames=f,
            frame_shape=self.frame_shape(),
            num_inference_steps=sampling.num_inference_steps,
            eta=sampling.eta,
            noise_sharing=noise_sharing or self.hparams.sample_noise_sharing,
            generator=generator,
            device=self.device,
            initial_noise=initial_noise,
            progress=progress, condition=flow,
        )
        return self.decode_frames(x0)

    def evaluation_generators(self, batch: dict[str, Any], batch_idx: int) -> list[torch.Generator]:
        """One CPU generator per video for predict/test sampling, seeded by ``evaluation_seeds``.

        Video k of the dataset (``batch["sample_index"]``) of run r (``evaluation_run``, set by
        ``--n_runs``) is sampled with seed ``sampling_seed + 100003 * r + k``: the same video for
        the same seed on any device, batch size or number of DDP ranks (bit for bit in the same
        batch make-up; otherwise to float32 rounding, see docs/evaluation.md).
        """
        seeds = evaluation_seeds(self.hparams.sampling_seed, int(getattr(self, "evaluation_run", 0)), batch, batch_idx)
        return [torch.Generator().manual_seed(seed) for seed in seeds]

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Generated videos for the batch's conditions next to the real clips (the writer's panel shows both)."""
        videos = self.sample_videos(batch, self.evaluation_generators(batch, batch_idx))
        return {"videos": videos.cpu(), "flow": batch["flow"].cpu(), "caption": list(batch["caption"]),
                "video_id": list(batch["video_id"]), "real": batch["frames"].cpu()}

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """As :meth:`predict_step`; the metrics live in callbacks."""
        return self.predict_step(batch, batch_idx)


def _gather_frames(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """x[b, order[b]] for (B, F, ...) x and (B, k) order."""
    rows = torch.arange(x.shape[0], device=order.device)[:, None]
    return x.to(order.device)[rows, order]
