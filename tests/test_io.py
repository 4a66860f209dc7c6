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
        with atomic_folder(tmp_path / "export") as staging:
            (staging / "unet").mkdir()
            (staging / "unet" / "config.json").write_text("{}")
    finally:
        os.umask(before)
    assert {mode(p) for p in (text, blob, tensor, tmp_path / "export" / "unet" / "config.json")} == {file_mode}
    assert {mode(p) for p in (tmp_path / "new", tmp_path / "export", tmp_path / "export" / "unet")} == {folder_mode}
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
