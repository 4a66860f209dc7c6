"""Bad input: files given to the command line (docs/bad_input.md), through the real CLI in a subprocess."""

from __future__ import annotations

import pytest
import torch

from s2dm_lightning.evaluation.protocol import PRESETS
from s2dm_lightning.evaluation.real_stats import RealStatistics
from s2dm_lightning.evaluation.stats_file import FORMAT, save_stats_file
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


@pytest.mark.slow
def test_real_stats_file_other_protocol(tmp_path):
    stats_file = tmp_path / "real_stats_mug_stylegan.pt"
    side = {**PRESETS["s2dm"].real_side(16, 32), "frames": "consecutive"}
    header = {"format": FORMAT, "protocol": side, "feature_network": {"sha256": "0" * 64}, "dataset": {}}
    save_stats_file(stats_file, header, RealStatistics(torch.zeros(4), torch.eye(4), 8, torch.zeros(8, 4)))
    before = stats_file.read_bytes()
    result = run_cli("test", *tiny_run_args(tmp_path), f"--metrics.real_stats_file={stats_file}",
                     "--metrics.feature_extractor=s2dm_lightning.evaluation.RandomConv3dFeatures")
    assert result.returncode != 0
    last = last_line(result.stderr)
    assert f"metrics.real_stats_file='{stats_file}' was made under another protocol" in last, result.stderr[-2000:]
    assert "protocol.frames: 'consecutive' in the file, 'spread' here" in last and "feature_network.sha256" in last
    assert stats_file.read_bytes() == before
    assert not list(tmp_path.rglob("evaluation_report.json")), "stopped before generating"
