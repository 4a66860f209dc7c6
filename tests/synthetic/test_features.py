"""The synthetic feature network: shapes, export and loading, clear errors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from s2dm_lightning.safe_load import ReceivedFileError
from s2dm_lightning.synthetic.features import (
    SyntheticFeatureNet,
    export_feature_extractor,
    load_feature_extractor,
)


def test_export_and_load_give_the_same_network(tmp_path):
    net = SyntheticFeatureNet(feature_dim=8, width=4).eval()
    path = export_feature_extractor(net, tmp_path / "net.safetensors")
    loaded = load_feature_extractor(path)
    videos = torch.rand(2, 4, 3, 16, 16) * 2 - 1
    # same weights, same batch, same CPU kernels: equal up to float32 rounding
    assert torch.allclose(loaded(videos), net(videos), atol=1e-6, rtol=0)
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"class": "Other"})
    with pytest.raises(ReceivedFileError, match=r"metrics\.feature_extractor_file='.*other\.safetensors'.*'Other'"):
        load_feature_extractor(tmp_path / "other.safetensors", "metrics.feature_extractor_file")


def test_network_shapes_and_clear_errors(tmp_path):
    net = SyntheticFeatureNet(feature_dim=8, width=4)
    assert net(torch.zeros(2, 16, 3, 32, 32)).shape == (2, 8)
    assert [t.shape[1] for t in net.classify(torch.zeros(1, 3, 3, 8, 8))] == [4, 3, 4]
    with pytest.raises(ValueError, match=r"\(B, F, 3, H, W\)"):
        net(torch.zeros(2, 3, 32, 32))
    with pytest.raises(FileNotFoundError, match="synthetic_features"):
        load_feature_extractor(tmp_path / "missing.pt")
