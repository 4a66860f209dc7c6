"""cFVD / sFVD: FVD within each group, averaged, on constructed features whose per-group answer is known."""

from __future__ import annotations

import json

import pytest
import torch

from s2dm_lightning.evaluation import RandomConv3dFeatures, VideoMetricsCallback
from s2dm_lightning.evaluation.conditional import grouped_fvd
from s2dm_lightning.metrics.functional import frechet_distance_from_features
from tests.evaluation.helpers import ClipDataModule, FakeGenerator, cpu_trainer

F64 = torch.float64


def test_per_group_fvd_is_the_closed_form_of_gaussians_with_known_means():
    # class c: real ~ N(0, I), generated ~ N(mu_c, I) with |mu_c|^2 = c^2 / 4: the true FVD within class c is
    # |mu_c|^2 (equal covariances: the trace term is 0), the true cFVD their mean, the true pooled FVD different.
    # Estimates from n = 4000 per side in d = 2: the plug-in bias is O(d / n) and the spread of |mean|^2 about
    # 2 sqrt(2 d / n) |mu| + ...: 0.05 covers both (about 4 std at c = 3).
    generator = torch.Generator().manual_seed(0)
    n, d = 4000, 2
    real, fake, real_labels, fake_labels = [], [], [], []
    for c in (0, 1, 2, 3):
        shift = torch.tensor([c / 2, 0.0], dtype=F64)
        real.append(torch.randn(n, d, generator=generator, dtype=F64))
        fake.append(torch.randn(n, d, generator=generator, dtype=F64) + shift)
        real_labels += [f"class{c}"] * n
        fake_labels += [f"class{c}"] * n
    result = grouped_fvd(torch.cat(real), real_labels, torch.cat(fake), fake_labels)
    for c in (0, 1, 2, 3):
        assert result["groups"][f"class{c}"] == pytest.approx(c * c / 4, abs=0.05)
    assert result["value"] == pytest.approx((0 + 1 + 4 + 9) / 4 / 4, abs=0.05) and result["left_out"] == {}
    pooled = float(frechet_distance_from_features(torch.cat(real), torch.cat(fake)))
    # the pooled FVD is another number: true |0.75|^2 + (sqrt(1.3125) - 1)^2 = 0.58 against the cFVD 0.875
    assert pooled == pytest.approx(0.584, abs=0.05)


def test_a_group_with_fewer_than_two_videos_on_a_side_is_left_out_and_labels_must_match():
    real, fake = torch.randn(5, 3, dtype=F64), torch.randn(5, 3, dtype=F64)
    result = grouped_fvd(real, ["a", "a", "a", "b", "b"], fake, ["a", "a", "b", "c", "c"])
    assert set(result["groups"]) == {"a"} and result["value"] == result["groups"]["a"]
    assert result["left_out"] == {"b": "2 real, 1 generated", "c": "0 real, 2 generated"}
    with pytest.raises(ValueError, match="one label per video"):
        grouped_fvd(real, ["a"], fake, ["a"] * 5)


class GroupedClips(ClipDataModule):
    """Clips whose video ``clip<i>`` is of class ``i % 2`` and subject ``i % 3``."""

    @staticmethod
    def video_groups(video_id: str) -> dict[str, str]:
        i = int(video_id.removeprefix("clip"))
        return {"class": str(i % 2), "subject": str(i % 3)}


def test_the_report_carries_cfvd_and_sfvd_beside_fvd_when_asked(tmp_path):
    callback = VideoMetricsCallback(feature_extractor=RandomConv3dFeatures(feature_dim=3, width=4),
                                    protocol="custom", conditional=["class", "subject"], bootstrap_resamples=0,
                                    report_path=str(tmp_path / "report.json"))
    cpu_trainer(tmp_path, [callback]).test(FakeGenerator(), datamodule=GroupedClips(num_test=12, num_test_videos=24))
    report = json.loads((tmp_path / "report.json").read_text())
    run = report["runs"][0]
    assert set(run["cfvd_custom"]["groups"]) == {"0", "1"} and set(run["sfvd_custom"]["groups"]) == {"0", "1", "2"}
    assert report["conditional_metrics"]["cfvd_custom"]["mean"] == pytest.approx(run["cfvd_custom"]["value"])
    # recomputed from the features kept beside the report: generated video i was made for test item i mod 12
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "report.features.safetensors"))
    real, fake = tensors["real"], tensors["generated_run0"]
    real_class = torch.tensor([i % 2 for i in range(12)])
    fake_class = torch.tensor([(i % 12) % 2 for i in range(24)])
    expected = [float(frechet_distance_from_features(real[real_class == c], fake[fake_class == c])) for c in (0, 1)]
    assert run["cfvd_custom"]["value"] == pytest.approx(sum(expected) / 2, rel=1e-9)


def test_conditional_fvds_need_a_data_module_that_knows_the_groups(tmp_path):
    callback = VideoMetricsCallback(feature_extractor=RandomConv3dFeatures(feature_dim=3, width=4),
                                    protocol="custom", conditional=["class"], bootstrap_resamples=0)
    with pytest.raises(ValueError, match="metrics.conditional='class' needs a data module .* ClipDataModule"):
        cpu_trainer(tmp_path, [callback]).test(FakeGenerator(), datamodule=ClipDataModule(num_test=4))
