"""Stage one of two-stage text-to-video (paper Sec. 3.4): eps_phi, diffusion over a flow sequence.

Symbols: F-hat = {f^i}, i = 1..F, the flow/occlusion sequence (format of ``flow_format``:
a grid_sample grid + occlusion, (F, 3, h, w)); I_ref the reference frame; tau the prompt.
eps_phi(F-hat_t, t, I_ref, tau) is an ordinary video diffusion model: every frame gets its
own noise (nothing is shared, unlike S2DM), one t per sequence. A 3D UNet (diffusers'
``UNet3DConditionModel``: spatial + temporal convolutions and attention) sees the noisy
sequence with I_ref concatenated to every frame's channels, and the prompt by
cross-attention. Classifier-free dropout drops I_ref (zeros) and tau (the empty prompt),
each per sequence with its own probability.

Diffusion space (``flow_to_diffusion``): channels (dx * s, dy * s, 2 * occlusion - 1), with
(dx, dy) = grid - identity in grid units ([-1, 1] spans the frame) and s =
``displacement_scale``; the identity flow is (0, 0, 1). The network works at its
``sample_size``: data flows of another size are resized (``flow_format.resize_condition``, ``keep_identity``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet3DConditionModel
from einops import rearrange, repeat

from s2dm_lightning.diffusion import (
    GuidanceSettings,
    add_noise_to_videos,
    check_prediction_type,
    combine_guidance,
    diffusion_target,
    guidance_branches,
    sample_condition_keep,
    sample_video_noise,
    sample_video_timesteps,
    sector_sample,
)
from s2dm_lightning.flow_format import (
    FLOW_CHANNELS,
    grid_to_displacement,
    identity_condition,
    identity_grid,
    resize_condition,
    warp_reference,
)
from s2dm_lightning.models.diffusion_module import (
    KEY,
    DiffusionModule,
    SamplingSettings,
    check_training_arguments,
)
from s2dm_lightning.models.frame_size import check_frame_size
from s2dm_lightning.models.text_encoder import CachedTextEncoder
from s2dm_lightning.validation import check_number


def default_flow_scheduler() -> DDPMScheduler:
    """Linear betas 1e-4 .. 0.02, T = 1000; DDIM clips its x_0 prediction to [-1, 1] (the data range)."""
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=True)


def flow_to_diffusion(condition: torch.Tensor, displacement_scale: float) -> torch.Tensor:
    """Conditions (..., 3, h, w) -> diffusion space (dx * s, dy * s, 2 * occlusion - 1)."""
    maps = grid_to_displacement(condition)
    return torch.cat([maps[..., :2, :, :] * displacement_scale, maps[..., 2:, :, :] * 2 - 1], dim=-3)


def diffusion_to_flow(x: torch.Tensor, displacement_scale: float) -> torch.Tensor:
    """Inverse of ``flow_to_diffusion``; the occlusion is clamped to [0, 1]."""
    h, w = x.shape[-2:]
    grid = x[..., :2, :, :] / displacement_scale + identity_grid(h, w, x.dtype, x.device)
    occlusion = ((x[..., 2:, :, :] + 1) / 2).clamp(0, 1)
    return torch.cat([grid, occlusion], dim=-3)


def _check_arguments(hparams: Any) -> None:
    """The plain numbers of FlowGenerator's arguments, each named by its config key."""
    check_number(KEY + "displacement_scale", hparams.displacement_scale, above=0)
    check_number(KEY + "num_frames", hparams.num_frames, at_least=2, note="a flow sequence needs frame 1 and a motion")
    check_training_arguments(hparams, ("text_dropout", "reference_dropout"))


