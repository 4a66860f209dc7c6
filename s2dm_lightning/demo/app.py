"""The Gradio page: pick a motion (a test clip, an uploaded video or a formula), a caption and the sampler settings.

Only this module imports Gradio (the ``demo`` extra). Analytics are switched off before the import
and the page loads nothing from outside the server (fonts and scripts come with Gradio).
The handlers are thin: the work is in :mod:`s2dm_lightning.demo.generate`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from s2dm_lightning.demo.generate import (
    MOTION_SOURCES,
    PREVIEW_PX,
    Clip,
    DemoInputError,
    DemoModel,
    PageRequest,
    clip_preview,
    page_generate,
)
from s2dm_lightning.demo.limits import DemoLimits

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import gradio as gr  # noqa: E402 - after switching analytics off

DEFAULT_MOTION = "translate:-8,0"


def build_app(model: DemoModel, clips: list[Clip], clips_note: str, output_dir: Path,
              limits: DemoLimits = DemoLimits()) -> gr.Blocks:  # noqa: B008 - frozen
    """The page; ``output_dir`` receives the generated videos and kept uploads; ``limits`` bound the uploads."""
    by_label = {clip.label: clip for clip in clips}
    source_default = MOTION_SOURCES[0] if clips else MOTION_SOURCES[2]

    def on_clip(label: str | None, num_frames: float) -> tuple[Any, Any, str]:
        clip = by_label.get(label or "")
        if clip is None:
            return gr.update(), None, ""
        try:
            preview = clip_preview(clip, model.pipe.flow_size, max(2, int(num_frames or 2)),
                                   model.pipe.frame_geometry)
        except DemoInputError as error:
            return clip.caption, None, f"**Error:** {error}"
        return clip.caption, preview, ""

    def on_generate(source: str, label: str | None, upload: str | None, formula: str, caption: str,
                    guidance: float, steps: float, seed: float, num_frames: float,
                    progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 - how Gradio passes its bar
                    ) -> tuple[str | None, str, str]:
        progress(0, desc="flows and sampling")  # then the sampler's tqdm bar, tracked
        request = PageRequest(source, label, upload, formula, caption, guidance, steps, seed, num_frames)
        return page_generate(model, by_label, output_dir, request, limits)

    with gr.Blocks(title="S2DM demo", analytics_enabled=False) as app:
        gr.Markdown("## S2DM: flow-guided video generation\nOne z_T for all frames; each frame follows "
                    "its flow and occlusion from the first frame. Choose a motion, edit the caption, press Generate.")
        with gr.Row():
            with gr.Column(scale=1):
                source = gr.Radio(list(MOTION_SOURCES), value=source_default, label="motion from",
                                  elem_id="motion-source")
                clip = gr.Dropdown(list(by_label), value=None, label="test clip of the dataset",
                                   info=clips_note or None, elem_id="clip")
                upload = gr.File(label=f"driving video (mp4, avi, ... {limits.describe()})", elem_id="upload")
                formula = gr.Textbox(DEFAULT_MOTION, label="parametric motion: translate:DX,DY (px) | zoom:F | "
                                     "rotate:DEG", elem_id="formula")
                caption = gr.Textbox("", label="caption", elem_id="caption")
                with gr.Row():
                    guidance = gr.Number(model.default_guidance, label="guidance", minimum=0, elem_id="guidance")
                    steps = gr.Number(model.default_steps, label="steps", precision=0, minimum=1, elem_id="steps")
                with gr.Row():
                    seed = gr.Number(0, label="seed", precision=0, minimum=0, elem_id="seed")
                    num_frames = gr.Number(16, label="frames", precision=0, minimum=2, elem_id="frames")
                generate = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column(scale=2):
                preview = gr.Image(label="chosen clip: first frame | last frame | its flow", interactive=False,
                                   elem_id="preview", height=PREVIEW_PX + 40)
                video = gr.Video(label="generated | driving video | flow | occlusion", interactive=False,
                                 autoplay=True, loop=True, elem_id="result")
                status = gr.Markdown("", elem_id="status")
                command = gr.Code("", label="the command line that makes the same video", language="shell",
                                  interactive=False, wrap_lines=True, show_line_numbers=False, lines=2,
                                  elem_id="command")
        clip.change(on_clip, [clip, num_frames], [caption, preview, status])
        generate.click(on_generate, [source, clip, upload, formula, caption, guidance, steps, seed, num_frames],
                       [video, status, command])
    return app
