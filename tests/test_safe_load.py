"""s2dm_lightning.safe_load: received files load as data; code in them never runs; errors name the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s2dm_lightning import safe_load
from s2dm_lightning.safe_load import (
    LOADED_TORCHSCRIPT_KNOWN,
    LOADED_TORCHSCRIPT_OPTED_IN,
    ReceivedFileError,
    file_sha256,
    load_checkpoint_state_dict,
    load_numpy,
    load_torch_data,
    load_torchscript,
)
from tests.received_files import save_marker_torchscript, save_pickled_checkpoint, save_random_bytes


def test_a_pickled_payload_is_refused_unrun_and_the_error_names_file_and_option(tmp_path):
    marker = tmp_path / "marker"
    path = save_pickled_checkpoint(tmp_path / "received.ckpt", {"w": torch.ones(2)}, marker)
    with pytest.raises(ReceivedFileError) as error:
        load_checkpoint_state_dict(path, "--ckpt_path")
    message = str(error.value)
    assert f"--ckpt_path='{path}'" in message and "(exec)" in message and "\n" not in message
    assert not marker.exists(), "the payload ran"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, tmp_path / "plain.ckpt")
    assert torch.equal(load_checkpoint_state_dict(tmp_path / "plain.ckpt")["w"], torch.ones(2))


def test_random_bytes_and_missing_files_are_named(tmp_path):
    path = save_random_bytes(tmp_path / "weights.pt")
    with pytest.raises(ReceivedFileError, match=r"^metrics\.i3d_weights='.*weights\.pt' is unreadable: it is not"):
        load_torch_data(path, "metrics.i3d_weights")
    with pytest.raises(FileNotFoundError, match="flow cache file '.*nope.pt' does not exist"):
        load_torch_data(tmp_path / "nope.pt", "flow cache file")


def test_numpy_object_arrays_are_refused(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ReceivedFileError, match="RegionMM file '.*objects.npy'.*allow_pickle"):
        load_numpy(tmp_path / "objects.npy", "RegionMM file")
    np.savez(tmp_path / "ok.npz", grid=np.zeros(3))
    assert load_numpy(tmp_path / "ok.npz")["grid"].shape == (3,)


def test_torchscript_needs_the_opt_in_or_a_known_hash(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    path = save_marker_torchscript(tmp_path / "i3d_torchscript.pt", marker)
    with pytest.raises(ReceivedFileError) as error:
        load_torchscript(path, "metrics.i3d_weights", False, "metrics.allow_torchscript")
    assert "metrics.i3d_weights=" in str(error.value) and "`metrics.allow_torchscript: true`" in str(error.value)
    with pytest.raises(ReceivedFileError, match="TorchScript archive"):
        load_torch_data(path, "metrics.i3d_weights")  # not through torch.load either
    assert not marker.exists()

    loaded = load_torchscript(path, "metrics.i3d_weights", True, "metrics.allow_torchscript")
    assert loaded.loaded_as == LOADED_TORCHSCRIPT_OPTED_IN and loaded.sha256 == file_sha256(path)
    loaded.module(torch.zeros(2, 3, 1, 2, 2))
    assert marker.exists(), "the opted-in program is the one that was loaded (and it runs)"

    monkeypatch.setitem(safe_load.KNOWN_TORCHSCRIPT_SHA256, file_sha256(path), "a test file")
    known = load_torchscript(path, "metrics.i3d_weights", False, "metrics.allow_torchscript")
    assert known.loaded_as == LOADED_TORCHSCRIPT_KNOWN
