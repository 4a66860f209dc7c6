"""AtomicCheckpointIO (s2dm_lightning/checkpoint_io.py): a checkpoint write that fails half way (an injected
ENOSPC after half the bytes) names the file, leaves the previous checkpoint whole and no temporary file."""

from __future__ import annotations

import errno

import pytest
import torch

from s2dm_lightning.checkpoint_io import AtomicCheckpointIO
from s2dm_lightning.resume import read_checkpoint


def test_a_full_disk_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 4, "state_dict": {"w": torch.zeros(1000)}}, path)

    real_save = torch.save

    def half_then_enospc(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        with open(f, "r+b") as handle:  # what a full disk leaves: the first half, then the error
            handle.truncate(handle.seek(0, 2) // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_enospc)
    with pytest.raises(OSError, match=f"could not write {path}: No space left on device") as raised:
        io.save_checkpoint({"global_step": 8, "state_dict": {"w": torch.ones(1000)}}, path)
    assert raised.value.errno == errno.ENOSPC
    monkeypatch.setattr(torch, "save", real_save)
    assert read_checkpoint(path).global_step == 4, "the next --ckpt_path last finds the previous checkpoint"
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"], "no temporary file is left"
