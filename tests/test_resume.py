"""``fit --ckpt_path last`` (s2dm_lightning/resume.py): the resolver on small files, and the real CLI killed
with SIGKILL at several moments, then resumed."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Callback

REPO = Path(__file__).resolve().parents[1]
EVERY = 4  # checkpoint interval of the tiny config (training steps)
MAX_STEPS = 12
EMA_START = 2  # EMAWeightAveraging's update_starting_at_step


class StepPacer(Callback):
    """Test-only callback: prints ``start <step> ema <updates>`` when training starts and ``step <n>`` after
    each batch, then sleeps, so the test can kill the process at a known step."""

    def __init__(self, pause: float = 0.3) -> None:
        self.pause = pause

    def on_train_start(self, trainer, pl_module) -> None:
        ema = next(c for c in trainer.callbacks if type(c).__name__ == "EMAWeightAveraging")
        print(f"start {trainer.global_step} ema {int(ema._average_model.n_averaged)}", flush=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        print(f"step {trainer.global_step}", flush=True)
        time.sleep(self.pause)


def tiny_config(tmp_path: Path, save_top_k: int = 1) -> Path:
    """configs/synthetic.yaml's trainer and callbacks (ModelCheckpoint every_n_train_steps + save_last,
    EMAWeightAveraging) around a tiny UNet on 8 x 8 synthetic videos, everything under tmp_path."""
    config = yaml.safe_load((REPO / "configs" / "synthetic.yaml").read_text())
    trainer = config["trainer"]
    trainer.update(max_steps=MAX_STEPS, val_check_interval=None, limit_val_batches=0, log_every_n_steps=1,
                   enable_progress_bar=False, default_root_dir=str(tmp_path / "logs"))
    trainer["logger"]["init_args"]["save_dir"] = str(tmp_path / "logs")
    checkpoint, ema = trainer["callbacks"][0], trainer["callbacks"][1]
    checkpoint["init_args"].update(every_n_train_steps=EVERY, save_top_k=save_top_k)
    ema["init_args"].update(decay=0.9, update_starting_at_step=EMA_START)
    pacer = {"class_path": "tests.test_resume.StepPacer"}
    trainer["callbacks"] = [checkpoint, ema, pacer]
    init = config["model"]["init_args"]
    init["unet"]["init_args"].update(sample_size=8, block_out_channels=[8, 16], cross_attention_dim=32,
                                     down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                                     up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
                                     attention_head_dim=4, norm_num_groups=4)
    init["text_encoder"] = {"class_path": "tests.conftest.HashTextEncoder"}
    init.update(flow_size=8, flow_patch_size=4, frames_per_step=2, warmup_steps=4)
    config["data"]["init_args"].update(root=str(tmp_path / "synthetic"), resolution=8, flow_size=8, image_size=16,
                                       num_videos=8, frames_per_video=8, num_frames=4, batch_size=2, val_videos=1)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# -- the resolver on small files --------------------------------------------------------------------------


def _fake_checkpoint(path: Path, step: int, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "state_dict": {"w": torch.full((256,), float(step))}}, path)
    os.utime(path, (mtime, mtime))
    return path


def _truncate(path: Path) -> None:
    """What a kill mid-write leaves: the first part of the file, no zip central directory."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _trainer(root: Path, logger: bool = True):
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    return Trainer(default_root_dir=root, logger=TensorBoardLogger(root, name="exp") if logger else False,
                   callbacks=[ModelCheckpoint(every_n_train_steps=4, save_last=True)], enable_progress_bar=False)


def test_last_is_newest_complete_checkpoint_across_versions_and_logging_continues_there(tmp_path, capsys):
    from s2dm_lightning.resume import resolve_last

    _fake_checkpoint(tmp_path / "exp/version_0/checkpoints/epoch=0-step=8.ckpt", 8, 1000)
    newest = _fake_checkpoint(tmp_path / "exp/version_0/checkpoints/last.ckpt", 8, 1001)
    (tmp_path / "exp/version_1").mkdir()  # what Lightning's next-version rule would have picked
    trainer = _trainer(tmp_path)
    assert resolve_last(trainer, "last") == str(newest)
    assert trainer.logger.version == 0, "the logger continues the checkpoint's version folder"
    assert trainer.logger._kwargs["purge_step"] == 8
    assert "resuming from" in capsys.readouterr().err
    assert resolve_last(_trainer(tmp_path), "some/explicit.ckpt") == "some/explicit.ckpt"


