"""Bad input: files given to the command line (docs/bad_input.md), through the real CLI in a subprocess."""

from __future__ import annotations

import torch

from tests.commands.test_cli import tiny_run_args
from tests.received_files import last_line, run_cli, save_pickled_checkpoint, save_random_bytes


def test_i3d_weights_not_a_weights_file(tmp_path):
    weights = save_random_bytes(tmp_path / "i3d_pretrained_400.pt")
    result = run_cli("test", *tiny_run_args(tmp_path), f"--metrics.i3d_weights={weights}")
    assert result.returncode != 0
    last = last_line(result.stderr)
    assert f"metrics.i3d_weights='{weights}'" in last and "is unreadable" in last, result.stderr[-2000:]
    assert not (tmp_path / "synthetic").exists(), "stopped before preparing data"


def test_received_checkpoint_with_pickle(tmp_path):
    marker = tmp_path / "marker"
    checkpoint = save_pickled_checkpoint(tmp_path / "received.ckpt", {"weight": torch.zeros(1)}, marker)
    result = run_cli("export", *tiny_run_args(tmp_path), f"--ckpt_path={checkpoint}",
                     f"--output_dir={tmp_path / 'export'}")
    assert result.returncode != 0
    assert not marker.exists(), "the pickled payload ran"
    last = last_line(result.stderr)
    assert f"--ckpt_path='{checkpoint}'" in last and "pickled Python objects" in last, result.stderr[-2000:]
    assert not (tmp_path / "export").exists()
