"""Atomic writes honour the umask (files 0666 & ~umask, folders 0777 & ~umask), clean up, and name files safely."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from s2dm_lightning.io import (
    atomic_folder,
    atomic_path,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
    current_umask,
    remove_temp_files,
    safe_file_stem,
)


@pytest.fixture
def umask_022():
    """The usual shared-cluster umask for the length of a test (other users may read, not write)."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def modes_below(root: Path) -> dict[str, int]:
    """Mode of every file and folder below ``root`` (symlinks, e.g. Lightning's last.ckpt link, left out)."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            if not path.is_symlink():
                found[str(path.relative_to(root))] = mode(path)
    return found


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(("umask", "file_mode", "folder_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_files_and_folders_get_the_umask_modes(tmp_path, umask, file_mode, folder_mode):
    before = os.umask(umask)
    try:
        text = atomic_write_text(tmp_path / "new" / "report.json", "{}")
        blob = atomic_write_bytes(tmp_path / "new" / "index.csv", b"a,b\n")
        tensor = atomic_torch_save(tmp_path / "new" / "x.pt", {"x": torch.zeros(2)})
        with atomic_path(tmp_path / "new" / "private.bin") as tmp:
            tmp.write_bytes(b"x")
            tmp.chmod(0o600)  # a library with private modes of its own (safetensors writes 0600)
        with atomic_folder(tmp_path / "export") as staging:
            (staging / "unet").mkdir(mode=0o700)
            (staging / "unet" / "config.json").write_text("{}")
            (staging / "unet" / "weights.safetensors").write_bytes(b"")
            (staging / "unet" / "weights.safetensors").chmod(0o600)
            (staging / "run.sh").write_text("#!/bin/sh\n")
            (staging / "run.sh").chmod(0o700)
        assert current_umask() == umask
    finally:
        os.umask(before)
    files = [text, blob, tensor, tmp_path / "new" / "private.bin", *(tmp_path / "export" / "unet").iterdir()]
    assert {mode(p) for p in files} == {file_mode}
    assert {mode(p) for p in (tmp_path / "new", tmp_path / "export", tmp_path / "export" / "unet")} == {folder_mode}
    assert mode(tmp_path / "export" / "run.sh") == folder_mode, "an executable stays executable"
    assert torch.load(tensor, weights_only=True)["x"].shape == (2,)


def test_a_rewrite_keeps_the_umask_mode_not_the_old_file_mode(tmp_path, umask_022):
    target = tmp_path / "meta.json"
    target.write_text("old")
    target.chmod(0o600)  # e.g. written by an older version through mkstemp
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and mode(target) == 0o644


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "report.json"
    atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        atomic_write_text(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "old" and leftovers(tmp_path) == ["report.json"]


def test_atomic_path_keeps_extension_and_cleans_up(tmp_path):
    with atomic_path(tmp_path / "sub" / "x.gif") as tmp:
        assert tmp.suffix == ".gif" and tmp.parent == tmp_path / "sub" and tmp.exists()
        tmp.write_bytes(b"ok")
    assert leftovers(tmp_path / "sub") == ["x.gif"]
    with pytest.raises(KeyError), atomic_path(tmp_path / "y.png") as tmp:
        tmp.write_bytes(b"half")
        raise KeyError("fail")
    assert leftovers(tmp_path) == ["sub"]


def test_atomic_folder_replaces_the_whole_folder_or_nothing(tmp_path):
    target = tmp_path / "export"
    with atomic_folder(target) as staging:
        (staging / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(target) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert leftovers(tmp_path) == ["export"] and leftovers(target) == ["old.txt"]
    with atomic_folder(target) as staging:
        (staging / "new.txt").write_text("new")
    assert leftovers(tmp_path) == ["export"] and leftovers(target) == ["new.txt"], "no mix, no staging left"


def test_remove_temp_files_removes_only_temporary_files(tmp_path):
    # what killed writers leave: this module's names, and the older ".<name>.<random>.tmp" ones
    for name in (".a.pt.0123456789ab.tmp.pt", ".b.pt.x1.tmp", "a.pt", "meta.json", ".gitignore"):
        (tmp_path / name).write_bytes(b"")
    remove_temp_files(tmp_path)
    assert leftovers(tmp_path) == [".gitignore", "a.pt", "meta.json"]


def test_safe_file_stem_is_safe_and_collision_free():
    assert safe_file_stem("video_0001") == "video_0001"  # safe names are kept as they are
    a, b = safe_file_stem("a/b"), safe_file_stem("a_b")
    assert a != b and a.startswith("a_b-") and b == "a_b"
    prompt = safe_file_stem("a red square moves up")
    assert prompt.startswith("a_red_square_moves_up-") and " " not in prompt
    assert len(safe_file_stem("x" * 500)) <= 120 and safe_file_stem("..") not in ("", ".", "..")


def test_everything_a_run_writes_is_readable_by_others(tmp_path, umask_022):
    """Dataset, flow cache, split file, latent cache, checkpoint, report and export under umask 022."""
    from s2dm_lightning.cli import main
    from s2dm_lightning.data.splits import load_or_draw_split
    from s2dm_lightning.evaluation.report import write_report
    from s2dm_lightning.synthetic import SyntheticDataModule
    from tests.latent_fixtures import DATA_ARGS, latent_config
    from tests.tiny_sd import make_tiny_sd_folder

    shared = tmp_path / "shared"  # tmp_path itself is pytest's own 0700 folder
    data, run = shared / "data" / "synthetic", shared / "run"
    SyntheticDataModule(root=str(data), **DATA_ARGS).preprocess(progress=False)  # generates, then flows
    load_or_draw_split(["a", "b", "c", "d"], shared / "splits" / "mug_split.json", "mug", 0, 1, 2)
    run.mkdir()
    config = latent_config(run, make_tiny_sd_folder(tmp_path / "sd"), data)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions on a shared machine (see tests/conftest.py)
    try:
        main(["fit", "--config", str(config)])  # latent cache + checkpoint
        main(["export", "--config", str(config), "--ckpt_path=last", f"--output_dir={shared / 'export'}"])
    finally:
        torch.set_num_threads(threads)
    write_report(run / "logs" / "evaluation_report.json", "notice", {"metrics": {"fvd": 1.0}})

    modes = modes_below(shared)
    for written in ("data/synthetic/metadata.csv", "splits/mug_split.json", "run/latents/meta.json",
                    "run/logs/evaluation_report.json", "export/model_index.json", "export/unet"):
        assert written in modes, f"{written} was not written: {sorted(modes)}"
    for kind in (".png", ".ckpt"):  # frames of the videos, checkpoint
        assert any(name.endswith(kind) for name in modes), f"no {kind} file written"
    assert sum(name.startswith("data/synthetic/flow_cache") and name.endswith(".pt") for name in modes) == 6
    assert sum(name.startswith("run/latents/") and name.endswith(".pt") for name in modes) == 5
    wrong = {name: oct(m) for name, m in modes.items() if m != (0o755 if (shared / name).is_dir() else 0o644)}
    assert not wrong, f"not 0644 (files) / 0755 (folders) under umask 022: {wrong}"
