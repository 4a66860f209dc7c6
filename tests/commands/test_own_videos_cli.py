"""configs/own_videos.yaml end to end through the real command line: cut 4:3 footage, preprocess, fit, predict.

Also the fast checks of the ``cut`` subcommand as the user meets it (its summary line, a bad file named last).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from s2dm_lightning.data.video_io import read_video
from tests.bad_input.cli import run_cli
from tests.data.footage import flat_ramp, panning_four_by_three, write_footage

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "own_videos.yaml")


def test_cut_prints_what_it_wrote(tmp_path):
    video = write_footage(tmp_path / "long.mp4", flat_ramp(24))
    result = run_cli("cut", "--video", str(video), "--output_dir", str(tmp_path / "data"), "--caption", "a wall",
                     "--clip_frames", "8", "--test_every", "3", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "wrote 3 clips of 8 frames (1 in the test split)" in result.stdout
    rows = list(csv.DictReader(open(tmp_path / "data" / "metadata.csv")))
    assert [row["split"] for row in rows] == ["train", "train", "test"]


def test_cut_of_a_missing_video_names_it_last(tmp_path):
    result = run_cli("cut", "--video", str(tmp_path / "nowhere.avi"), "--output_dir", str(tmp_path / "data"),
                     "--caption", "x", timeout=120)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "nowhere.avi" in last and "no such file" in last


@pytest.mark.slow
def test_own_videos_route_cut_preprocess_fit_predict(tmp_path):
    """The page's commands on a generated 4:3 recording, everything under tmp_path (the config's relative paths)."""
    video = write_footage(tmp_path / "street.mp4", panning_four_by_three(96))
    data = tmp_path / "data" / "own_videos"  # the config's data.root, relative to the working folder
    cut = run_cli("cut", "--video", str(video), "--output_dir", str(data), "--caption", "a texture pans left",
                  "--clip_frames", "24", "--test_every", "2", cwd=tmp_path, timeout=120)
    assert cut.returncode == 0, cut.stderr
    small = ["--data.init_args.batch_size=2", "--data.init_args.val_videos=1", "--data.init_args.dis_preset=ultrafast",
             "--model.init_args.num_inference_steps=2", "--trainer.enable_progress_bar=false"]
    preprocess = run_cli("preprocess", "--config", CONFIG, *small, cwd=tmp_path)
    assert preprocess.returncode == 0, preprocess.stderr
    assert "4 computed, 0 already cached, 0 failed" in preprocess.stdout
    assert len(list((data / "flow_cache_32").glob("clips_street_*.pt"))) == 4, "one flow file per clip"
    fit = run_cli("fit", "--config", CONFIG, *small, "--trainer.max_steps=2", "--trainer.val_check_interval=2",
                  "--trainer.limit_val_batches=1", cwd=tmp_path, timeout=600)
    assert fit.returncode == 0, fit.stderr[-3000:]
    checkpoints = list((tmp_path / "logs" / "own_videos").rglob("last.ckpt"))
    assert len(checkpoints) == 1, "one run, under the config's logs/own_videos"
    assert list((tmp_path / "logs" / "own_videos").rglob("samples/*/contact_sheet.png")), "validation sampled"
    predict = run_cli("predict", "--config", CONFIG, *small, f"--ckpt_path={checkpoints[0]}", cwd=tmp_path,
                      timeout=600)
    assert predict.returncode == 0, predict.stderr[-3000:]
    indexes = list(tmp_path.rglob("index.csv"))
    assert len(indexes) == 1, indexes
    rows = list(csv.DictReader(open(indexes[0])))
    assert [row["video_id"] for row in rows] == ["clips/street_000024", "clips/street_000072"]  # the test split
    generated = read_video(indexes[0].parent / rows[0]["files"].split(";")[0])
    assert generated.shape == (16, 128, 128, 3), "16 frames at the config's 32 x 32, written 4x upscaled"
    assert generated.std() > 1.0, "a video, not a constant"
