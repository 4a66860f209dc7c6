"""Shareable real-statistics files: written once with their header, reused, refused under another
protocol, feature network or dataset with every difference named."""

from __future__ import annotations

import json
import stat

import pytest
import torch

from s2dm_lightning.evaluation import RandomConv3dFeatures, VideoMetricsCallback
from s2dm_lightning.evaluation.stats_file import FORMAT, RealStatisticsMismatchError
from s2dm_lightning.safe_load import load_torch_data
from tests.evaluation.helpers import FakeGenerator, cpu_trainer, tiny_synthetic_datamodule


def evaluate(tmp_path, root, stats_file, feature_dim=6, **protocol):
    callback = VideoMetricsCallback(feature_extractor=RandomConv3dFeatures(feature_dim=feature_dim, width=4),
                                    num_videos=4, real_stats_file=str(stats_file), **protocol)
    cpu_trainer(tmp_path, [callback]).test(FakeGenerator(), datamodule=tiny_synthetic_datamodule(root))
    return callback, json.loads(callback.last_report_path.read_text())


def test_a_stats_file_is_written_with_its_header_then_reused(tmp_path, tiny_synthetic_root):
    stats_file = tmp_path / "shared" / "synthetic_stylegan-v.pt"
    protocol = {"protocol": "stylegan-v", "num_real_clips": 6}
    first, report = evaluate(tmp_path / "a", tiny_synthetic_root, stats_file, **protocol)
    assert first.real_feature_passes == 1 and report["real_statistics"]["source"] == "computed"
    assert stat.S_IMODE(stats_file.stat().st_mode) == 0o644
    payload = load_torch_data(stats_file)  # pickle-free
    header = payload["header"]
    assert header["format"] == FORMAT and payload["num_samples"] == 6 and payload["cov"].shape == (6, 6)
    assert header["protocol"]["frames"] == "consecutive" and header["protocol"]["real_split"] == "train"
    assert len(header["feature_network"]["sha256"]) == 64 and header["package_version"]
    assert header["dataset"]["datamodule"] == "SyntheticDataModule" and header["dataset"]["num_videos"] == 10
    assert report["protocol"]["preset"] == "stylegan-v" and report["num_real_videos"] == 6

    second, again = evaluate(tmp_path / "b", tiny_synthetic_root, stats_file, **protocol)
    assert second.real_feature_passes == 0 and again["real_statistics"]["source"] == "file"
    assert again["metrics"] == report["metrics"]


def test_a_stats_file_of_another_protocol_or_network_is_refused_naming_the_difference(tmp_path, tiny_synthetic_root):
    stats_file = tmp_path / "real.pt"
    evaluate(tmp_path / "a", tiny_synthetic_root, stats_file, protocol="custom", frames="consecutive", frame_stride=1,
             num_real_clips=4)
    before = stats_file.read_bytes()
    with pytest.raises(RealStatisticsMismatchError,
                       match=r"metrics.real_stats_file='.*real.pt' was made under another protocol.*"
                             r"protocol.real_seed: 0 in the file, 1 here") as error:
        evaluate(tmp_path / "b", tiny_synthetic_root, stats_file, protocol="custom", frames="consecutive",
                 real_seed=1, num_real_clips=4)
    assert "feature_network." not in str(error.value) and "dataset." not in str(error.value), "only the difference"
    with pytest.raises(RealStatisticsMismatchError, match=r"feature_network.sha256: '[0-9a-f]{64}' in the file"):
        evaluate(tmp_path / "c", tiny_synthetic_root, stats_file, feature_dim=5, protocol="custom",
                 frames="consecutive", num_real_clips=4)
    with pytest.raises(RealStatisticsMismatchError, match="protocol.frames: 'consecutive' in the file, 'spread' here"):
        evaluate(tmp_path / "d", tiny_synthetic_root, stats_file)  # s2dm
    assert stats_file.read_bytes() == before, "a refused file is left as it was"


def test_a_file_that_is_no_stats_file_is_refused(tmp_path, tiny_synthetic_root):
    other = tmp_path / "other.pt"
    torch.save({"mean": torch.zeros(3)}, other)
    with pytest.raises(RealStatisticsMismatchError, match="is not a real-statistics file"):
        evaluate(tmp_path / "a", tiny_synthetic_root, other)


def test_statistics_of_one_feature_network_are_refused_under_another_naming_both(tmp_path, tiny_synthetic_root,
                                                                                 monkeypatch):
    """Real statistics made with VideoMAE-v2 features are refused under the I3D, and the other way round."""
    from s2dm_lightning.evaluation import features as features_module
    from s2dm_lightning.metrics import InceptionI3d
    from tests.metrics.videomae_v2_helpers import load_small_videomae_v2, small_weight_file

    monkeypatch.setattr(features_module, "load_videomae_v2", load_small_videomae_v2)
    videomae = small_weight_file(tmp_path / "vit_g_hybrid_pt_1200e_ssv2_ft.pth")
    i3d = tmp_path / "i3d_pretrained_400.pt"
    torch.save(InceptionI3d().state_dict(), i3d)
    stats_file = tmp_path / "real.pt"
    common = {"num_videos": 2, "real_stats_file": str(stats_file), "protocol": "custom", "num_real_clips": 2}
    made = VideoMetricsCallback(features="videomae_v2", videomae_v2_weights=str(videomae), **common)
    cpu_trainer(tmp_path / "a", [made]).test(FakeGenerator(), datamodule=tiny_synthetic_datamodule(tiny_synthetic_root))
    assert load_torch_data(stats_file)["header"]["feature_network"]["kind"] == "videomae_v2"
    assert load_torch_data(stats_file)["mean"].shape == (32,)
    refused = VideoMetricsCallback(features="i3d", i3d_weights=str(i3d), **common)
    with pytest.raises(RealStatisticsMismatchError,
                       match=r"feature_network.kind: 'videomae_v2' in the file, 'i3d' here"):
        cpu_trainer(tmp_path / "b", [refused]).test(FakeGenerator(),
                                                    datamodule=tiny_synthetic_datamodule(tiny_synthetic_root))
