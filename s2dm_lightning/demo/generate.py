"""What the demo page calls, without Gradio: load the model, list test clips, make flows, generate, write.

Every generation goes through :class:`~s2dm_lightning.pipelines.S2DMPipeline` with one CPU
generator seeded ``seed``, which is step (c) of ``python -m s2dm_lightning sample`` with the same
seed, steps, guidance and motion: :func:`sample_command` writes that command line.
Input the page cannot use raises :class:`DemoInputError`, whose text the page shows as is.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from s2dm_lightning.commands.sample import generated_frame_size
from s2dm_lightning.data.geometry import DEFAULT_FRAME_GEOMETRY
from s2dm_lightning.data.video_io import VideoReadError
from s2dm_lightning.demo.limits import DemoLimitError, DemoLimits, check_decoded_size, check_upload_size
from s2dm_lightning.io import atomic_path, safe_file_stem
from s2dm_lightning.pipelines.motion import flows_from_video, parametric_flows, parse_motion
from s2dm_lightning.pipelines.s2dm_pipeline import S2DMPipeline
from s2dm_lightning.video_files import write_mp4
from s2dm_lightning.visualization import flow_to_rgb, resize_nearest, to_uint8_video, upscale, video_panel

PREVIEW_PX = 96  # height of the chosen clip's preview
PANEL_HEIGHT_PX = 192  # each column of the page's video is upscaled (nearest) to about this height
log = logging.getLogger(__name__)
MOTION_SOURCES = ("test clip", "upload a video", "parametric motion")


class DemoInputError(ValueError):
    """Input the page cannot use; the message is shown in the page as it is."""


@dataclass(frozen=True)
class Clip:
    """A test video of the dataset: its id, its file or frame folder and its caption."""

    video_id: str
    path: Path
    caption: str

    @property
    def label(self) -> str:
        return f"{self.video_id}: {self.caption}"


@dataclass
class DemoModel:
    """The loaded pipeline and where it came from (for the reproducing command line)."""

    pipe: S2DMPipeline
    config: str | None = None
    ckpt_path: str | None = None
    pipeline_folder: str | None = None

    @property
    def frame_size(self) -> int:
        return generated_frame_size(self.pipe)

    @property
    def default_guidance(self) -> float:
        return float(self.pipe.config.guidance_scale)

    @property
    def default_steps(self) -> int:
        return int(self.pipe.config.num_inference_steps)


@dataclass
class Motion:
    """Flows (F, 3, s, s) for the generation, the driving frames (F, S, S, 3) if any, and the ``sample`` flag."""

    flows: torch.Tensor
    driving_frames: np.ndarray | None
    sample_flag: tuple[str, str]


@dataclass
class DemoResult:
    """What one press of Generate made: the side-by-side mp4, its frame count, the columns and the command."""

    video_path: Path
    num_frames: int
    columns: list[str]
    command: str


def load_model(config: str | None, ckpt_path: str | None, pipeline: str | None, device: str = "cpu") -> DemoModel:
    """The pipeline of a config + Lightning checkpoint (as ``sample --s2dm_config --s2dm_ckpt`` loads it) or a folder."""
    if pipeline is not None:
        return DemoModel(S2DMPipeline.from_pretrained(pipeline).to(device), pipeline_folder=pipeline)
    if config is None or ckpt_path is None:
        raise ValueError("demo needs --config CONFIG --ckpt_path CKPT, or --pipeline FOLDER")
    from s2dm_lightning.config import load_module
    from s2dm_lightning.models.s2dm import S2DM

    model = load_module(config, ckpt_path, S2DM, "--ckpt_path")
    return DemoModel(S2DMPipeline.from_s2dm(model).to(device), config=config, ckpt_path=ckpt_path)


def dataset_clips(config: str | None) -> tuple[list[Clip], str]:
    """The test split of the config's dataset, and a note for the page when there is none (no config, no data)."""
    if config is None:
        return [], "no --config given: no test clips (upload a video or use a parametric motion)"
    from s2dm_lightning.config import load_datamodule

    try:
        records = load_datamodule(config).records()
    except (OSError, ValueError) as error:
        return [], f"no test clips: {error}"
    clips = [Clip(r.video_id, Path(r.path), r.caption) for r in records if r.split == "test"]
    return clips, "" if clips else f"the dataset of {config} has no test videos"


