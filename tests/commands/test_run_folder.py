"""``predict``/``test --ckpt_path`` of a run log into that run: no new ``version_N``, no "dirpath has changed"."""

from __future__ import annotations

from tests.bad_input.cli import run_cli, tiny_config


def _logged(tmp_path, **config):
    return ["--config", str(tiny_config(tmp_path, **config)), "--trainer.logger=lightning.pytorch.loggers.TensorBoardLogger",
            f"--trainer.logger.save_dir={tmp_path / 'logs'}", "--trainer.enable_checkpointing=true"]


def test_predict_of_a_checkpoint_writes_into_its_run(tmp_path):
    fit = run_cli("fit", *_logged(tmp_path))
    assert fit.returncode == 0, fit.stderr[-3000:]
    runs = sorted(p.name for p in (tmp_path / "logs").rglob("version_*"))
    (checkpoint,) = (tmp_path / "logs").rglob("*.ckpt")
    result = run_cli("predict", *_logged(tmp_path), f"--ckpt_path={checkpoint}", "--trainer.limit_predict_batches=1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dirpath has changed" not in result.stderr, result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "logs").rglob("version_*")) == runs
    assert (checkpoint.parent.parent / "predict").is_dir(), "predict logs into the run's own folder"


def test_test_of_a_checkpoint_reports_into_its_run(tmp_path):
    # 12 videos: the real side of FVD needs >= 2 test clips; the tiny custom extractor stands in for the I3D
    args = _logged(tmp_path, data={"num_videos": 12})
    fit = run_cli("fit", *args)
    assert fit.returncode == 0, fit.stderr[-3000:]
    runs = sorted(p.name for p in (tmp_path / "logs").rglob("version_*"))
    (checkpoint,) = (tmp_path / "logs").rglob("*.ckpt")
    result = run_cli("test", *args, f"--ckpt_path={checkpoint}", "--metrics.num_videos=2",
                     "--metrics.feature_extractor=s2dm_lightning.evaluation.RandomConv3dFeatures",
                     f"--metrics.real_stats_cache_dir={tmp_path / 'real_stats'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dirpath has changed" not in result.stderr, result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "logs").rglob("version_*")) == runs
    assert (checkpoint.parent.parent / "test" / "evaluation_report.json").is_file(), "test reports into the run"