class FlowGenerator(DiffusionModule):
    """eps_phi: generates the flow/occlusion sequence from a reference frame and a prompt.

    Args:
        unet: the 3D denoiser (diffusers ``UNet3DConditionModel``): ``in_channels`` = 3 + the
            reference channels (3 for pixels, the VAE's latent channels with ``vae``),
            ``out_channels`` = 3, ``cross_attention_dim`` = the text width. Its ``sample_size``
            is the size h = w at which flows are generated.
        text_encoder: frozen encoder of the prompt tau (use the class the S2DM model uses);
            None = the ``CLIPTextEncoder`` of ``pretrained``.
        noise_scheduler: training noise schedule (DDPM); sampling uses DDIM built from its config.
            Its ``prediction_type`` (``epsilon``, ``sample`` = x_0, ``v_prediction``) sets the target.
        vae: optional frozen autoencoder: the reference frame then enters as its latent mean.
            None = the VAE of ``vae_path`` if given, else the reference frame enters as pixels.
        pretrained: a LOCAL Stable Diffusion folder whose ``text_encoder/`` + ``tokenizer/``
            give the text encoder when ``text_encoder`` is None (as S2DM's ``pretrained``).
        vae_path: a local AutoencoderKL folder, or a folder holding ``vae/`` (e.g. the VAE the
            S2DM model uses), for the reference frame's latent when ``vae`` is None.
        displacement_scale: displacements (grid units) are multiplied by this in diffusion
            space; choose it so that typical displacements span about [-1, 1].
        num_frames: length F of a generated sequence (paper: 16).
        text_dropout: probability of dropping the prompt of a sequence (classifier-free).
        reference_dropout: probability of dropping the reference frame, drawn independently.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear learning-rate warm-up steps.
        guidance_mode: ``joint`` (one scale against the fully unconditional prediction) or
            ``separate`` (text and reference scales).
        guidance_scale: joint classifier-free guidance scale.
        text_guidance_scale: text scale in ``separate`` mode.
        reference_guidance_scale: reference-frame scale in ``separate`` mode.
        num_inference_steps: DDIM steps.
        eta: DDIM eta (0 = deterministic given the initial noise).
        sampling_seed: seed of the noise drawn in ``predict``.
    """

    def __init__(
        self,
        unet: UNet3DConditionModel,
        text_encoder: CachedTextEncoder | None = None,
        noise_scheduler: DDPMScheduler | None = None,
        vae: AutoencoderKL | None = None,
        pretrained: str | None = None,
        vae_path: str | None = None,
        displacement_scale: float = 1.0,
        num_frames: int = 16,
        text_dropout: float = 0.1,
        reference_dropout: float = 0.1,
        learning_rate: float = 1e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        guidance_mode: Literal["joint", "separate"] = "joint",
        guidance_scale: float = 3.0,
        text_guidance_scale: float = 3.0,
        reference_guidance_scale: float = 1.5,
        num_inference_steps: int = 20,
        eta: float = 0.0,
        sampling_seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["unet", "text_encoder", "noise_scheduler", "vae"])
        self.unet = unet
        if text_encoder is None:
            if pretrained is None:
                raise ValueError("FlowGenerator needs model.init_args.text_encoder or model.init_args.pretrained")
            from s2dm_lightning.models.text_encoder import CLIPTextEncoder

            text_encoder = CLIPTextEncoder(pretrained)
        if vae is None and vae_path is not None:
            from s2dm_lightning.models.pretrained import load_vae

            vae = load_vae(vae_path, key="model.init_args.vae_path")
        self.text_encoder = text_encoder
        self.noise_scheduler = noise_scheduler or default_flow_scheduler()
        self.vae = vae
        if vae is not None:
            vae.requires_grad_(False).eval()
        check_prediction_type(self.noise_scheduler.config.prediction_type, "model.noise_scheduler prediction_type")
        _check_arguments(self.hparams)
        # branches are (keep_text, keep_reference): the "flow" slot of the S2DM guidance is the reference here
        self.sampling = SamplingSettings.from_hparams(self.hparams, "reference_guidance_scale")
        self.sampling.check_steps(self.noise_scheduler.config.num_train_timesteps)
        self._check_unet()

    def _check_unet(self) -> None:
        config = self.unet.config
        reference_channels = self.vae.config.latent_channels if self.vae is not None else 3
        if config.in_channels != FLOW_CHANNELS + reference_channels or config.out_channels != FLOW_CHANNELS:
            raise ValueError(
                f"model.unet has in_channels={config.in_channels}, out_channels={config.out_channels}; the flow "
                f"generator needs in_channels={FLOW_CHANNELS + reference_channels} (3 flow + {reference_channels} "
                f"reference {'latent' if self.vae is not None else 'pixel'} channels) and out_channels=3"
            )
        if config.cross_attention_dim != self.text_encoder.width:
            raise ValueError(
                f"model.unet.cross_attention_dim={config.cross_attention_dim} must equal the text "
                f"encoder's width {self.text_encoder.width}"
            )
        if not isinstance(config.sample_size, int):
            raise ValueError(f"model.unet.sample_size must be one int (square flows), got {config.sample_size}")
        check_frame_size("model.init_args.unet.init_args.sample_size", config.sample_size, self.unet)

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        if datamodule is not None and hasattr(datamodule, "captions"):  # before any step, not in the middle of one
            self.text_encoder.check_prompts(datamodule.captions())

    @property
    def flow_size(self) -> int:
        """h = w of the generated flows (the UNet's sample_size)."""
        return int(self.unet.config.sample_size)

    # ------------------------------------------------------------ conditions
    @torch.no_grad()
    def encode_reference(self, frames: torch.Tensor) -> torch.Tensor:
        """Reference frames (B, 3, H, W) in [-1, 1] -> (B, C_ref, h, w): pixels or the VAE's latent mean."""
        x = frames.to(self.device, self.unet.dtype)
        if self.vae is not None:
            x = self.vae.encode(x).latent_dist.mode() * self.vae.config.scaling_factor
        if x.shape[-2:] != (self.flow_size, self.flow_size):
            mode = "area" if x.shape[-1] > self.flow_size else "bilinear"
            x = F.interpolate(x, size=(self.flow_size, self.flow_size), mode=mode,
                              **({"align_corners": False} if mode == "bilinear" else {}))
        return x

    def text_condition(self, captions: list[str]) -> torch.Tensor:
        """(B, L, D) prompt tokens; padded positions are zeroed (UNet3DConditionModel takes no text mask)."""
        hidden, mask = self.text_encoder.encode(list(captions))
        return (hidden * mask.unsqueeze(-1).to(hidden.dtype)).to(self.device, self.unet.dtype)

    def predict_noise(
        self,
        x_t: torch.Tensor,
        timesteps: torch.Tensor,
        reference: torch.Tensor,
        text_hidden: torch.Tensor,
        keep_text: torch.Tensor,
        keep_reference: torch.Tensor,
    ) -> torch.Tensor:
        """eps_phi for N sequences (eps, x_0 or v by ``prediction_type``): x_t (N, F, 3, h, w), t (N,),
        reference (N, C_ref, h, w), text (N, L, D)."""
        null_hidden = self.text_condition([""])
        hidden = torch.where(keep_text.view(-1, 1, 1), text_hidden, null_hidden.to(text_hidden.dtype))
        reference = reference * keep_reference.view(-1, 1, 1, 1).to(reference.dtype)
        frames = repeat(reference, "n c h w -> n f c h w", f=x_t.shape[1])
        sample = rearrange(torch.cat([x_t, frames.to(x_t.dtype)], dim=2), "n f c h w -> n c f h w")
        eps = self.unet(sample, timesteps, encoder_hidden_states=hidden).sample
        return rearrange(eps, "n c f h w -> n f c h w")

    # --------------------------------------------------------------- training
    def diffusion_loss(self, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
        """|| target - eps_phi(F-hat_t, t, I_ref, tau) ||^2, independent noise per frame, one t per sequence.

        The target follows the scheduler's ``prediction_type`` (eps by default; x_0 or v).
        """
        flow = resize_condition(batch["flow"].to(self.device), self.flow_size, mode="keep_identity")
        x0 = flow_to_diffusion(flow, self.hparams.displacement_scale)
        b, f = x0.shape[:2]
        noise = sample_video_noise(b, f, tuple(x0.shape[2:]), "independent", generator, self.device, x0.dtype)
        t = sample_video_timesteps(b, f, self.noise_scheduler.config.num_train_timesteps, "shared", generator,
                                   self.device)
        x_t = add_noise_to_videos(self.noise_scheduler.alphas_cumprod, x0, noise, t)
        target = self.training_target(x0, noise, t[:, 0])
        keep_text = sample_condition_keep(b, self.hparams.text_dropout, generator, self.device)
        keep_reference = sample_condition_keep(b, self.hparams.reference_dropout, generator, self.device)
        reference = self.encode_reference(batch["frames"][:, 0])
        prediction = self.predict_noise(x_t, t[:, 0], reference, self.text_condition(batch["caption"]), keep_text,
                                        keep_reference)
        return F.mse_loss(prediction.float(), target.float())

    def training_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the network predicts, by the scheduler's ``prediction_type``: eps, x_0 or v."""
        return diffusion_target(self.noise_scheduler.alphas_cumprod, self.noise_scheduler.config.prediction_type,
                                x0, noise, t)

    # --------------------------------------------------------------- sampling
    def make_denoiser(self, reference_frames: torch.Tensor, captions: list[str],
                      guidance: GuidanceSettings | None = None):
        """The guided eps for (B, F, 3, h, w) x_t: every guidance branch in ONE network call."""
        guidance = guidance or self.guidance
        branches = guidance_branches(guidance)
        n, b = len(branches), len(captions)
        reference = repeat(self.encode_reference(reference_frames), "b c h w -> (n b) c h w", n=n)
        hidden = repeat(self.text_condition(captions), "b l d -> (n b) l d", n=n)
        keep_text = repeat(torch.tensor([kt for kt, _ in branches], device=self.device), "n -> (n b)", b=b)
        keep_reference = repeat(torch.tensor([kr for _, kr in branches], device=self.device), "n -> (n b)", b=b)

        def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            x = repeat(x_t, "b f c h w -> (n b) f c h w", n=n).to(self.unet.dtype)
            eps = self.predict_noise(x, t.to(self.device).expand(n * b), reference, hidden, keep_text, keep_reference)
            return combine_guidance(list(rearrange(eps.float(), "(n b) f c h w -> n b f c h w", n=n)), guidance)

        return denoise

    @torch.no_grad()
    def sample_flows(
        self,
        reference_frames: torch.Tensor,
        captions: list[str],
        num_frames: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        progress: bool = False,
        sampling: SamplingSettings | None = None,
    ) -> torch.Tensor:
        """Sample flow sequences (B, F, 3, h, w) for reference frames (B, 3, H, W) in [-1, 1] and prompts.

        Frame 1 is set to the identity flow (occlusion 1) exactly: by definition it warps the
        reference frame onto itself. Draw noise with a CPU generator for the same flows on any device
        (a list: one generator per sequence, so a sequence does not depend on its batch beyond float32
        rounding). ``sampling``: steps, eta and guidance of this call (default: the model's ``sampling``).
        """
        sampling = sampling or self.sampling
        if reference_frames.dim() != 4 or reference_frames.shape[0] != len(captions):
            raise ValueError(f"need reference frames (B, 3, H, W) and B captions, got "
                             f"{tuple(reference_frames.shape)} and {len(captions)} captions")
        num_frames = num_frames or self.hparams.num_frames
        x0 = sector_sample(
            self.make_denoiser(reference_frames, list(captions), sampling.guidance),
            sampling.scheduler(self.noise_scheduler.config),
            num_videos=len(captions),
            num_frames=num_frames,
            frame_shape=(FLOW_CHANNELS, self.flow_size, self.flow_size),
            num_inference_steps=sampling.num_inference_steps,
            eta=sampling.eta,
            noise_sharing="independent",  # an ordinary video diffusion model: every frame its own noise
            generator=generator,
            device=self.device,
            progress=progress,
        )
        flows = diffusion_to_flow(x0, self.hparams.displacement_scale)
        flows[:, 0] = identity_condition(self.flow_size, self.flow_size, flows.dtype, flows.device)
        return flows

    @torch.no_grad()
    def sample_videos(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """For ``SampleVideosCallback``: the batch's first frames warped by flows sampled for its captions.

        Returns (B, F, 3, H, W) in [-1, 1] with F and H, W of ``batch["frames"]``: a quick look at
        whether the generated motion fits the caption, without a stage-two model.
        """
        frames = batch["frames"].to(self.device)
        flows = self.sample_flows(frames[:, 0], list(batch["caption"]), frames.shape[1], generator)
        return warp_reference(frames[:, 0].float(), flows).clamp(-1, 1)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Sampled flows and the first frames warped by them, in the form ``VideoPredictionWriter`` writes."""
        frames = batch["frames"].to(self.device)
        generator = torch.Generator().manual_seed(self.hparams.sampling_seed + batch_idx)
        flows = self.sample_flows(frames[:, 0], list(batch["caption"]), frames.shape[1], generator)
        return {"videos": warp_reference(frames[:, 0].float(), flows).clamp(-1, 1).cpu(), "flow": flows.cpu(),
                "caption": list(batch["caption"]), "video_id": list(batch["video_id"]), "real": batch["frames"].cpu()}