def test_truncated_newest_falls_back_to_previous_complete_and_says_so(tmp_path, capsys):
    from s2dm_lightning.resume import resolve_last

    folder = tmp_path / "exp/version_0/checkpoints"
    older = _fake_checkpoint(folder / "epoch=0-step=4.ckpt", 4, 1000)
    _truncate(_fake_checkpoint(folder / "epoch=1-step=8.ckpt", 8, 1001))
    _truncate(_fake_checkpoint(folder / "last.ckpt", 8, 1002))
    assert resolve_last(_trainer(tmp_path), "last") == str(older)
    err = capsys.readouterr().err
    assert "skipping" in err and "step=8.ckpt" in err and "last.ckpt" in err and "global_step 4" in err
    assert sorted(p.name for p in folder.iterdir()) == ["epoch=0-step=4.ckpt", "epoch=1-step=8.ckpt.incomplete",
                                                         "last.ckpt.incomplete"], "the broken files moved aside"


def test_nothing_to_resume_trains_from_step_zero(tmp_path, capsys):
    from s2dm_lightning.resume import resolve_last

    assert resolve_last(_trainer(tmp_path), "last") is None
    assert "training starts from step 0" in capsys.readouterr().err
    (tmp_path / "exp/version_0").mkdir(parents=True)  # a run killed before its first checkpoint
    trainer = _trainer(tmp_path)
    assert resolve_last(trainer, "last") is None
    assert trainer.logger.version == 0 and trainer.logger._kwargs["purge_step"] == 0, "its events are replaced"
    _truncate(_fake_checkpoint(tmp_path / "exp/version_0/checkpoints/last.ckpt", 4, 1000))
    assert resolve_last(_trainer(tmp_path), "last") is None
    assert "WARNING" in capsys.readouterr().err


def test_symlinked_last_counts_once_and_a_non_lightning_file_is_skipped(tmp_path):
    from s2dm_lightning.resume import IncompleteCheckpoint, newest_complete

    folder = tmp_path / "checkpoints"
    step = _fake_checkpoint(folder / "epoch=0-step=4.ckpt", 4, 1000)
    (folder / "last.ckpt").symlink_to(step.name)
    torch.save({"weights": torch.zeros(2)}, folder / "other.ckpt")
    torch.save({"global_step": 9, "hparams": Path("x")}, folder / "pickled.ckpt")  # needs pickle to load
    for name in ("other.ckpt", "pickled.ckpt"):
        os.utime(folder / name, (2000, 2000))
    newest, skipped = newest_complete([folder])
    assert newest.global_step == 4 and newest.path.name == "last.ckpt" and newest.path.resolve() == step
    reasons = {p.name: why for p, why in skipped}
    assert "global_step" in str(reasons["other.ckpt"]) and "weights_only" in str(reasons["pickled.ckpt"])
    assert not any(isinstance(why, IncompleteCheckpoint) for why in reasons.values()), "complete files stay put"


# -- the real command line, killed with SIGKILL and resumed ------------------------------------------------


ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _fit_args(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "s2dm_lightning", "fit", "--config", str(config), *extra]


def _fit(config: Path) -> subprocess.Popen:
    return subprocess.Popen(_fit_args(config), cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)


def _lines(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in stream], daemon=True).start()
    return lines


