"""Bootstrap intervals in the test report, the features kept beside it, and `compare` of two reports."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from s2dm_lightning.evaluation import RandomConv3dFeatures, VideoMetricsCallback
from s2dm_lightning.evaluation.intervals import (
    RealSideMismatchError,
    compare_reports,
    features_path,
    tensor_sha256,
)
from s2dm_lightning.metrics.functional import frechet_distance_from_features
from tests.bad_input.cli import run_cli
from tests.evaluation.helpers import ClipDataModule, FakeGenerator, cpu_trainer, write_constructed_report

F64 = torch.float64


class SeededFakeGenerator(FakeGenerator):
    """FakeGenerator whose noise also depends on ``sampling_seed``: two seeds = two samples of one model."""

    def fake(self, frames: torch.Tensor, keys: list[int]) -> torch.Tensor:
        return super().fake(frames, [k + 104729 * self.hparams.sampling_seed for k in keys])


def scored_report(folder, sampling_seed=0, extractor_seed=0, **options):
    callback = VideoMetricsCallback(feature_extractor=RandomConv3dFeatures(feature_dim=4, width=4, seed=extractor_seed),
                                    report_path=str(folder / "evaluation_report.json"), **options)
    cpu_trainer(folder, [callback]).test(SeededFakeGenerator(sampling_seed),
                                         datamodule=ClipDataModule(num_test=8, num_test_videos=16, batch_size=4))
    return json.loads(callback.last_report_path.read_text()), callback.last_report_path


def test_every_run_carries_its_interval_with_resamples_and_seed_and_a_seed_repeats_it(tmp_path):
    report, path = scored_report(tmp_path / "a", bootstrap_resamples=30, bootstrap_seed=5)
    again, _ = scored_report(tmp_path / "b", bootstrap_resamples=30, bootstrap_seed=5)
    other, _ = scored_report(tmp_path / "c", bootstrap_resamples=30, bootstrap_seed=6)
    intervals = report["runs"][0]["intervals"]
    assert intervals["num_resamples"] == 30 and intervals["seed"] == 5 and intervals["confidence"] == 0.95
    assert report["bootstrap"]["num_resamples"] == 30 and report["bootstrap"]["seed"] == 5
    fvd = intervals["fvd_custom"]
    assert fvd["low"] < fvd["high"] and fvd["std"] > 0  # (near FVD 0 the percentile interval may lie above the
    # estimate: the plug-in FVD is biased upward on resamples, see metrics/bootstrap.py)
    # the interval's estimate is the report's FVD (float64 here, the metric's float64 sums there)
    assert fvd["estimate"] == pytest.approx(report["metrics"]["fvd_custom"], rel=1e-6)
    assert {"low", "high", "estimate", "std"} <= set(intervals["kvd_custom"])
    # same features (same batches, one process) and seed: the same draws, the same interval
    assert again["runs"][0]["intervals"]["fvd_custom"] == pytest.approx(fvd, rel=1e-9)
    assert other["runs"][0]["intervals"]["fvd_custom"]["low"] != pytest.approx(fvd["low"], rel=1e-9)
    # the features beside the report: what the report's FVD was computed from
    tensors = load_file(str(features_path(path)))
    assert tensors["real"].shape == (8, 4) and tensors["generated_run0"].shape == (16, 4)
    assert tensor_sha256(tensors["real"]) == report["real_side"]["real_features_sha256"]
    assert float(frechet_distance_from_features(tensors["real"], tensors["generated_run0"])) == pytest.approx(
        report["metrics"]["fvd_custom"], rel=1e-6)


def test_zero_resamples_turn_the_intervals_off_and_one_is_refused(tmp_path):
    report, _ = scored_report(tmp_path, bootstrap_resamples=0)
    assert report["runs"][0]["intervals"] is None and report["bootstrap"]["num_resamples"] == 0
    with pytest.raises(ValueError, match="metrics.bootstrap_resamples"):
        VideoMetricsCallback(bootstrap_resamples=1)


def gaussian(n, shift, seed, d=3):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64) + shift


def test_two_samples_of_one_distribution_cover_zero_and_a_shifted_one_does_not(tmp_path):
    real = gaussian(300, 0.0, 1)
    a = write_constructed_report(tmp_path / "a", real, gaussian(300, 0.0, 2))
    b = write_constructed_report(tmp_path / "b", real, gaussian(300, 0.0, 3))
    shifted = write_constructed_report(tmp_path / "s", real, gaussian(300, 0.6, 4))
    same = compare_reports(a, b, num_resamples=200, seed=0)
    assert same["fvd_difference"]["low"] < 0 < same["fvd_difference"]["high"]
    assert same["kvd_difference"]["low"] < 0 < same["kvd_difference"]["high"]
    # FVD(shifted) - FVD(a) ~ |0.6|^2 * 3 = 1.08 (true value); its interval lies above 0
    apart = compare_reports(shifted, a, num_resamples=200, seed=0)
    assert apart["fvd_difference"]["low"] > 0 and apart["fvd_difference"]["estimate"] == pytest.approx(1.08, abs=0.3)


@pytest.mark.parametrize("change, named", [
    ({"feature_network": {"kind": "i3d", "sha256": "def"}}, "feature_network"),
    ({"preset": "lvdm"}, "preset"),
    ({"real_features_sha256": "0" * 64}, "real_features_sha256"),
])
def test_reports_on_different_real_sides_are_refused_naming_the_difference(tmp_path, change, named):
    real = gaussian(20, 0.0, 1)
    a = write_constructed_report(tmp_path / "a", real, gaussian(20, 0.0, 2))
    b = write_constructed_report(tmp_path / "b", real, gaussian(20, 0.0, 3), change)
    with pytest.raises(RealSideMismatchError, match=f"different real sides.*{named}"):
        compare_reports(a, b, num_resamples=10)


def test_compare_command_on_two_sampling_seeds_of_one_model_and_a_refusal(tmp_path):
    _, path_a = scored_report(tmp_path / "a", sampling_seed=0, bootstrap_resamples=0)
    _, path_b = scored_report(tmp_path / "b", sampling_seed=1, bootstrap_resamples=0)
    _, path_c = scored_report(tmp_path / "c", sampling_seed=0, extractor_seed=1, bootstrap_resamples=0)
    out = tmp_path / "difference.json"
    done = run_cli("compare", str(path_a), str(path_b), "--resamples", "100", "--output", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["fvd_difference"]["low"] <= 0 <= result["fvd_difference"]["high"]
    assert "FVD(A) - FVD(B)" in done.stdout and "covers 0" in done.stdout.splitlines()[0]
    refused = run_cli("compare", str(path_a), str(path_c))
    assert refused.returncode == 2
    assert "different real sides" in refused.stderr.strip().splitlines()[-1]
    assert "feature_network" in refused.stderr.strip().splitlines()[-1]