def motion_from_video(path: str | Path, flow_size: int, num_frames: int,
                      geometry: str = DEFAULT_FRAME_GEOMETRY) -> Motion:
    """Flows of a clip or uploaded video (as ``sample --motion_from`` makes them, square under the model's frame
    ``geometry``); unreadable, 1-frame or constant-first-frame videos refused."""
    name = Path(path).name
    try:
        flows, frames = flows_from_video(path, flow_size, num_frames, geometry=geometry)
    except VideoReadError as error:
        raise DemoInputError(f"'{name}' could not be read as a video: {error}") from error
    except ValueError as error:  # e.g. a video with a single frame
        raise DemoInputError(f"'{name}' cannot drive a video: {error}") from error
    return Motion(flows, frames, ("--motion_from", str(path)))


def motion_from_formula(spec: str, flow_size: int, num_frames: int, frame_size: int) -> Motion:
    """Flows of ``translate:dx,dy`` / ``zoom:f`` / ``rotate:deg`` (as ``sample --motion`` makes them)."""
    try:
        parse_motion(spec)
    except ValueError as error:
        raise DemoInputError(str(error).replace("--motion=", "motion ")) from error
    return Motion(parametric_flows(spec, flow_size, num_frames, frame_size), None, ("--motion", spec))


def keep_upload(upload: str | Path, folder: Path) -> Path:
    """Copy an uploaded file (Gradio's temporary copy) into ``folder/uploads`` so the command line stays valid."""
    source = Path(upload)
    target = folder / "uploads" / f"{safe_file_stem(source.stem)}{source.suffix.lower()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as partial:
        shutil.copyfile(source, partial)
    return target


