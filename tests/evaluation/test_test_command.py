"""``python -m s2dm_lightning test`` through the real CLI on the tiny synthetic config."""

from __future__ import annotations

import json

import pytest

from s2dm_lightning.cli import S2DMCLI, main
from s2dm_lightning.io import file_sha256
from tests.commands.test_cli import REPO, tiny_run_args
from tests.received_files import last_line, run_cli, save_marker_torchscript

TINY_FEATURES = "--metrics.feature_extractor=s2dm_lightning.evaluation.RandomConv3dFeatures"


def test_test_without_weights_stops_before_anything_with_a_helpful_message(tmp_path, monkeypatch):
    monkeypatch.delenv("S2DM_I3D_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError) as error:
        main(["test", *tiny_run_args(tmp_path)])
    message = str(error.value)
    for needle in ("i3d_pretrained_400.pt", "VideoGPT", "TATS", "i3d_torchscript.pt", "StyleGAN-V",
                   "`metrics.i3d_weights`", "S2DM_I3D_WEIGHTS"):
        assert needle in message
    assert not (tmp_path / "synthetic").exists(), "nothing is prepared (let alone generated) before the check"


def test_metrics_section_is_a_top_level_config_key(tmp_path):
    cli = S2DMCLI(args=["--config", str(REPO / "configs" / "synthetic.yaml"), "--trainer.logger=false",
                        "--metrics.i3d_weights=/weights/i3d_pretrained_400.pt", "--metrics.num_videos=2048"],
                  run=False)
    assert cli.config["metrics"]["i3d_weights"] == "/weights/i3d_pretrained_400.pt"
    assert cli.config["metrics"]["num_videos"] == 2048 and cli.config["n_runs"] is None  # the preset's: 1


def test_test_with_two_runs_reports_mean_and_std(tmp_path):
    # 4-frame clips, one batch per run: keeps the CPU sampling short; the protocol is the same for 16
    main(["test", *tiny_run_args(tmp_path), "--data.init_args.num_frames=4", "--data.init_args.batch_size=4",
          "--model.init_args.num_inference_steps=1", "--model.init_args.unet.init_args.block_out_channels=[16,16,16]",
          "--model.init_args.unet.init_args.norm_num_groups=8", TINY_FEATURES,
          "--metrics.num_videos=4", "--n_runs=2",
          f"--metrics.real_stats_cache_dir={tmp_path / 'real_stats'}"])
    reports = list((tmp_path / "logs").rglob("evaluation_report.json"))
    assert len(reports) == 1
    text = reports[0].read_text()
    assert text.splitlines()[0].startswith('{"notice": "NOT FVD/KVD: features from the custom extractor')
    report = json.loads(text)
    assert report["n_runs"] == 2 and report["runs_completed"] == 2
    assert [run["run"] for run in report["runs"]] == [0, 1]
    assert report["num_generated_videos"] == 4 and report["seeds"]["sampling_seed"] == 0
    assert "100003" in report["seeds"]["rule"] and report["seeds"]["seed_everything"] == 0
    fvd = report["summary"]["fvd_custom"]
    assert fvd["values"][0] != fvd["values"][1], "run 1 samples with new seeds"
    assert fvd["std"] > 0 and report["metrics"]["fvd_custom"] == pytest.approx(fvd["mean"])
    assert report["config"]["metrics"]["num_videos"] == 4 and report["checkpoint"] is None
    assert list((tmp_path / "real_stats").glob("real_*.pt"))


def _torchscript_i3d_args(tmp_path, weights) -> list[str]:
    return ["test", *tiny_run_args(tmp_path), "--data.init_args.num_frames=4", "--data.init_args.batch_size=4",
            "--model.init_args.num_inference_steps=1", "--model.init_args.unet.init_args.block_out_channels=[16,16,16]",
            "--model.init_args.unet.init_args.norm_num_groups=8", "--metrics.num_videos=4",
            f"--metrics.i3d_weights={weights}", f"--metrics.real_stats_cache_dir={tmp_path / 'real_stats'}"]


def test_a_torchscript_i3d_is_refused_without_the_opt_in(tmp_path):
    """A TorchScript 'I3D' whose forward writes a file: `test` stops before running it, naming the file and
    the key that opts in."""
    marker = tmp_path / "marker"
    weights = save_marker_torchscript(tmp_path / "i3d_torchscript.pt", marker)
    result = run_cli(*_torchscript_i3d_args(tmp_path, weights))
    assert result.returncode != 0 and not marker.exists(), "the TorchScript program ran"
    last = last_line(result.stderr)
    assert f"metrics.i3d_weights='{weights}'" in last and "`metrics.allow_torchscript: true`" in last, result.stderr
    assert not (tmp_path / "synthetic").exists(), "stopped before preparing data"


@pytest.mark.slow
def test_the_opt_in_runs_the_torchscript_i3d_and_the_report_says_so(tmp_path):
    marker = tmp_path / "marker"
    weights = save_marker_torchscript(tmp_path / "i3d_torchscript.pt", marker)
    result = run_cli(*_torchscript_i3d_args(tmp_path, weights), "--metrics.allow_torchscript=true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert marker.exists(), "the opted-in file is the one that computed the features"
    report = json.loads(next((tmp_path / "logs").rglob("evaluation_report.json")).read_text())
    assert report["weights"]["loaded_as"] == "torchscript (opted in)"
    assert report["weights"]["sha256"] == file_sha256(weights) and report["feature_extractor"]["format"] == "torchscript"
    assert "FVD-standard" not in report["notice"] and "metrics.allow_torchscript" in report["notice"]
