"""Bad input of the error bars and the LFDM protocol: two reports on different real sides, data the preset refuses."""

from __future__ import annotations

import pytest
import torch

from s2dm_lightning.evaluation import RandomConv3dFeatures, VideoMetricsCallback
from tests.bad_input.cli import run_cli
from tests.evaluation.helpers import ClipDataModule, FakeGenerator, cpu_trainer, write_constructed_report


def test_compare_reports_on_other_real_sides(tmp_path):
    real = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = write_constructed_report(tmp_path / "a", real, real[:10] + 0.1)
    b = write_constructed_report(tmp_path / "b", real, real[10:] + 0.1, {"preset": "lvdm"})
    done = run_cli("compare", str(a), str(b))
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "different real sides" in last and "preset: 's2dm' in A, 'lvdm' in B" in last and str(a) in last
    missing = run_cli("compare", str(a), str(tmp_path / "nowhere.json"))
    assert missing.returncode == 2 and "nowhere.json" in missing.stderr.strip().splitlines()[-1]


def test_lfdm_protocol_with_other_data(tmp_path):
    callback = VideoMetricsCallback(feature_extractor=RandomConv3dFeatures(feature_dim=3, width=4), protocol="lfdm")
    with pytest.raises(ValueError, match=r"metrics.protocol='lfdm'.*data.init_args.num_frames=None \(needs 40\)"):
        cpu_trainer(tmp_path, [callback]).test(FakeGenerator(), datamodule=ClipDataModule())
    assert callback.last_report_path is None  # stopped before anything was scored or written
