"""A write that fails half way (an injected ``OSError(ENOSPC)``), for each kind of file the package writes.

Each test shows: an error naming the file the user knows (not the temporary one), nothing under the
final name (or the previous file intact), no temporary file left, and the next run (no fault) not fooled:
it writes the file again instead of trusting a partial one. Files go through s2dm_lightning/io.py; the
fault is injected where a full disk shows itself: at ``fsync`` after half the bytes reached the disk
(every ``atomic_path`` writer), in safetensors' write (an exported pipeline folder) and in OpenCV's
PNG write (the synthetic world). The same faults from a real file-size limit (``ulimit -f``) through
the command line are in tests/test_failed_writes_cli.py.
"""

from __future__ import annotations

import errno
import json
import os
import re
import types

import numpy as np
import pytest
import torch

import s2dm_lightning.io as io_module
from s2dm_lightning.io import TEMP_MARK

NO_SPACE = "could not write {}: " + os.strerror(errno.ENOSPC)


def _temp_files(folder) -> list[str]:
    return sorted(str(p) for p in folder.rglob(f"*{TEMP_MARK}*"))


@pytest.fixture
def full_disk(monkeypatch):
    """``full_disk(".pt")``: every atomic write of a file ending in ``.pt`` keeps half its bytes and then fails
    with ENOSPC at fsync (where a full disk shows itself with delayed allocation). Returns the failed paths."""
    failed = []
    real_fsync = io_module._fsync

    def arm(suffix: str):
        def fsync(path):
            if str(path).endswith(suffix):
                failed.append(path)
                size = path.stat().st_size
                with open(path, "r+b") as handle:
                    handle.truncate(size // 2)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            real_fsync(path)

        monkeypatch.setattr(io_module, "_fsync", fsync)
        return failed

    yield arm
    monkeypatch.setattr(io_module, "_fsync", real_fsync)


def _no_space_error(path):
    return pytest.raises(OSError, match=re.escape(NO_SPACE.format(path)))


# ------------------------------------------------------------------------------------------- caches
def _synthetic(tmp_path):
    from s2dm_lightning.synthetic import SyntheticDataModule

    datamodule = SyntheticDataModule(root=str(tmp_path / "data"), num_videos=3, frames_per_video=3, image_size=16,
                                     resolution=16, flow_size=4, num_frames=2, dis_preset="ultrafast")
    datamodule.generate()
    return datamodule


def test_flow_cache_a_failed_write_is_reported_naming_the_file_and_the_next_preprocess_computes_it(
        tmp_path, full_disk, capsys):
    datamodule = _synthetic(tmp_path)
    failed = full_disk(".pt")
    summary = datamodule.preprocess(progress=False)
    cache = datamodule.flow_cache()
    assert summary.done == 0 and len(summary.failed) == 3 and len(failed) == 3
    video_id, reason = summary.failed[0]
    assert reason.startswith("saving failed: ") and reason.endswith(NO_SPACE.format(cache.path_for(video_id)))
    assert not list(cache.cache_dir.glob("*.pt")) and _temp_files(cache.cache_dir) == []
    full_disk(".never")  # the disk has room again
    again = datamodule.preprocess(progress=False)
    assert (again.done, again.skipped, again.failed) == (3, 0, [])
    assert cache.load(video_id).shape == (3, 3, 4, 4)


class _TinyVAE(torch.nn.Module):
    """What ``encode_posterior`` asks of a VAE: ``encode(x).latent_dist.mean / .std``."""

    config = {"latent_channels": 1}

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def encode(self, frames):
        mean = frames[:, :1, ::4, ::4] * self.scale
        return types.SimpleNamespace(latent_dist=types.SimpleNamespace(mean=mean, std=torch.ones_like(mean)))


def test_latent_cache_a_failed_write_is_reported_naming_the_file_and_the_next_run_encodes_it(tmp_path, full_disk):
    from s2dm_lightning.data.latent_cache import LatentCache, fill_latent_cache, vae_fingerprint

    datamodule = _synthetic(tmp_path)
    records = datamodule.records()
    vae = _TinyVAE()
    cache = LatentCache(tmp_path / "latents", vae_fingerprint(vae), 16)
    full_disk(".pt")
    summary = fill_latent_cache(cache, records, vae, progress=False)
    assert summary.done == 0 and len(summary.failed) == len(records)
    video_id, reason = summary.failed[0]
    assert NO_SPACE.format(cache.path_for(video_id)) in reason
    assert not list(cache.cache_dir.glob("*.pt")) and _temp_files(cache.cache_dir) == []
    full_disk(".never")
    again = fill_latent_cache(LatentCache(tmp_path / "latents", vae_fingerprint(vae), 16), records, vae,
                              progress=False)
    assert (again.done, again.skipped, again.failed) == (len(records), 0, [])
    assert cache.load(video_id)[0].shape == (3, 1, 4, 4)


def test_synthetic_world_a_failed_frame_write_leaves_no_dataset_and_the_next_run_generates_it(tmp_path, monkeypatch):
    import s2dm_lightning.synthetic.world as world
    from s2dm_lightning.synthetic import generate_synthetic_dataset

    real_imwrite, calls = world.cv2.imwrite, []

    def imwrite(path, image):  # OpenCV reports a full disk only by returning False
        calls.append(path)
        return False if len(calls) == 4 else real_imwrite(path, image)

    monkeypatch.setattr(world.cv2, "imwrite", imwrite)
    root = tmp_path / "data"
    with pytest.raises(OSError, match=r"could not write .*/videos/video_0001/frame_0000\.png \(a full disk"):
        generate_synthetic_dataset(root, num_videos=3, frames_per_video=3, image_size=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".data.lock"], "a half dataset or staging folder was left"
    monkeypatch.setattr(world.cv2, "imwrite", real_imwrite)
    generate_synthetic_dataset(root, num_videos=3, frames_per_video=3, image_size=16)
    assert len(list((root / "videos").rglob("*.png"))) == 9 and (root / "metadata.csv").is_file()


# ------------------------------------------------------------------------------ results and metrics
def test_samples_file_a_failed_write_leaves_no_samples_pt_and_a_rerun_writes_it(tmp_path, full_disk):
    from s2dm_lightning.commands.sample import write_outputs
    from s2dm_lightning.pipelines.text_to_video import TextToVideoOutput

    output = TextToVideoOutput(frames=torch.zeros(1, 3, 3, 8, 8), flows=torch.zeros(1, 3, 3, 8, 8),
                               reference_frames=torch.zeros(1, 3, 8, 8), initial_noise=torch.zeros(1, 3, 8, 8),
                               prompts=["a red square"], seeds=[0])
    full_disk(".pt")
    with _no_space_error(tmp_path / "out" / "samples.pt"):
        write_outputs(output, tmp_path / "out")
    assert not (tmp_path / "out" / "samples.pt").exists() and _temp_files(tmp_path) == []
    full_disk(".never")
    write_outputs(output, tmp_path / "out")
    assert torch.load(tmp_path / "out" / "samples.pt", weights_only=True)["prompts"] == ["a red square"]


@pytest.mark.parametrize("kind", ["fvd", "kvd"])
def test_real_statistics_file_a_failed_rewrite_keeps_the_previous_file(tmp_path, full_disk, kind):
    from s2dm_lightning.metrics import FrechetVideoDistance, KernelVideoDistance

    metric = FrechetVideoDistance(feature_dim=4) if kind == "fvd" else KernelVideoDistance()
    metric.update(torch.randn(8, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64), real=True)
    save = metric.save_real_statistics if kind == "fvd" else metric.save_real_features
    path = tmp_path / "stats" / "real.pt"
    save(path, metadata={"run": "old"})
    before = path.read_bytes()
    full_disk(".pt")
    with _no_space_error(path):
        save(path, metadata={"run": "new"})
    assert path.read_bytes() == before and _temp_files(tmp_path) == []
    fresh = FrechetVideoDistance(feature_dim=4) if kind == "fvd" else KernelVideoDistance()
    load = fresh.load_real_statistics if kind == "fvd" else fresh.load_real_features
    assert load(path) == {"run": "old"}


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".png", ".json"])
def test_videos_images_and_reports_a_failed_write_leaves_nothing_under_the_name(tmp_path, full_disk, suffix):
    from s2dm_lightning.evaluation.report import write_report
    from s2dm_lightning.video_files import write_gif, write_mp4, write_png

    frames = np.zeros((3, 8, 8, 3), np.uint8)
    writers = {".mp4": lambda p: write_mp4(p, frames), ".gif": lambda p: write_gif(p, frames),
               ".png": lambda p: write_png(p, frames[0]),
               ".json": lambda p: write_report(p, "test", {"fvd": 1.0})}
    path = tmp_path / f"result{suffix}"
    full_disk(suffix)
    with _no_space_error(path):
        writers[suffix](path)
    assert list(tmp_path.iterdir()) == []
    full_disk(".never")
    writers[suffix](path)
    assert path.stat().st_size > 0
    if suffix == ".json":
        assert json.loads(path.read_text())["fvd"] == 1.0


