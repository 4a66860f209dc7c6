"""What the demo page calls, without a browser: clips, motions, the H.264 panel, and a command line that reproduces it."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import imageio.v2 as imageio
import imageio_ffmpeg
import pytest
import torch

from s2dm_lightning.cli import main
from s2dm_lightning.demo.generate import (
    DemoInputError,
    check_settings,
    clip_preview,
    dataset_clips,
    generate_frames,
    load_model,
    motion_from_formula,
    motion_from_video,
    run_generation,
)
from s2dm_lightning.flow_format import identity_condition
from tests.conftest import assert_equal_to_batch_rounding
from tests.demo.conftest import NUM_VIDEOS, SIZE
from tests.pipelines.conftest import S2DM_YAML


def video_stream(path) -> str:
    """ffmpeg's description of the file's video stream (codec, pixel format, size)."""
    result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                            capture_output=True, text=True)
    return next(line for line in result.stderr.splitlines() if "Video:" in line)


def test_clips_are_the_test_split_with_their_captions(demo_files):
    clips, note = dataset_clips(str(demo_files["config"]))
    metadata = (demo_files["root"] / "metadata.csv").read_text().splitlines()
    test_rows = [row for row in metadata if ",test" in row or row.endswith("test")]
    assert note == "" and 0 < len(clips) == len(test_rows) < NUM_VIDEOS
    assert all(clip.path.is_dir() and clip.caption in clip.label and " moves " in clip.caption for clip in clips)


def test_a_chosen_clip_previews_its_first_and_last_frame_and_their_flow(demo_files):
    clip = dataset_clips(str(demo_files["config"]))[0][0]
    preview = clip_preview(clip, SIZE, 4)
    scale = 96 // SIZE
    assert preview.shape == (SIZE * scale, 3 * SIZE * scale, 3) and preview.dtype.name == "uint8"
    first, last, flow = (preview[:, i * SIZE * scale:(i + 1) * SIZE * scale] for i in range(3))
    assert not (first == last).all(), "the shape moved"
    assert (flow < 250).any(), "a moving clip's flow is not all white (no motion)"


def test_clips_without_a_data_section_leave_a_note(tmp_path):
    config = tmp_path / "model_only.yaml"
    config.write_text(S2DM_YAML)
    clips, note = dataset_clips(str(config))
    assert clips == [] and "no test clips" in note and "data" in note


def test_a_clip_generates_an_h264_panel_and_the_command_line_makes_the_same_video(demo_files, tmp_path):
    model = load_model(str(demo_files["config"]), str(demo_files["ckpt"]), None)
    clip = dataset_clips(str(demo_files["config"]))[0][0]
    make = lambda: motion_from_video(clip.path, model.pipe.flow_size, 5)  # noqa: E731
    result = run_generation(model, demo_files["output"], clip.caption, make, seed=7, steps=2, guidance=3.0,
                            num_frames=5)
    stream = video_stream(result.video_path)
    assert "h264" in stream and "yuv420p" in stream, f"browsers play H.264 yuv420p; got {stream}"
    frames = imageio.mimread(result.video_path, format="FFMPEG", memtest=False)
    assert len(frames) == result.num_frames == 5
    assert result.columns == ["generated", "driving video", "flow (colour = direction)", "occlusion"]
    assert frames[0].shape[1] > 4 * frames[0].shape[0] - 10, "four columns side by side"

    words = shlex.split(result.command)
    assert words[:4] == ["python", "-m", "s2dm_lightning", "sample"]
    assert {"--seed=7", "--num_inference_steps=2", "--guidance_scale=3", "--num_frames=5"} <= set(words)
    assert words[words.index("--motion_from") + 1] == str(clip.path)
    args = [w for w in words[3:] if not w.startswith("--output_dir=")] + [f"--output_dir={tmp_path / 'cli'}"]
    main(args)
    saved = torch.load(tmp_path / "cli" / "samples.pt", weights_only=True)
    demo_frames = generate_frames(model, clip.caption, make().flows, seed=7, steps=2, guidance=3.0)
    other_seed = generate_frames(model, clip.caption, make().flows, seed=8, steps=2, guidance=3.0)
    assert saved["arguments"]["guidance_scale"] == 3.0
    assert_equal_to_batch_rounding(saved["frames"][0], demo_frames, unlike=other_seed)


def test_guidance_changes_the_video(demo_files):
    """The page's guidance reaches the sampler (at guidance 0 and 4 the same seed gives different videos)."""
    model = load_model(str(demo_files["config"]), str(demo_files["ckpt"]), None)
    flows = motion_from_formula("translate:2,0", model.pipe.flow_size, 3, model.frame_size).flows
    low, high = (generate_frames(model, "a red square moves up", flows, 0, 2, g) for g in (0.0, 4.0))
    assert (low - high).abs().amax() > 1e-2


def test_parametric_motion_gives_its_flag_and_identity_first_frame(demo_files):
    model = load_model(str(demo_files["config"]), str(demo_files["ckpt"]), None)
    motion = motion_from_formula("zoom:1.5", model.pipe.flow_size, 4, model.frame_size)
    assert motion.sample_flag == ("--motion", "zoom:1.5") and motion.driving_frames is None
    assert torch.equal(motion.flows[0].float(), identity_condition(SIZE, SIZE))
    with pytest.raises(DemoInputError, match="unknown motion 'spin'"):
        motion_from_formula("spin:3", SIZE, 4, SIZE)


@pytest.mark.parametrize(("values", "named"), [((1, 2, 2.0, 0), "frames"), ((4, 0, 2.0, 0), "steps"),
                                               ((4, 2, -1.0, 0), "guidance"), ((4, 2, 2.0, None), "seed")])
def test_bad_settings_name_the_field(values, named):
    with pytest.raises(DemoInputError, match=named):
        check_settings(*values)


def test_demo_help_lists_its_options_and_serves_locally_by_default():
    result = subprocess.run([sys.executable, "-m", "s2dm_lightning", "demo", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert all(option in text for option in ("--config", "--ckpt_path", "--pipeline", "--share", "--port"))
    assert re.search(r"--host HOST .*default: 127\.0\.0\.1", text)
