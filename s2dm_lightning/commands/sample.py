"""``python -m s2dm_lightning sample``: two-stage text-to-video (or motion transfer) from the shell.

Writes, under ``output_dir``: ``<nn>_<prompt>.mp4`` / ``.gif`` (generated | flow colour |
occlusion, side by side), ``contact_sheet.png`` (per video a row of frames and a row of its
flows; with ``--motion_from`` also the motion source), and ``samples.pt`` (the tensors, the
prompts, the seeds and the arguments). Every file is written atomically.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from diffusers import DDPMScheduler

from s2dm_lightning.callbacks.sample_videos import SHEET_ROW_PX
from s2dm_lightning.diffusion import build_sampler
from s2dm_lightning.io import atomic_torch_save, safe_file_stem
from s2dm_lightning.pipelines.motion import parametric_flows, parse_motion
from s2dm_lightning.pipelines.reference_image import load_reference_image
from s2dm_lightning.pipelines.text_to_video import TextToVideoOutput, TwoStageTextToVideo, flows_from_video
from s2dm_lightning.validation import check_number
from s2dm_lightning.video_files import write_gif, write_mp4, write_png
from s2dm_lightning.visualization import (
    contact_sheet,
    flow_to_rgb,
    resize_nearest,
    to_uint8_video,
    video_panel,
)


def sample(
    prompt: str | list[str] | None = None,
    s2dm_config: str | None = None,
    s2dm_ckpt: str | None = None,
    flow_config: str | None = None,
    flow_ckpt: str | None = None,
    seed: int = 0,
    output_dir: str = "outputs/text_to_video",
    num_frames: int = 16,
    motion_from: str | None = None,
    motion_estimator: str = "opencv-dis",
    num_inference_steps: int | None = None,
    device: str = "cpu",
    fps: int = 8,
    scale: int = 4,
    pipeline: str | None = None,
    motion: str | None = None,
    guidance_scale: float | None = None,
    image: str | None = None,
    sampler: str | None = None,
    sampler_options: dict[str, Any] | None = None,
    eta: float | None = None,
) -> Path:
    """Generate videos from prompts with S2DM and the stage-one flow generator (paper Sec. 3.4).

    Args:
        prompt: the prompt; several: --prompt '[a red square moves up, a blue circle moves down]'
            or --prompt+="..." --prompt+="...".
        s2dm_config: YAML whose model section builds the S2DM (e.g. configs/synthetic.yaml, or the
            config.yaml saved beside a run's logs).
        s2dm_ckpt: the S2DM checkpoint (e.g. logs/synthetic/version_0/checkpoints/last.ckpt).
        flow_config: YAML whose model section builds the FlowGenerator (e.g. configs/synthetic_flow.yaml);
            not needed with --motion_from.
        flow_ckpt: the FlowGenerator checkpoint.
        seed: seed of z_T and every other draw (video k: seed + k): the same seed gives the same videos.
        output_dir: folder for the videos, the contact sheet and samples.pt.
        num_frames: frames per video (with --motion_from: frames taken from the motion video).
        motion_from: motion transfer: a video file or frame folder (a dataset video, e.g.
            data/synthetic/videos/video_0003) whose estimated flows replace stage one; only the
            num_frames frames used are decoded, made square as the model's training frames were.
        motion_estimator: flow estimator for --motion_from: opencv-dis or opencv-farneback.
        num_inference_steps: DDIM steps of both models (default: each model's config).
        device: where the models run (cpu, cuda, ...).
        fps: playback frames per second of the written videos.
        scale: nearest-neighbour upscaling of the written videos.
        pipeline: a folder written by `export` (S2DMPipeline), instead of --s2dm_config + --s2dm_ckpt.
        motion: a formula instead of stage one: translate:DX,DY (pixels of the generated frames, x right,
            y down), zoom:FACTOR or rotate:DEGREES (counter-clockwise), spread linearly over the frames.
        guidance_scale: S2DM's joint classifier-free guidance scale (default: its config; 1 = no guidance).
        image: image-to-video: the first frame, an image file (PNG, JPEG, 16-bit, ...; alpha over black) made
            square as the model's training frames were (its frame_geometry), at the model's frame size; replaces the generated reference frame. Needs an S2DM trained with reference_condition
            (e.g. configs/synthetic_i2v.yaml); see docs/image_to_video.md.
        sampler: S2DM's diffusers scheduler class, e.g. DPMSolverMultistepScheduler or UniPCMultistepScheduler
            (default: its config, DDIMScheduler in the paper's); a DDIM config's eta > 0 then needs --eta 0.
        sampler_options: that scheduler's settings, e.g. --sampler_options '{algorithm_type: sde-dpmsolver++}'.
        eta: S2DM's DDIM eta (default: its config).
    """
    if not prompt:
        raise ValueError("--prompt is required")
    if pipeline is None and (s2dm_config is None or s2dm_ckpt is None):
        raise ValueError("--s2dm_config and --s2dm_ckpt are required (or --pipeline FOLDER)")
    if motion_from is not None and motion is not None:
        raise ValueError(f"give one motion source: --motion_from={motion_from} or --motion={motion}, not both")
    if motion is not None:
        parse_motion(motion)  # a bad --motion stops here, before any model is loaded
    if motion_from is None and motion is None and (flow_config is None or flow_ckpt is None):
        raise ValueError("--flow_config and --flow_ckpt are required (or --motion_from VIDEO / --motion FORMULA)")
    check_number("--num_frames", num_frames, at_least=2, note="a video needs a first frame and a motion")
    check_number("--num_inference_steps", num_inference_steps, at_least=1, optional=True)
    check_number("--guidance_scale", guidance_scale, at_least=0, optional=True)
    check_number("--eta", eta, at_least=0, optional=True)
    if sampler is not None:  # a bad --sampler / --sampler_options stops here, before any model is loaded
        build_sampler(DDPMScheduler().config, sampler, sampler_options, eta or 0.0, prefix="--")
    for key, value in (("--fps", fps), ("--scale", scale)):
        check_number(key, value, at_least=1)
    first_frame = load_reference_image(image, "--image") if image is not None else None  # before any model
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    use_flow_generator = motion_from is None and motion is None
    two_stage = build_two_stage(pipeline, s2dm_config, s2dm_ckpt, flow_config if use_flow_generator else None,
                                flow_ckpt if use_flow_generator else None, device)
    pipeline_folder, pipeline = pipeline, two_stage  # --pipeline names the folder; below, the loaded models

    motion_frames = None
    reference_flows = None
    if motion_from is not None:
        reference_flows, motion_frames = flows_from_video(motion_from, pipeline.flow_size, num_frames, motion_estimator,
                                                          pipeline.s2dm.frame_geometry,
                                                          generated_frame_size(pipeline.s2dm))
    if motion is not None:
        reference_flows = parametric_flows(motion, pipeline.flow_size, num_frames, generated_frame_size(pipeline.s2dm))
    output = pipeline(prompts, seed=seed, num_frames=num_frames, reference_flows=reference_flows, progress=True,
                      num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, image=first_frame,
                      sampler=sampler, sampler_options=sampler_options, eta=eta)
    arguments = {"prompt": prompts, "s2dm_config": s2dm_config, "s2dm_ckpt": s2dm_ckpt, "flow_config": flow_config,
                 "flow_ckpt": flow_ckpt, "seed": seed, "num_frames": num_frames, "motion_from": motion_from,
                 "num_inference_steps": num_inference_steps, "pipeline": pipeline_folder, "motion": motion,
                 "guidance_scale": guidance_scale, "image": image, "sampler": sampler,
                 "sampler_options": sampler_options, "eta": eta}
    folder = write_outputs(output, Path(output_dir), fps=fps, scale=scale, motion_frames=motion_frames,
                           arguments=arguments, flow_label=None if motion is None else f"flow {motion}")
    print(f"wrote {len(prompts)} video(s) and contact_sheet.png to {folder}")
    return folder


def build_two_stage(
    pipeline: str | None,
    s2dm_config: str | None,
    s2dm_ckpt: str | None,
    flow_config: str | None,
    flow_ckpt: str | None,
    device: str,
) -> TwoStageTextToVideo:
    """The two models: S2DM from a pipeline folder or a config + checkpoint; the flow generator if given."""
    if pipeline is None:
        return TwoStageTextToVideo.from_checkpoints(s2dm_config, s2dm_ckpt, flow_config, flow_ckpt, device=device)
    from s2dm_lightning.config import load_module
    from s2dm_lightning.models.export import load_pretrained
    from s2dm_lightning.models.flow_generator import FlowGenerator

    flow_generator = load_module(flow_config, flow_ckpt, FlowGenerator) if flow_config is not None else None
    return TwoStageTextToVideo(load_pretrained(pipeline), flow_generator).to(device)


def generated_frame_size(model: Any) -> int:
    """Side of the generated frames: x_0's size, times the VAE's downsampling for latent models."""
    size = model.frame_shape()[-1]
    if model.vae is None:
        return size
    return size * 2 ** (len(model.vae.config.block_out_channels) - 1)


def write_outputs(
    output: TextToVideoOutput,
    folder: Path,
    fps: int = 8,
    scale: int = 4,
    motion_frames: np.ndarray | None = None,
    arguments: dict[str, Any] | None = None,
    flow_label: str | None = None,
) -> Path:
    """Write the videos (mp4 + gif panels), the contact sheet and ``samples.pt`` into ``folder``.

    ``flow_label`` names the flows' source on the contact sheet (default: generated, or of the motion video).
    """
    folder.mkdir(parents=True, exist_ok=True)
    height = output.frames.shape[-2]
    rows, labels = [], []
    for i, prompt in enumerate(output.prompts):
        frames = to_uint8_video(output.frames[i])
        panel = video_panel(frames, output.flows[i], scale=scale)
        stem = f"{i:02d}_{safe_file_stem(prompt)}"
        write_mp4(folder / f"{stem}.mp4", panel, fps=fps)
        write_gif(folder / f"{stem}.gif", panel, fps=fps)
        flow_rgb = resize_nearest(flow_to_rgb(output.flows[i]), height, frames.shape[2])
        rows += [frames, flow_rgb]
        source = flow_label or ("generated flow" if motion_frames is None else "flow of the video")
        labels += [f"{i}: {prompt}", f"{i}: {source}"]
        if motion_frames is not None:
            rows.append(motion_frames)
            labels.append(f"{i}: motion source")
    sheet_scale = max(1, min(scale, SHEET_ROW_PX // max(height, 1)))
    write_png(folder / "contact_sheet.png", contact_sheet(rows, labels=labels, scale=sheet_scale))
    atomic_torch_save(folder / "samples.pt", {
        "frames": output.frames, "flows": output.flows, "reference_frames": output.reference_frames,
        "initial_noise": output.initial_noise, "prompts": output.prompts, "seeds": output.seeds,
        "arguments": arguments or {}})
    return folder


def main(argv: list[str] | None = None) -> Path:
    """Parse ``sample``'s arguments (jsonargparse: --help lists them with the docstring above) and run it."""
    from jsonargparse import CLI

    return CLI(sample, args=list(sys.argv[1:] if argv is None else argv), as_positional=False,
               prog="python -m s2dm_lightning sample")