def _kill_when(process: subprocess.Popen, moment: str, folder: Path) -> int:
    """SIGKILL the run at ``moment``; returns the last step it reported."""
    lines, last_step, deadline = _lines(process.stdout), 0, time.monotonic() + 300
    while time.monotonic() < deadline:
        if moment == "right_after_checkpoint" and list(folder.glob(f"*step={2 * EVERY}.ckpt")):
            break  # the file exists: Lightning may still be writing it
        try:
            line = lines.get(timeout=0.005)
        except queue.Empty:
            continue
        if line.startswith("step "):
            last_step = int(line.split()[1])
        if (moment, last_step) in {("before_first_checkpoint", EVERY // 2), ("between_checkpoints", EVERY + 2),
                                   ("truncated_newest", 2 * EVERY + 2)}:
            break
    else:
        raise AssertionError(f"the run never reached {moment}")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    return last_step


def _zip_intact(path: Path) -> bool:
    """Independent of the resolver's torch.load check: the zip's directory and every member's CRC."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["before_first_checkpoint", "right_after_checkpoint", "between_checkpoints",
                                    "truncated_newest"])
def test_killed_fit_resumes_from_newest_complete_checkpoint(tmp_path, moment):
    config = tiny_config(tmp_path, save_top_k=-1 if moment == "truncated_newest" else 1)
    folder = tmp_path / "logs/synthetic/version_0/checkpoints"
    killed_at = _kill_when(_fit(config), moment, folder)
    if moment == "truncated_newest":  # a kill mid-write of the step-8 checkpoint and of last.ckpt
        for path in [folder / "last.ckpt", *folder.glob(f"*step={2 * EVERY}.ckpt")]:
            _truncate(path)
    complete = [p for p in folder.glob("*.ckpt") if _zip_intact(p)] if folder.is_dir() else []
    expected = max((_state(p)["global_step"] for p in complete), default=0)
    expected_ema = max((int(_state(p)["averaging_state"]["n_averaged"]) for p in complete), default=0)

    resumed = subprocess.run(_fit_args(config, "--ckpt_path", "last"), cwd=REPO, env=ENV, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    start = next(line for line in resumed.stdout.splitlines() if line.startswith("start ")).split()
    start_step, start_ema = int(start[1]), int(start[3])
    print(f"{moment}: killed after step {killed_at}, resumed at step {start_step}, lost {killed_at - start_step}")
    assert start_step == expected, resumed.stderr[-3000:]
    if moment != "truncated_newest":  # there the test itself destroyed the step-8 checkpoint
        assert killed_at - start_step <= EVERY + 1, "at most one checkpoint interval (and the step being written) lost"
    assert start_ema == expected_ema, "the EMA's update count comes back from the checkpoint"
    if moment == "truncated_newest":
        assert start_step == EVERY and "skipping" in resumed.stderr and "last.ckpt" in resumed.stderr
    if expected == 0:
        assert "training starts from step 0" in resumed.stderr

    runs = sorted(p.name for p in (tmp_path / "logs/synthetic").iterdir() if p.is_dir())  # not the run lock file
    assert runs == ["version_0"], "one run folder"
    final = _state(folder / "last.ckpt")
    assert final["global_step"] == MAX_STEPS
    assert final["lr_schedulers"][0]["last_epoch"] == MAX_STEPS, "the LR schedule continued, not restarted"
    optimizer_steps = {int(s["step"]) for s in final["optimizer_states"][0]["state"].values()}
    assert optimizer_steps == {MAX_STEPS}, "Adam's step counts continued"
    if start_step > EMA_START:  # from then on every step adds one update to the restored count
        assert int(final["averaging_state"]["n_averaged"]) == start_ema + MAX_STEPS - start_step, \
            "the EMA continued from its restored state"
    _assert_tensorboard_run_is_continuous(tmp_path / "logs/synthetic/version_0", start_step)


def _assert_tensorboard_run_is_continuous(run: Path, start_step: int) -> None:
    """TensorBoard's reading of the run folder: each step logged once (the killed run's events after the
    checkpoint are purged), in order, up to the last. Lightning logs a batch's metrics after its
    on_train_batch_end, where the checkpoint is written, so a kill between the two loses the log point
    of the checkpoint's own batch (logged at step start_step - 1): the only gap allowed."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    tag = next(t for t in events.Tags()["scalars"] if "loss" in t)
    steps = [e.step for e in events.Scalars(tag)]
    assert steps == sorted(set(steps)) and steps[-1] == MAX_STEPS - 1, f"{tag} steps {steps}"
    assert set(range(MAX_STEPS)) - set(steps) <= {start_step - 1}, f"{tag} steps {steps}"


def _fake_hpc_checkpoint(path: Path, step: int, mtime: float, dirpath: Path) -> Path:
    """What Lightning's SLURM requeue handler writes: a full checkpoint whose ModelCheckpoint state names the
    run's checkpoints folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"dirpath": str(dirpath), "last_model_path": ""}
    torch.save({"global_step": step, "callbacks": {"ModelCheckpoint{'every_n_train_steps': 4}": state}}, path)
    os.utime(path, (mtime, mtime))
    return path


def test_last_counts_this_experiments_newer_hpc_checkpoint_and_logs_into_its_run(tmp_path, capsys):
    from s2dm_lightning.resume import resolve_last

    run = tmp_path / "exp/version_0"
    _fake_checkpoint(run / "checkpoints/last.ckpt", 8, 1000)
    (tmp_path / "exp/version_1").mkdir()
    hpc = _fake_hpc_checkpoint(tmp_path / "hpc_ckpt_1.ckpt", 10, 1001, run / "checkpoints")
    trainer = _trainer(tmp_path)
    assert resolve_last(trainer, "last") == str(hpc), "the requeue signal's checkpoint is the newest"
    assert trainer.logger.version == 0 and trainer.logger._kwargs["purge_step"] == 10, "logs go on in its run"
    assert "hpc_ckpt_1.ckpt (global_step 10)" in capsys.readouterr().err

    os.utime(run / "checkpoints/last.ckpt", (1002, 1002))  # SIGTERM after the requeue wrote last.ckpt later
    assert resolve_last(_trainer(tmp_path), "last") == str(run / "checkpoints/last.ckpt")


def test_hpc_checkpoint_of_another_experiment_in_the_same_root_is_not_resumed(tmp_path):
    from s2dm_lightning.resume import resolve_last

    mine = _fake_checkpoint(tmp_path / "exp/version_0/checkpoints/last.ckpt", 8, 1000)
    _fake_hpc_checkpoint(tmp_path / "hpc_ckpt_1.ckpt", 50, 2000, tmp_path / "other/version_0/checkpoints")
    _truncate(_fake_hpc_checkpoint(tmp_path / "hpc_ckpt_2.ckpt", 60, 2001, tmp_path / "exp/version_0/checkpoints"))
    assert resolve_last(_trainer(tmp_path), "last") == str(mine)
