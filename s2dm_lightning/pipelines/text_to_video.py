"""Two-stage text-to-video inference (paper Sec. 3.4, Fig. 5).

(a) eps_theta (S2DM) with the identity ("zero") flow f^1 samples the reference frame I_ref
    from z_T, given the prompt tau;
(b) eps_phi (``FlowGenerator``) samples the flow sequence F-hat given I_ref and tau;
(c) eps_theta samples all frames from the SAME z_T, given tau and F-hat.

With ``reference_flows`` step (b) is skipped: the flows of another video drive the motion
(video-to-video motion transfer: the motion of one video, the caption of another). With ``image``
(image-to-video, an S2DM trained with ``reference_condition``) step (a) is skipped: the image is I_ref,
and step (c) is conditioned on it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from s2dm_lightning.config import load_module
from s2dm_lightning.flow_format import FLOW_CHANNELS, identity_condition, resize_condition
from s2dm_lightning.models.flow_generator import FlowGenerator
from s2dm_lightning.models.frame_size import vae_size_factor
from s2dm_lightning.models.reference_condition import check_reference_use
from s2dm_lightning.models.s2dm import S2DM
from s2dm_lightning.pipelines.motion import FLOW_STREAM_OFFSET, flows_from_video  # noqa: F401 (re-exported)
from s2dm_lightning.pipelines.reference_image import reference_image_tensor


@dataclass
class TextToVideoOutput:
    """What the pipeline made, on the CPU.

    Attributes:
        frames: the videos (B, F, 3, H, W) in [-1, 1].
        flows: the flows that conditioned step (c), (B, F, 3, h, w) at the S2DM's flow size.
        reference_frames: I_ref of step (a) (or the given image), (B, 3, H, W) in [-1, 1].
        initial_noise: z_T, (B, C, H', W') in the S2DM's diffusion space, used by (a) and (c).
        prompts: the prompts, one per video.
        seeds: the seed of each video (everything of video k is drawn from seeds[k]).
    """

    frames: torch.Tensor
    flows: torch.Tensor
    reference_frames: torch.Tensor
    initial_noise: torch.Tensor
    prompts: list[str]
    seeds: list[int]


class TwoStageTextToVideo:
    """Text-to-video with S2DM and the stage-one flow generator (Fig. 5).

    Args:
        s2dm: the stage-two model eps_theta (flow-guided video generation).
        flow_generator: the stage-one model eps_phi; may be None when every call passes
            ``reference_flows`` (motion transfer only).
    """

    def __init__(self, s2dm: S2DM, flow_generator: FlowGenerator | None = None) -> None:
        self.s2dm = s2dm.eval()
        self.flow_generator = flow_generator.eval() if flow_generator is not None else None

    @classmethod
    def from_checkpoints(
        cls,
        s2dm_config: str | Path,
        s2dm_ckpt: str | Path | None,
        flow_config: str | Path | None = None,
        flow_ckpt: str | Path | None = None,
        device: str = "cpu",
    ) -> TwoStageTextToVideo:
        """Build both models from their experiment YAMLs and load their checkpoints.

        Args:
            s2dm_config: YAML whose ``model`` section builds the S2DM (e.g. configs/synthetic.yaml).
            s2dm_ckpt: its Lightning checkpoint (None: untrained weights, for tests).
            flow_config: YAML whose ``model`` section builds the FlowGenerator; None for motion transfer only.
            flow_ckpt: its Lightning checkpoint.
            device: where both models run.
        """
        s2dm = load_module(s2dm_config, s2dm_ckpt, S2DM, "--s2dm_ckpt")
        flow_generator = (load_module(flow_config, flow_ckpt, FlowGenerator, "--flow_ckpt")
                          if flow_config is not None else None)
        return cls(s2dm, flow_generator).to(device)

    def to(self, device: str | torch.device) -> TwoStageTextToVideo:
        self.s2dm.to(device)
        if self.flow_generator is not None:
            self.flow_generator.to(device)
        return self

    @property
    def flow_size(self) -> int:
        """h = w of the flows S2DM is conditioned on."""
        return int(self.s2dm.flow_conditioner.flow_size)

    def identity_flows(self, num_videos: int, num_frames: int) -> torch.Tensor:
        size = self.flow_size
        identity = identity_condition(size, size, device=self.s2dm.device)
        return identity.expand(num_videos, num_frames, FLOW_CHANNELS, size, size).clone()

    @torch.no_grad()
    def __call__(
        self,
        prompts: str | Sequence[str],
        seed: int | Sequence[int] = 0,
        num_frames: int = 16,
        reference_flows: torch.Tensor | None = None,
        progress: bool = False,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        image: torch.Tensor | None = None,
        sampler: str | None = None,
        sampler_options: dict[str, Any] | None = None,
        eta: float | None = None,
    ) -> TextToVideoOutput:
        """Generate one video per prompt.

        Args:
            prompts: one prompt, or one per video.
            seed: video k's z_T and every other draw of video k come from its own CPU generator seeded
                ``seed + k`` (or ``seed[k]`` for a list): the same prompt and seed give the same video
                on any device, whatever other prompts share the call (to float32 rounding).
            num_frames: frames per video (ignored with ``reference_flows``).
            reference_flows: flows (B or 1, F, 3, h, w) of a reference video to use instead of
                step (b) (motion transfer); resized to the S2DM's flow size.
            progress: show DDIM progress bars.
            num_inference_steps: DDIM steps of both models (None: each model's own setting).
            guidance_scale: S2DM's joint guidance scale (None: its own setting).
            image: the first frame (B or 1, 3, H, W) in [-1, 1] (image-to-video; resized to the generated
                frame size): replaces step (a). Needs an S2DM with ``reference_condition``; such a model
                without an image samples with its reference dropped.
            sampler: S2DM's scheduler class, e.g. ``DPMSolverMultistepScheduler`` (None: its own setting),
                with ``sampler_options`` (e.g. ``{"algorithm_type": "sde-dpmsolver++"}``).
            eta: S2DM's DDIM eta (None: its own setting; 0 for other samplers).
        """
        prompts = [prompts] if isinstance(prompts, str) else [str(p) for p in prompts]
        if not prompts:
            raise ValueError("need at least one prompt")
        b, s2dm = len(prompts), self.s2dm
        check_reference_use(s2dm.hparams.reference_condition, image)
        seeds = [int(seed) + k for k in range(b)] if isinstance(seed, int) else [int(s) for s in seed]
        if len(seeds) != b:
            raise ValueError(f"got {len(seeds)} seeds for {b} prompts")
        frame_shape = s2dm.frame_shape()
        s2dm_sampling = s2dm.sampling.replace(num_inference_steps=num_inference_steps, sampler=sampler, eta=eta,
                                              sampler_options=sampler_options or ({} if sampler else None))
        if guidance_scale is not None:
            s2dm_sampling = s2dm_sampling.replace(guidance=dataclasses.replace(s2dm_sampling.guidance, scale=guidance_scale))

        def s2dm_streams() -> tuple[list[torch.Generator], torch.Tensor]:
            """Per-video generators with z_T drawn first: (a) and (c) get the SAME draws, also for eta > 0."""
            streams = [torch.Generator().manual_seed(s) for s in seeds]
            return streams, torch.stack([torch.randn(frame_shape, generator=g) for g in streams])

        # z_T: ONE initial noise per video, the centre of the sector shared by steps (a) and (c)
        generator, z_t = s2dm_streams()
        z_t = z_t.to(s2dm.device)

        # (a) the reference frame from z_T with the identity flow f^1 (or the given first frame)
        if image is None:
            first = {"caption": prompts, "flow": self.identity_flows(b, 1)}
            reference = s2dm.sample_videos(first, generator=generator, initial_noise=z_t, noise_sharing="shared",
                                           progress=progress, sampling=s2dm_sampling)[:, 0]
        else:
            size = frame_shape[-1] * vae_size_factor(s2dm.vae)
            reference = reference_image_tensor(image, size, s2dm.frame_geometry).to(s2dm.device).expand(b, -1, -1, -1)

        # (b) the flow sequence from I_ref and tau (or the flows of another video), from its own streams
        if reference_flows is None:
            if self.flow_generator is None:
                raise ValueError("this pipeline has no flow generator: pass reference_flows (motion transfer)")
            flow_streams = [torch.Generator().manual_seed(FLOW_STREAM_OFFSET + s) for s in seeds]
            flow_sampling = self.flow_generator.sampling.replace(num_inference_steps=num_inference_steps)
            flows = self.flow_generator.sample_flows(reference.to(self.flow_generator.device), prompts, num_frames,
                                                     generator=flow_streams, progress=progress, sampling=flow_sampling)
        else:
            flows = self._check_reference_flows(reference_flows, b)
        flows = resize_condition(flows.to(s2dm.device).float(), self.flow_size, mode="keep_identity")
        flows[:, 0] = identity_condition(self.flow_size, self.flow_size, device=s2dm.device)

        # (c) every frame from the same z_T (and, with eta > 0, the same later draws as (a)),
        # conditioned on tau and the flows: frame 1 (identity flow) reproduces the reference frame
        generator, _ = s2dm_streams()
        frames = s2dm.sample_videos({"caption": prompts, "flow": flows}, generator=generator, initial_noise=z_t,
                                    noise_sharing="shared", progress=progress, sampling=s2dm_sampling,
                                    image=None if image is None else reference)
        return TextToVideoOutput(frames.cpu(), flows.cpu(), reference.cpu(), z_t.cpu(), prompts, seeds)

    @staticmethod
    def _check_reference_flows(flows: torch.Tensor, num_videos: int) -> torch.Tensor:
        if flows.dim() == 4:
            flows = flows.unsqueeze(0)
        if flows.dim() != 5 or flows.shape[2] != FLOW_CHANNELS or flows.shape[0] not in (1, num_videos):
            raise ValueError(
                f"reference_flows must have shape (B or 1, F, 3, h, w) with B = {num_videos} prompts, "
                f"got {tuple(flows.shape)}"
            )
        return flows.expand(num_videos, *flows.shape[1:])

    def describe(self) -> dict[str, Any]:
        """Short summary of the two models (for logs and sample folders)."""
        out: dict[str, Any] = {"s2dm_frame_shape": list(self.s2dm.frame_shape()), "s2dm_flow_size": self.flow_size}
        if self.flow_generator is not None:
            out["flow_generator_flow_size"] = self.flow_generator.flow_size
        return out
