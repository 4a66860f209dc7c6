from __future__ import annotations

import json

import torch

from s2dm_lightning.data.flow import FlowSettings
from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.flow_format import identity_condition
from tests.data.fake_datasets import random_conditions


def test_roundtrip_frame_zero_exact(tmp_path):
    cache = FlowCache(tmp_path / "cache", FlowSettings(flow_size=8))
    flow = random_conditions(5, 8)
    assert not cache.has("a")
    cache.save("a", flow)
    assert cache.has("a")
    loaded = cache.load("a", expected_frames=5)
    assert loaded.dtype == torch.float32 and loaded.shape == (5, 3, 8, 8)
    assert torch.equal(loaded[0], identity_condition(8, 8))
    assert torch.allclose(loaded, flow, atol=2e-3)
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["a.pt", "meta.json"]
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert meta["settings"] == FlowSettings(flow_size=8).to_dict() and "package_version" in meta


def test_not_rebuilt_when_settings_unchanged(tmp_path):
    settings = FlowSettings(flow_size=8)
    FlowCache(tmp_path, settings).save("a", random_conditions(3, 8))
    before = (tmp_path / "a.pt").stat().st_mtime_ns
    (tmp_path / ".a.pt.x1.tmp").write_bytes(b"half written")  # a write killed midway
    reopened = FlowCache(tmp_path, settings)
    assert reopened.has("a") and (tmp_path / "a.pt").stat().st_mtime_ns == before
    assert not (tmp_path / ".a.pt.x1.tmp").exists()


def test_safe_distinct_file_names(tmp_path):
    cache = FlowCache(tmp_path, FlowSettings(flow_size=8))
    paths = {cache.path_for(v) for v in ["s01/anger/take000", "s01_anger_take000", "../x", "a b"]}
    assert len(paths) == 4
    assert all(p.parent == tmp_path and p.suffix == ".pt" for p in paths)
    cache.save("s01/anger/take000", random_conditions(2, 8))
    assert cache.has("s01/anger/take000") and not cache.has("s01_anger_take000")


def test_cache_of_an_older_flow_version_is_recomputed(tmp_path):
    # Version 3 decodes JPEG frames to gray at reduced scale: flows differ slightly from version 2's,
    # so a version-2 cache must not be reused.
    assert FlowSettings().version == 3
    old = FlowSettings(flow_size=8, version=2)
    FlowCache(tmp_path, old).save("a", random_conditions(3, 8))
    assert FlowCache(tmp_path, old).has("a")  # same version: kept
    current = FlowCache(tmp_path, FlowSettings(flow_size=8))
    assert not current.has("a") and not (tmp_path / "a.pt").exists()
    assert json.loads((tmp_path / "meta.json").read_text())["settings"]["version"] == 3
