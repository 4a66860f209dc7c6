"""S2DM as a diffusers pipeline: ``S2DMPipeline.from_pretrained(folder)(prompt, flows=...)``.

The folder is diffusers' own layout, written by ``save_pretrained`` (``model_index.json`` +
one safetensors sub-folder per component, no pickle)::

    folder/
      model_index.json      the component classes, the sampling settings (guidance, steps, eta) and
                            reference_condition (image-to-video models: the UNet's extra input channels)
      unet/                 UNet2DConditionModel (conv_in already grown for concat/both fusion)
      vae/                  AutoencoderKL (absent, null in model_index.json, for pixel-space models)
      text_encoder/, tokenizer/   CLIP (SD 1.5) or MiniLM (the synthetic default)
      scheduler/            the sampler (DDIMScheduler, the paper's; or the model's ``sampler``) built from
                            the training schedule
      flow_conditioner/     FlowConditioner: flow tokens / null tokens / positions

Sampling is the project's sector-shaped reverse process (one z_T per video, the sampler's draws shared
by its frames) with the same guided denoiser as the LightningModule, so the pipeline and the
Lightning checkpoint give the same videos from the same seeds. The pipeline is deliberately thin:
the model arithmetic lives in :mod:`s2dm_lightning.models.denoiser` and
:mod:`s2dm_lightning.diffusion.sector_sampler`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL, DDPMScheduler, DiffusionPipeline, SchedulerMixin, UNet2DConditionModel
from diffusers.utils import BaseOutput
from diffusers.video_processor import VideoProcessor
from transformers import CLIPTextModel

from s2dm_lightning.data.geometry import DEFAULT_FRAME_GEOMETRY, check_geometry
from s2dm_lightning.diffusion import GuidanceSettings, build_sampler, sector_sample
from s2dm_lightning.flow_format import FLOW_CHANNELS
from s2dm_lightning.io import apply_umask_modes
from s2dm_lightning.models.denoiser import TextCondition, decode_frames, guided_denoiser
from s2dm_lightning.models.flow_conditioning import FlowConditioner
from s2dm_lightning.models.frame_size import vae_size_factor
from s2dm_lightning.models.pretrained_folder import PretrainedFolderError
from s2dm_lightning.models.reference_condition import check_reference_use, encode_reference
from s2dm_lightning.models.text_encoder import CachedTextEncoder, CLIPTextEncoder, MiniLMTextEncoder
from s2dm_lightning.pipelines.reference_image import ReferenceImage, reference_image_tensor
from s2dm_lightning.training.lora import load_exported_adapter

if TYPE_CHECKING:
    from s2dm_lightning.models.s2dm import S2DM

# Files that unpickle (run code) when loaded; a received folder holding one is refused by default.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
OutputType = Literal["np", "pt", "pil", "latent"]


class UnsafePipelineFolderError(ValueError):
    """A pipeline folder holds a pickle file and ``allow_pickle`` was not given."""


@dataclass
class S2DMPipelineOutput(BaseOutput):
    """What :class:`S2DMPipeline` returns.

    Attributes:
        frames: ``np``: (B, F, H, W, 3) float in [0, 1]; ``pt``: (B, F, 3, H, W) in [0, 1];
            ``pil``: B lists of F images; ``latent``: x_0 (B, F, C, h, w) in diffusion space.
    """

    frames: np.ndarray | torch.Tensor | list[list[PIL.Image.Image]]


class S2DMPipeline(DiffusionPipeline):
    """Flow-guided video generation with a trained S2DM (paper Sec. 3.2-3.3).

    Args:
        unet: the per-frame denoiser eps_theta.
        scheduler: the sampler (DDIM, or a multistep solver such as DPMSolverMultistepScheduler), with the
            training schedule in its config; swap it as in diffusers (``pipe.scheduler = X.from_config(...)``),
            or pass ``sampler=`` to a call.
        text_encoder: the Hugging Face text model (CLIPTextModel, or MiniLM's BertModel); None
            when the model was trained with a custom encoder (then pass ``prompt_encoder``).
        tokenizer: its tokenizer.
        flow_conditioner: how the flows enter the UNet (tokens and/or channels).
        vae: the autoencoder of latent models; None for pixel-space models.
        guidance_mode: ``joint`` (the paper) or ``separate`` (text and flow scales).
        guidance_scale: default joint guidance scale.
        text_guidance_scale: text scale of ``separate`` mode.
        flow_guidance_scale: flow scale of ``separate`` mode.
        num_inference_steps: default DDIM steps.
        eta: default DDIM eta (> 0: the extra noise is shared by a video's frames).
        noise_sharing: ``shared`` (S2DM) or ``independent`` (the paper's ablation).
        sample_size: h = w of x_0 in diffusion space; None = the UNet's sample_size.
        text_max_length: token positions per prompt.
        prompt_encoder: a ready ``CachedTextEncoder`` that replaces text_encoder + tokenizer
            (not saved; for models trained with a custom encoder).
        reference_condition: the model's first-frame condition (``none``, ``frame``, ``warped``; S2DM's
            option of that name): how ``image=`` enters the UNet.
        frame_geometry: how the training frames of another aspect were made square (``data.geometry``:
            crop, pad or squash); ``image=`` of another aspect is made square the same way.
    """

    model_cpu_offload_seq = "text_encoder->flow_conditioner->unet->vae"
    _optional_components = ["vae", "text_encoder", "tokenizer"]

    def __init__(
        self,
        unet: UNet2DConditionModel,
        scheduler: SchedulerMixin,
        text_encoder: Any,
        tokenizer: Any,
        flow_conditioner: FlowConditioner,
        vae: AutoencoderKL | None,
        guidance_mode: str = "joint",
        guidance_scale: float = 7.5,
        text_guidance_scale: float = 7.5,
        flow_guidance_scale: float = 1.5,
        num_inference_steps: int = 20,
        eta: float = 0.0,
        noise_sharing: str = "shared",
        sample_size: int | None = None,
        text_max_length: int = 77,
        prompt_encoder: CachedTextEncoder | None = None,
        reference_condition: str = "none",
        frame_geometry: str = DEFAULT_FRAME_GEOMETRY,
    ) -> None:
        super().__init__()
        if vae is not None:  # frozen, as in S2DM (PyTorch's CPU convolutions differ in rounding otherwise)
            vae.requires_grad_(False)
        self.register_modules(unet=unet, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer,
                              flow_conditioner=flow_conditioner, vae=vae)
        self.register_to_config(
            guidance_mode=guidance_mode, guidance_scale=guidance_scale, text_guidance_scale=text_guidance_scale,
            flow_guidance_scale=flow_guidance_scale, num_inference_steps=num_inference_steps, eta=eta,
            noise_sharing=noise_sharing, sample_size=sample_size, text_max_length=text_max_length,
            reference_condition=reference_condition, frame_geometry=check_geometry(frame_geometry),
        )
        self._prompt_encoder = prompt_encoder
        self.video_processor = VideoProcessor(do_resize=False)

    # ------------------------------------------------------------ conversions
    @classmethod
    def from_s2dm(cls, model: S2DM, unet: UNet2DConditionModel | None = None) -> S2DMPipeline:
        """The pipeline of a trained S2DM (sharing its networks; the EMA weights if the checkpoint had them);
        ``unet`` replaces the model's (export: a LoRA UNet merged, or its base)."""
        encoder = model.text_encoder
        saved = isinstance(encoder, (CLIPTextEncoder, MiniLMTextEncoder))
        settings = model.hparams
        return cls(
            unet=unet if unet is not None else model.unet,
            scheduler=model.sampling.scheduler(model.noise_scheduler.config),
            text_encoder=encoder.model if saved else None,
            tokenizer=encoder.tokenizer if saved else None,
            flow_conditioner=model.flow_conditioner,
            vae=model.vae,
            guidance_mode=settings.guidance_mode,
            guidance_scale=settings.guidance_scale,
            text_guidance_scale=settings.text_guidance_scale,
            flow_guidance_scale=settings.flow_guidance_scale,
            num_inference_steps=settings.num_inference_steps,
            eta=settings.eta,
            noise_sharing=settings.sample_noise_sharing,
            sample_size=settings.sample_size,
            text_max_length=encoder.max_length,
            prompt_encoder=None if saved else encoder,
            reference_condition=settings.reference_condition,
            frame_geometry=model.frame_geometry,
        )

    def to_s2dm(self, **overrides: Any) -> S2DM:
        """An S2DM LightningModule with these networks (to fine-tune further; ``overrides``: S2DM arguments)."""
        from s2dm_lightning.models.s2dm import S2DM

        config = self.config
        conditioner = self.flow_conditioner
        settings = dict(
            flow_fusion=conditioner.fusion, flow_size=conditioner.flow_size,
            flow_patch_size=conditioner.config.patch_size, sample_size=config.sample_size,
            guidance_mode=config.guidance_mode, guidance_scale=config.guidance_scale,
            text_guidance_scale=config.text_guidance_scale, flow_guidance_scale=config.flow_guidance_scale,
            num_inference_steps=config.num_inference_steps, eta=config.eta,
            sample_noise_sharing=config.noise_sharing, reference_condition=config.reference_condition,
        )
        settings["sampler"] = type(self.scheduler).__name__
        model = S2DM(unet=self.unet, text_encoder=self.prompt_encoder,
                     noise_scheduler=DDPMScheduler.from_config(self.scheduler.config), vae=self.vae,
                     **{**settings, **overrides})
        model.flow_conditioner.load_state_dict(conditioner.state_dict())
        model.frame_geometry = self.frame_geometry
        return model.eval()

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> None:
        """diffusers' ``save_pretrained`` (safetensors), then the umask's file modes on what it wrote.

        The safetensors files come out 0600 (written through a private temporary file); a folder
        meant to be shared gets 0644 / 0755 under umask 022 like every other file we write.
        """
        super().save_pretrained(save_directory, **kwargs)
        apply_umask_modes(save_directory)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, allow_pickle: bool = False,
                        **kwargs: Any) -> S2DMPipeline:
        """Load a LOCAL pipeline folder (nothing is downloaded).

        Args:
            pretrained_model_name_or_path: the folder written by ``save_pretrained`` / ``export``.
            allow_pickle: accept ``.bin``/``.pt``/... pickle weights (they can run code when loaded:
                only for folders you made yourself). By default such a folder is refused, naming the file.
            kwargs: passed to ``DiffusionPipeline.from_pretrained`` (e.g. ``torch_dtype``,
                ``prompt_encoder``, sampling settings such as ``guidance_scale=5``).
        """
        folder = Path(pretrained_model_name_or_path)
        if not (folder / "model_index.json").is_file():
            raise PretrainedFolderError(
                f"'{folder}' has no model_index.json: not a pipeline folder (write one with "
                "`python -m s2dm_lightning export` or S2DMPipeline.save_pretrained)"
            )
        if not allow_pickle:
            pickles = sorted(p for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES and p.is_file())
            if pickles:
                raise UnsafePipelineFolderError(
                    f"'{pickles[0]}' is a pickle file, which can run code when loaded; S2DMPipeline loads "
                    "safetensors only. Remove it, or pass allow_pickle=True if you made this folder yourself"
                )
        kwargs.setdefault("use_safetensors", None if allow_pickle else True)  # None: safetensors first, else .bin
        pipeline = super().from_pretrained(str(folder), local_files_only=True, **kwargs)
        load_exported_adapter(pipeline.unet, folder)  # an `export --lora adapter` folder: base UNet + unet_lora/
        return pipeline

    # ------------------------------------------------------------------ pieces
    @property
    def prompt_encoder(self) -> CachedTextEncoder:
        """The caption encoder (a per-prompt cache around text_encoder + tokenizer)."""
        if self._prompt_encoder is None:
            if self.text_encoder is None or self.tokenizer is None:
                raise ValueError("this pipeline's text encoder was not saved (a custom class): pass "
                                 "prompt_encoder=... to S2DMPipeline.from_pretrained (text_encoder=... to "
                                 "s2dm_lightning.models.export.load_pretrained)")
            wrapper = CLIPTextEncoder if isinstance(self.text_encoder, CLIPTextModel) else MiniLMTextEncoder
            self._prompt_encoder = wrapper.from_modules(self.text_encoder, self.tokenizer, self.config.text_max_length)
        return self._prompt_encoder

    @property
    def flow_size(self) -> int:
        """h = w of the flows the model is conditioned on."""
        return int(self.flow_conditioner.flow_size)

    def frame_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of x_0 in diffusion space."""
        size = self.config.sample_size or self.unet.config.sample_size
        size = size if isinstance(size, int) else size[0]
        return (self.unet.config.out_channels, size, size)

    @property
    def frame_geometry(self) -> str:
        """The model's frame geometry (``data.geometry``); a folder exported before it was recorded: ``crop``."""
        return self.config.get("frame_geometry", DEFAULT_FRAME_GEOMETRY)

    def frame_size(self) -> int:
        """h = w of the generated frames in pixels (x_0's size times the VAE's factor)."""
        return self.frame_shape()[-1] * vae_size_factor(self.vae)

    def encode_image(self, image: ReferenceImage | None, num_videos: int, device: torch.device) -> torch.Tensor | None:
        """x_0 (B, C, h, w) of the first frame ``image`` (made :meth:`frame_size` square under the model's
        :attr:`frame_geometry`), or None (no image)."""
        check_reference_use(self.config.reference_condition, image)
        if image is None:
            return None
        pixels = reference_image_tensor(image, self.frame_size(), self.frame_geometry)
        if pixels.shape[0] not in (1, num_videos):
            raise ValueError(f"got {pixels.shape[0]} images for {num_videos} prompts (give one, or one per prompt)")
        return encode_reference(self.vae, pixels.to(device)).expand(num_videos, -1, -1, -1)

    def encode_prompt(self, prompts: list[str], device: torch.device) -> TextCondition:
        """Hidden states and mask of the prompts and of the empty prompt, on ``device``."""
        encoder = self.prompt_encoder
        dtype = self.unet.dtype
        hidden, mask = encoder.encode(prompts)
        null_hidden, null_mask = encoder.encode([""])
        return TextCondition(hidden.to(device, dtype), mask.to(device), null_hidden.to(device, dtype),
                             null_mask.to(device), encoder.use_attention_mask)

    def check_flows(self, flows: torch.Tensor, occlusions: torch.Tensor | None, num_videos: int) -> torch.Tensor:
        """(B, F, 3, h, w) conditions from flows (B or 1, F, 3 or 2, h, w) and optional occlusions (B or 1, F, h, w)."""
        flows = torch.as_tensor(flows, dtype=torch.float32)
        if flows.dim() == 4:
            flows = flows.unsqueeze(0)
        size = self.flow_size
        if flows.dim() != 5 or flows.shape[2] not in (2, FLOW_CHANNELS) or flows.shape[0] not in (1, num_videos):
            raise ValueError(f"flows must have shape (B or 1, F, 3, {size}, {size}) (grid x, y + occlusion; or 2 "
                             f"channels with occlusions=...), B = {num_videos} prompts; got {tuple(flows.shape)}")
        if occlusions is not None:
            occlusions = torch.as_tensor(occlusions, dtype=torch.float32)
            occlusions = occlusions.reshape(-1, flows.shape[1], 1, *occlusions.shape[-2:])
            flows = torch.cat([flows[:, :, :2], occlusions.expand(flows.shape[0], -1, -1, -1, -1)], dim=2)
        elif flows.shape[2] == 2:
            flows = torch.cat([flows, torch.ones_like(flows[:, :, :1])], dim=2)
        self.flow_conditioner.check_flow(flows)
        return flows.expand(num_videos, *flows.shape[1:])

    # ------------------------------------------------------------------ sample
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        flows: torch.Tensor,
        occlusions: torch.Tensor | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        eta: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: OutputType = "np",
        return_dict: bool = True,
        image: ReferenceImage | None = None,
        sampler: str | None = None,
        sampler_options: dict[str, Any] | None = None,
    ) -> S2DMPipelineOutput | tuple:
        """Generate one video per prompt, its motion given by ``flows``.

        Args:
            prompt: the caption, or one per video.
            flows: the project's condition format (``s2dm_lightning.flow_format``), (B or 1, F, 3, h, w)
                at the model's flow size: a grid_sample grid into frame 0 plus the occlusion map.
                ``s2dm_lightning.pipelines.motion`` makes them from a video, a caption or a formula.
            occlusions: replaces channel 2 (or is added to a 2-channel grid); (B or 1, F, h, w).
            num_inference_steps: sampling steps (default: the model's).
            guidance_scale: joint classifier-free guidance scale (default: the model's).
            eta: DDIM eta (default: the model's).
            generator: a CPU generator, or one per video: video k of ``predict`` is the video of
                ``torch.Generator().manual_seed(sampling_seed + k)``, on any device.
            output_type: ``np``, ``pt``, ``pil`` or ``latent`` (see :class:`S2DMPipelineOutput`).
            return_dict: False returns ``(frames,)``.
            image: image-to-video: the first frame, for a model trained with ``reference_condition``: a PIL
                image, an array (H, W, 3) uint8 / float in [0, 1], or a tensor (B or 1, 3, H, W) in [-1, 1]
                (or lists / batches, one per prompt); resized to the model's frame size. Kept in the
                conditional guidance branch, dropped with text and flow in the unconditional one. None
                with a reference model: the reference is dropped. An error for a model without one.
            sampler: a diffusers scheduler class for this call (e.g. ``DPMSolverMultistepScheduler``),
                built from ``scheduler``'s config; default: ``scheduler`` itself. eta > 0 needs DDIM.
            sampler_options: that scheduler's settings, e.g. ``{"algorithm_type": "sde-dpmsolver++"}``.
        """
        prompts = [prompt] if isinstance(prompt, str) else [str(p) for p in prompt]
        if not prompts:
            raise ValueError("need at least one prompt")
        if output_type not in ("np", "pt", "pil", "latent"):
            raise ValueError(f"output_type must be 'np', 'pt', 'pil' or 'latent', got {output_type!r}")
        condition = self.check_flows(flows, occlusions, len(prompts))
        config = self.config
        device = self._execution_device
        reference = self.encode_image(image, len(prompts), device)
        guidance = GuidanceSettings(config.guidance_mode, config.guidance_scale if guidance_scale is None
                                    else guidance_scale, config.text_guidance_scale, config.flow_guidance_scale)
        text = self.encode_prompt(prompts, device)
        denoise = guided_denoiser(self.unet, self.flow_conditioner, guidance, text, condition, device,
                                  config.reference_condition, reference)
        eta = config.eta if eta is None else eta
        scheduler = build_sampler(self.scheduler.config, sampler or type(self.scheduler).__name__, sampler_options, eta)
        x0 = sector_sample(
            denoise,
            scheduler,
            num_videos=len(prompts),
            num_frames=condition.shape[1],
            frame_shape=self.frame_shape(),
            num_inference_steps=num_inference_steps or config.num_inference_steps,
            eta=eta,
            noise_sharing=config.noise_sharing,
            condition=condition,
            generator=generator,
            device=device,
            progress=not getattr(self, "_progress_bar_config", {}).get("disable", False),
        )
        if output_type == "latent":
            frames = x0
        else:
            video = decode_frames(self.vae, x0)  # (B, F, 3, H, W) in [-1, 1]
            frames = self.video_processor.postprocess_video(video.permute(0, 2, 1, 3, 4).float().cpu(),
                                                            output_type=output_type)
        self.maybe_free_model_hooks()
        return S2DMPipelineOutput(frames=frames) if return_dict else (frames,)