def clip_preview(clip: Clip, flow_size: int, num_frames: int, geometry: str = DEFAULT_FRAME_GEOMETRY) -> np.ndarray:
    """The clip's first and last frame and the flow colour of its last frame, side by side (what fills in)."""
    motion = motion_from_video(clip.path, flow_size, num_frames, geometry)
    first, last = motion.driving_frames[0], motion.driving_frames[-1]
    flow = resize_nearest(flow_to_rgb(motion.flows[-1:]), *first.shape[:2])[0]
    row = np.concatenate([first, last, flow], axis=1)[None]
    return upscale(row, max(1, PREVIEW_PX // first.shape[0]))[0]


def check_caption(caption: str | None) -> str:
    caption = (caption or "").strip()
    if not caption:
        raise DemoInputError("the caption is empty: S2DM generates from a caption and a motion; write one")
    return caption


def check_settings(num_frames: float, steps: float, guidance: float, seed: float) -> tuple[int, int, float, int]:
    """The page's numbers as the sampler wants them, or a message naming the bad one."""
    values = {"frames": num_frames, "steps": steps, "guidance": guidance, "seed": seed}
    if any(value is None for value in values.values()):
        missing = [name for name, value in values.items() if value is None]
        raise DemoInputError(f"set {', '.join(missing)}")
    if int(num_frames) < 2:
        raise DemoInputError(f"frames must be >= 2 (a first frame and a motion), got {num_frames}")
    if int(steps) < 1:
        raise DemoInputError(f"steps must be >= 1, got {steps}")
    if float(guidance) < 0:
        raise DemoInputError(f"guidance must be >= 0, got {guidance}")
    if int(seed) < 0:
        raise DemoInputError(f"seed must be >= 0, got {seed}")
    return int(num_frames), int(steps), float(guidance), int(seed)


def generate_frames(model: DemoModel, caption: str, flows: torch.Tensor, seed: int, steps: int,
                    guidance: float) -> torch.Tensor:
    """(F, 3, H, W) in [-1, 1]: the pipeline with one CPU generator seeded ``seed`` (video 0 of ``sample``)."""
    output = model.pipe(caption, flows=flows.unsqueeze(0), num_inference_steps=steps, guidance_scale=guidance,
                        generator=[torch.Generator().manual_seed(seed)], output_type="pt")
    return output.frames[0] * 2 - 1


def fit_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Driving frames (F, S, S, 3) resized to the generated size (area averaging down, nearest up)."""
    if frames.shape[1:3] == (size, size):
        return frames
    interpolation = cv2.INTER_AREA if frames.shape[1] > size else cv2.INTER_NEAREST
    return np.stack([cv2.resize(f, (size, size), interpolation=interpolation) for f in frames])


def write_result(folder: Path, name: str, frames: torch.Tensor, motion: Motion,
                 fps: int = 8) -> tuple[Path, list[str]]:
    """``folder/name.mp4`` (H.264, yuv420p), side by side: generated | driving video (if any) | flow colour | occlusion."""
    generated = to_uint8_video(frames)
    size = generated.shape[1]
    real = None if motion.driving_frames is None else fit_frames(motion.driving_frames, size)
    panel = video_panel(generated, motion.flows, real_frames=real, scale=max(1, PANEL_HEIGHT_PX // size))
    columns = ["generated", *([] if real is None else ["driving video"]), "flow (colour = direction)", "occlusion"]
    path = folder / f"{name}.mp4"
    return write_mp4(path, panel, fps=fps), columns


def sample_command(model: DemoModel, caption: str, motion: Motion, seed: int, steps: int, guidance: float,
                   num_frames: int, output_dir: str = "outputs/demo") -> str:
    """The ``python -m s2dm_lightning sample`` line that makes the same video (its first panel column)."""
    source = (["--pipeline", model.pipeline_folder] if model.pipeline_folder is not None
              else ["--s2dm_config", str(model.config), "--s2dm_ckpt", str(model.ckpt_path)])
    words = ["python", "-m", "s2dm_lightning", "sample", "--prompt", caption, *source, *motion.sample_flag,
             f"--seed={seed}", f"--num_inference_steps={steps}", f"--guidance_scale={guidance:g}",
             f"--num_frames={num_frames}", f"--output_dir={output_dir}"]
    return shlex.join(words)


def run_generation(model: DemoModel, folder: Path, caption: str | None, motion_maker: Callable[[], Motion],
                   seed: int, steps: int, guidance: float, num_frames: int) -> DemoResult:
    """Check the caption, make the flows, sample, write the panel; the page's Generate button in one call."""
    caption = check_caption(caption)
    motion = motion_maker()
    frames = generate_frames(model, caption, motion.flows, seed, steps, guidance)
    command = sample_command(model, caption, motion, seed, steps, guidance, num_frames)
    folder.mkdir(parents=True, exist_ok=True)
    # named by its settings: the same settings write (atomically) over the same file
    name = f"{safe_file_stem(caption)}_{hashlib.sha1(command.encode()).hexdigest()[:10]}"
    path, columns = write_result(folder, name, frames, motion)
    return DemoResult(path, int(frames.shape[0]), columns, command)


@dataclass
class PageRequest:
    """The page's fields when Generate is pressed (Gradio gives numbers as floats, empty fields as None)."""

    source: str
    clip_label: str | None
    upload: str | None
    formula: str | None
    caption: str | None
    guidance: float | None
    steps: float | None
    seed: float | None
    num_frames: float | None


def page_generate(model: DemoModel, clips: dict[str, Clip], folder: Path, request: PageRequest,
                  limits: DemoLimits = DemoLimits()) -> tuple[str | None, str, str]:  # noqa: B008 - frozen
    """Generate button: (video path or None, status text, command line); never raises, errors become the status.

    Our input errors are shown as they are; anything else as one line (the traceback goes to the server's log).
    """
    try:
        num_frames, steps, guidance, seed = check_settings(request.num_frames, request.steps, request.guidance,
                                                           request.seed)
        check_caption(request.caption)
        motion = motion_maker(model, clips, folder, request, num_frames, limits)
        result = run_generation(model, folder, request.caption, motion, seed, steps, guidance, num_frames)
    except (DemoInputError, DemoLimitError) as error:
        return None, f"**Error:** {error}", ""
    except Exception as error:  # noqa: BLE001 - the page shows one line and keeps serving
        log.exception("generation failed")
        return None, f"**Error:** generation failed: {type(error).__name__}: {error}", ""
    status = f"{result.num_frames} frames, left to right: {' | '.join(result.columns)}. Reproduce it with the command below."
    return str(result.video_path), status, result.command


def motion_maker(model: DemoModel, clips: dict[str, Clip], folder: Path, request: PageRequest,
                 num_frames: int, limits: DemoLimits = DemoLimits()) -> Callable[[], Motion]:  # noqa: B008
    """What makes the flows for the chosen source (checked now, run after the caption check)."""
    flow_size, geometry = model.pipe.flow_size, model.pipe.frame_geometry
    if request.source == MOTION_SOURCES[0]:
        clip = clips.get(request.clip_label or "")
        if clip is None:
            raise DemoInputError("choose a test clip (or another motion source)")
        return lambda: motion_from_video(clip.path, flow_size, num_frames, geometry)
    if request.source == MOTION_SOURCES[1]:
        if not request.upload:
            raise DemoInputError("upload a driving video (or choose another motion source)")
        check_upload_size(request.upload, limits)
        kept = keep_upload(request.upload, folder)

        def from_upload() -> Motion:
            check_decoded_size(kept, limits)  # before its frames are read (demo/limits.py)
            return motion_from_video(kept, flow_size, num_frames, geometry)

        return from_upload
    if request.source == MOTION_SOURCES[2]:
        return lambda: motion_from_formula(request.formula or "", flow_size, num_frames, model.frame_size)
    raise DemoInputError(f"unknown motion source {request.source!r}; choose one of {', '.join(MOTION_SOURCES)}")