# ------------------------------------------------------------------------------------------- export
def test_export_folder_a_failed_weight_write_keeps_the_previous_export_whole(tmp_path, monkeypatch, text_encoder):
    import safetensors.torch

    from s2dm_lightning.models import S2DM
    from s2dm_lightning.models.export import load_pretrained, save_pretrained
    from tests.conftest import tiny_unet

    model = S2DM(tiny_unet(sample_size=8, in_channels=3), text_encoder, flow_fusion="tokens", flow_size=8,
                 num_inference_steps=2).eval()
    folder = tmp_path / "export"
    save_pretrained(model, folder)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    real_save_file = safetensors.torch.save_file

    def half_then_full(tensors, filename, metadata=None):
        real_save_file(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as handle:
            handle.truncate(handle.seek(0, 2) // 2)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr(safetensors.torch, "save_file", half_then_full)
    with torch.no_grad():
        next(model.unet.parameters()).add_(1.0)
    with _no_space_error(folder):
        save_pretrained(model, folder)
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before, "the previous export changed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"], "a staging folder was left"
    load_pretrained(folder, text_encoder=text_encoder)  # still loads
    monkeypatch.setattr(safetensors.torch, "save_file", real_save_file)
    save_pretrained(model, folder)
    reloaded = load_pretrained(folder, text_encoder=text_encoder)
    assert torch.equal(next(reloaded.unet.parameters()), next(model.unet.parameters()))
