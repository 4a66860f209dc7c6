"""``python -m s2dm_lightning sample``: files written, reproducible, motion transfer from a video folder."""

from __future__ import annotations

import pytest
import torch

from s2dm_lightning.cli import main
from s2dm_lightning.flow_format import identity_condition
from s2dm_lightning.synthetic import generate_synthetic_dataset
from tests.data.footage import black_start
from tests.pipelines.conftest import SIZE
from tests.received_files import last_line, run_cli, save_pickled_checkpoint


def sample_args(paths, output_dir, *extra: str) -> list[str]:
    return ["sample", "--prompt", "a red square moves up", f"--s2dm_config={paths['s2dm_config']}",
            f"--s2dm_ckpt={paths['s2dm_ckpt']}", f"--output_dir={output_dir}", "--num_frames=4", "--scale=1", *extra]


def test_sample_writes_videos_and_contact_sheet_and_a_seed_repeats(tiny_checkpoints, tmp_path):
    flow_args = [f"--flow_config={tiny_checkpoints['flow_config']}", f"--flow_ckpt={tiny_checkpoints['flow_ckpt']}"]
    main(sample_args(tiny_checkpoints, tmp_path / "a", *flow_args, "--seed=4"))
    main(sample_args(tiny_checkpoints, tmp_path / "b", *flow_args, "--seed=4"))
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    stem = "00_a_red_square_moves_up-28fafa37be"  # spaces replaced, plus a hash of the prompt (no collisions)
    assert names == [f"{stem}.gif", f"{stem}.mp4", "contact_sheet.png", "samples.pt"]
    first, again = (torch.load(tmp_path / d / "samples.pt", weights_only=True) for d in ("a", "b"))
    assert first["frames"].shape == (1, 4, 3, SIZE, SIZE) and first["prompts"] == ["a red square moves up"]
    assert torch.equal(first["frames"], again["frames"]) and torch.equal(first["flows"], again["flows"])
    assert not any(p.name.startswith(".") for p in (tmp_path / "a").iterdir()), "no temporary files left"


def test_sample_motion_transfer_from_a_video_folder(tiny_checkpoints, tmp_path):
    root = generate_synthetic_dataset(tmp_path / "videos", num_videos=2, frames_per_video=8, image_size=8)
    video = root / "videos" / "video_0000"
    main(sample_args(tiny_checkpoints, tmp_path / "out", f"--motion_from={video}"))
    saved = torch.load(tmp_path / "out" / "samples.pt", weights_only=True)
    assert saved["flows"].shape == (1, 4, 3, SIZE, SIZE)
    assert torch.equal(saved["flows"][0, 0], identity_condition(SIZE, SIZE))
    assert (tmp_path / "out" / "contact_sheet.png").is_file()


def test_sample_without_a_flow_model_or_motion_video_says_what_is_missing(tiny_checkpoints, tmp_path):
    with pytest.raises(ValueError, match="--flow_config and --flow_ckpt are required"):
        main(sample_args(tiny_checkpoints, tmp_path / "out"))


def test_sample_help_lists_its_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--motion_from" in text and "--flow_ckpt" in text and "same seed gives the same videos" in text
    assert text.startswith("usage: python -m s2dm_lightning sample")


def test_sample_refuses_a_checkpoint_with_a_pickled_payload(tiny_checkpoints, tmp_path):
    """A working checkpoint plus one pickled object: refused unrun, through the real command line."""
    marker = tmp_path / "marker"
    state = torch.load(tiny_checkpoints["s2dm_ckpt"], weights_only=True)["state_dict"]
    received = save_pickled_checkpoint(tmp_path / "received.ckpt", state, marker)
    paths = {**tiny_checkpoints, "s2dm_ckpt": received}
    flow_args = [f"--flow_config={tiny_checkpoints['flow_config']}", f"--flow_ckpt={tiny_checkpoints['flow_ckpt']}"]
    result = run_cli(*sample_args(paths, tmp_path / "out", *flow_args))
    assert result.returncode != 0 and not marker.exists(), "the pickled payload ran"
    last = last_line(result.stderr)
    assert f"--s2dm_ckpt='{received}'" in last and "pickled Python objects" in last, result.stderr[-2000:]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a subprocess: ~30 s on 2 shared cores
def test_sample_motion_from_a_video_with_a_black_first_frame_is_refused_naming_it(tiny_checkpoints, tmp_path):
    """Bad footage met through the real command line: all-zero flows (a video that would not move) are refused,
    the error printed last names the file, nothing is written."""
    video = black_start(tmp_path / "black.avi")
    result = run_cli(*sample_args(tiny_checkpoints, tmp_path / "out", f"--motion_from={video}"))
    last = last_line(result.stderr)
    assert result.returncode != 0, result.stderr[-2000:]
    assert f"--motion_from: '{video}': its first frame is constant" in last, result.stderr[-2000:]
    assert not (tmp_path / "out").exists()
