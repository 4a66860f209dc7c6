"""A ``fit`` whose ``max_steps`` never reaches its validation interval says so at its start, with the fix."""

from __future__ import annotations

from tests.bad_input.cli import run_cli, tiny_config


def test_fit_below_its_validation_interval_says_it_will_not_validate(tmp_path):
    result = run_cli("fit", "--config", str(tiny_config(tmp_path)), "--trainer.max_steps=2",
                     "--trainer.val_check_interval=4", "--trainer.check_val_every_n_epoch=null",
                     "--trainer.limit_val_batches=1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "will not validate" in result.stderr and "--trainer.val_check_interval=2" in result.stderr, result.stderr


def test_fit_that_reaches_its_validation_says_nothing_of_it(tmp_path):
    result = run_cli("fit", "--config", str(tiny_config(tmp_path)), "--trainer.max_steps=2",
                     "--trainer.val_check_interval=2", "--trainer.check_val_every_n_epoch=null",
                     "--trainer.limit_val_batches=1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "will not validate" not in result.stderr
