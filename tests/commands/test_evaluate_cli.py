"""``evaluate`` through the real command line: the videos ``predict`` wrote score as ``test`` scores the same
checkpoint, the CSV and pattern mappings, and bad input named last on screen."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from s2dm_lightning.video_files import write_gif
from tests.bad_input.cli import assert_fails_with, run_cli, tiny_config

FEATURES = "--metrics.feature_extractor=s2dm_lightning.evaluation.RandomConv3dFeatures"
# The videos predict writes: <id>.gif, not <id>_panel.gif (the panel) nor <id>.mp4 (lossy H.264).
PREDICTED_GIFS = r"(?P<video_id>.+?)(?<!_panel)\.gif"


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """A 2-step checkpoint of the tiny config (12 videos: 2 test clips), its test report and predict's videos."""
    tmp_path = tmp_path_factory.mktemp("evaluate")
    config_path = tiny_config(tmp_path, data={"num_videos": 12})
    config = yaml.safe_load(config_path.read_text())
    # scale 2: the files are twice the model's size, so evaluate's resize (area average) is exercised
    config["trainer"]["callbacks"] = [{"class_path": "s2dm_lightning.callbacks.VideoPredictionWriter",
                                       "init_args": {"output_dir": str(tmp_path / "predicted"), "scale": 2}}]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    common = ["--config", str(config_path), "--trainer.logger=lightning.pytorch.loggers.TensorBoardLogger",
              f"--trainer.logger.save_dir={tmp_path / 'logs'}", "--trainer.enable_checkpointing=true"]
    fit = run_cli("fit", *common, "--trainer.max_steps=2")
    assert fit.returncode == 0, fit.stderr[-3000:]
    (checkpoint,) = (tmp_path / "logs").rglob("*.ckpt")
    stats = tmp_path / "real_stats.pt"
    test = run_cli("test", *common, f"--ckpt_path={checkpoint}", FEATURES, f"--metrics.real_stats_file={stats}",
                   f"--metrics.report_path={tmp_path / 'test_report.json'}")
    assert test.returncode == 0, test.stderr[-3000:]
    predict = run_cli("predict", *common, f"--ckpt_path={checkpoint}")
    assert predict.returncode == 0, predict.stderr[-3000:]
    return {"tmp": tmp_path, "config": config_path, "stats": stats, "videos": tmp_path / "predicted",
            "test": json.loads((tmp_path / "test_report.json").read_text())}


def _evaluate(predicted, name, *args):
    report = predicted["tmp"] / f"{name}.json"
    result = run_cli("evaluate", "--config", str(predicted["config"]), FEATURES,
                     f"--metrics.real_stats_file={predicted['stats']}", f"--metrics.report_path={report}", *args)
    return result, (json.loads(report.read_text()) if result.returncode == 0 else None)


def test_evaluate_of_predicted_gifs_gives_tests_numbers(predicted):
    result, report = _evaluate(predicted, "by_pattern", f"--videos={predicted['videos']}",
                               f"--pattern={PREDICTED_GIFS}")
    assert result.returncode == 0, result.stderr[-3000:]
    test = predicted["test"]
    assert report["real_statistics"]["source"] == "file", "the real side is test's statistics file, reused"
    assert report["num_generated_videos"] == test["num_generated_videos"] == 2
    assert report["feature_extractor"] == test["feature_extractor"]
    # the same protocol; evaluate records the number of videos it found as the count of generated videos
    assert report["protocol"]["overrides"] == {"num_generated": 2}
    assert {k: v for k, v in report["protocol"].items() if k not in ("overrides", "num_generated")} == \
        {k: v for k, v in test["protocol"].items() if k not in ("overrides", "num_generated")}
    # test scores its float videos quantized to uint8 levels (protocol "pixels"), the levels predict writes; a
    # GIF frame of <= 256 colours (these 32-px frames) keeps them exactly and the area resize undoes predict's
    # 2x nearest upscale exactly, so the features are those of test, in the same batch make-up: equal up to
    # float rounding (measured: bit equal).
    for name in ("fvd_custom", "kvd_custom"):
        assert report["metrics"][name] == pytest.approx(test["metrics"][name], rel=1e-5, abs=1e-9), name
    # test's bootstrap intervals and kept features come with it, so `compare` sets the two reports side by side
    assert report["real_side"] == test["real_side"] and report["bootstrap"].keys() == test["bootstrap"].keys()
    compared = predicted["tmp"] / "compared.json"
    compare = run_cli("compare", str(predicted["tmp"] / "test_report.json"), str(predicted["tmp"] / "by_pattern.json"),
                      "--paired", "--resamples=20", f"--output={compared}")
    assert compare.returncode == 0, compare.stderr[-3000:]
    difference = json.loads(compared.read_text())["fvd_difference"]
    assert difference["estimate"] == pytest.approx(0, abs=1e-5 * test["metrics"]["fvd_custom"] + 1e-9)
    scored = report["scored_videos"]
    assert scored["num_videos"] == 2 and scored["selection"] == "pattern" and scored["formats"] == {".gif": 2}
    assert scored["folder"] == str(predicted["videos"].resolve())


@pytest.mark.slow  # one more CLI run (~10 s); the mapping itself: tests/evaluation/test_scored_videos.py
def test_evaluate_by_csv_mapping_gives_tests_numbers(predicted, tmp_path):
    gifs = sorted(p for p in predicted["videos"].glob("*.gif") if not p.name.endswith("_panel.gif"))
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("file,video_id\n" + "".join(f"{p.name},{p.stem}\n" for p in reversed(gifs)))
    by_csv, report = _evaluate(predicted, "by_csv", f"--videos={predicted['videos']}", f"--mapping={mapping}")
    assert by_csv.returncode == 0, by_csv.stderr[-3000:]
    assert report["scored_videos"]["mapping"]["file"] == str(mapping.resolve())
    assert report["scored_videos"]["selection"] == "mapping"
    for name in ("fvd_custom", "kvd_custom"):  # the CSV's order is not the items' order: mapped by video_id
        assert report["metrics"][name] == pytest.approx(predicted["test"]["metrics"][name], rel=1e-5, abs=1e-9)


def _gif(path, frames=4, size=24, seed=0):
    rng = np.random.default_rng(seed)
    write_gif(path, rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8))


@pytest.mark.slow  # six CLI runs (~45 s on a busy machine); each message: tests/evaluation/test_scored_videos.py
def test_bad_input_is_named_last(predicted, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result, _ = _evaluate(predicted, "bad", f"--videos={empty}")
    assert_fails_with(result, "holds no video", str(empty), last=True)

    # too short, unreadable, a mapping naming a missing file: tests/evaluation/test_scored_videos.py (the same
    # ScoredVideoError, printed alone as these are)
    short = tmp_path / "short"
    short.mkdir()
    _gif(short / "a.gif")
    _gif(short / "c.gif")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("file,video_id\na.gif,not_a_test_video\nc.gif,not_a_test_video\n")
    result, _ = _evaluate(predicted, "bad", f"--videos={short}", f"--mapping={unknown}")
    assert_fails_with(result, "'not_a_test_video'", "not a video of the test split", last=True)

    one = tmp_path / "one"
    one.mkdir()
    _gif(one / "a.gif")
    result, _ = _evaluate(predicted, "bad", f"--videos={one}")
    assert_fails_with(result, "1 video selected (a.gif)", "at least 2", last=True)

    result, _ = _evaluate(predicted, "bad", f"--videos={predicted['videos']}")  # .mp4 and .gif of each video
    assert_fails_with(result, "more than one format", "--pattern", last=True)
