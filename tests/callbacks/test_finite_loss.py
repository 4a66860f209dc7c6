"""FiniteLossGuard (s2dm_lightning/callbacks/finite_loss.py) through the real command line: a NaN injected into
a batch stops fit with an error naming the step, the loss terms and the last good checkpoint, and nothing is
written after it; with max_skipped_steps the bad steps are dropped and the run ends with finite weights."""

from __future__ import annotations

import subprocess

import torch
import yaml
from lightning.pytorch import Callback

from tests.callbacks.test_checkpoint_at_end import CHECKPOINTS
from tests.test_resume import ENV, EVERY, MAX_STEPS, REPO, _fit_args, _state, tiny_config


class NaNInjector(Callback):
    """Test-only: fills the batch's frames with NaN at the given global steps (a corrupt sample)."""

    def __init__(self, steps: list[int]) -> None:
        self.steps = set(steps)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step in self.steps:
            batch["frames"].fill_(float("nan"))


def _config(tmp_path, steps: list[int], max_skipped_steps: int | None = None):
    path = tiny_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    callbacks = config["trainer"]["callbacks"]
    next(c for c in callbacks if c["class_path"].endswith("StepPacer"))["init_args"] = {"pause": 0.0}
    callbacks.append({"class_path": "tests.callbacks.test_finite_loss.NaNInjector", "init_args": {"steps": steps}})
    if max_skipped_steps is not None:
        callbacks.append({"class_path": "s2dm_lightning.callbacks.FiniteLossGuard",
                          "init_args": {"max_skipped_steps": max_skipped_steps}})
    path.write_text(yaml.safe_dump(config))
    return path


def _run(config):
    return subprocess.run(_fit_args(config), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)


def _all_finite(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if torch.is_tensor(v) and v.is_floating_point())


def test_nan_batch_stops_fit_naming_step_terms_and_last_good_checkpoint(tmp_path):
    bad_step = EVERY + 2  # 6: after the interval checkpoint at 4
    result = _run(_config(tmp_path, [bad_step]))
    assert result.returncode == 1, result.stderr[-3000:]
    last_line = result.stderr.strip().splitlines()[-1]
    folder = tmp_path / CHECKPOINTS
    assert last_line.startswith("error: NonFiniteLossError: non-finite training step at global_step 6"), last_line
    assert "train/loss=nan" in last_line and f"last good checkpoint is {folder / 'last.ckpt'}" in last_line
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["epoch=1-step=4.ckpt", "last.ckpt"], names  # nothing written at or after the bad step
    last = _state(folder / "last.ckpt")
    assert last["global_step"] == EVERY
    for key in ("state_dict", "current_model_state"):  # the EMA copy and the trained weights
        assert _all_finite(last[key]), key


def test_max_skipped_steps_drops_bad_steps_and_the_run_ends_finite(tmp_path):
    result = _run(_config(tmp_path, [3, 7], max_skipped_steps=2))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("FiniteLossGuard: skipped training step") == 2
    assert "skipped training step 3" in result.stderr and "skipped training step 7" in result.stderr
    last = _state(tmp_path / CHECKPOINTS / "last.ckpt")
    assert last["global_step"] == MAX_STEPS
    assert _all_finite(last["state_dict"]) and _all_finite(last["current_model_state"])
    adam = {int(s["step"]) for s in last["optimizer_states"][0]["state"].values()}
    assert adam == {MAX_STEPS - 2}, "the two skipped steps moved no Adam state"

    (tmp_path / "again").mkdir()
    one_too_many = _run(_config(tmp_path / "again", [3, 5, 7], max_skipped_steps=2))
    assert one_too_many.returncode == 1
    assert "global_step 7" in one_too_many.stderr.splitlines()[-1] and "[3, 5]" in one_too_many.stderr
