"""LineProgressBar: plain progress lines when stdout is a file (a SLURM log), in-process and through the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from s2dm_lightning.callbacks import LineProgressBar
from tests.commands.test_cli import REPO, tiny_run_args

LINE = re.compile(r"^step (\d+)/(\d+) \| epoch (\d+) \| ([\d.]+) it/s \| ETA (\d+:\d\d:\d\d) \| train/loss ([-\d.e]+)$",
                  re.MULTILINE)


class TinyRegression(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_line_every_n_steps_and_at_the_last_step(tmp_path, capsys):
    data = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=2)  # 4 steps an epoch
    trainer = pl.Trainer(max_steps=5, callbacks=[LineProgressBar(every_n_steps=2)], logger=False,
                         enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(TinyRegression(), data)
    found = LINE.findall(capsys.readouterr().out)
    assert [(int(step), int(total), int(epoch)) for step, total, epoch, *_ in found] == [(2, 5, 0), (4, 5, 0), (5, 5, 1)]
    assert found[-1][4] == "0:00:00", "nothing is left after the last step"


def test_every_n_steps_must_be_positive():
    with pytest.raises(ValueError, match="every_n_steps"):
        LineProgressBar(every_n_steps=0)


@pytest.mark.slow
def test_fit_with_stdout_in_a_file_writes_progress_lines(tmp_path):
    """What a SLURM log shows: the CLI picks LineProgressBar because stdout is not a terminal."""
    args = [a for a in tiny_run_args(tmp_path) if not a.startswith("--trainer.enable_progress_bar")]
    log = tmp_path / "slurm.out"
    with log.open("w") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "s2dm_lightning", "fit", *args, "--trainer.max_steps=6",
             "--progress_every_n_steps=2"],
            stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=600,
            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    text = log.read_text()
    found = LINE.findall(text)
    assert [int(step) for step, *_ in found] == [2, 4, 6], text[-3000:]
    assert all(int(total) == 6 for _, total, *_ in found)
    assert all(float(rate) > 0 and float(loss) > 0 for _, _, _, rate, _, loss in found)
    assert "/-2" not in text and "\r" not in text
