"""The real command line under a file-size limit (``ulimit -f``: RLIMIT_FSIZE), then again without it.

Each command first runs without a limit (to learn the size of what it writes), then in a fresh folder
with a limit of half its largest file, so that file's write fails half way; then again there without the
limit. CPython ignores SIGXFSZ, so the write fails with EFBIG instead of killing the process; its ffmpeg
children get the default action back from ``subprocess`` and die, which imageio reports as a broken pipe.
Shown: a clear error naming the file (or folder), nothing partial under a final name, no temporary file
left, and the run without the limit not fooled (it computes / writes everything again).
Slow: each CLI run is ~10 s of imports on a busy machine.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from s2dm_lightning.config import load_datamodule
from s2dm_lightning.io import TEMP_MARK
from tests.test_resume import ENV, REPO, tiny_config

pytestmark = pytest.mark.slow


def _run(args: list[str], limit_bytes: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))

    return subprocess.run([sys.executable, "-m", "s2dm_lightning", *args], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=600, preexec_fn=limit if limit_bytes is not None else None)


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def _temp_files(folder: Path) -> list[str]:
    return [str(p) for p in folder.parent.rglob(f"*{TEMP_MARK}*")]


def test_preprocess_under_a_file_size_limit_caches_nothing_partial_and_the_next_run_computes_every_flow(tmp_path):
    sizes = []
    for name in ("unlimited", "limited"):
        (tmp_path / name).mkdir()
        config = tiny_config(tmp_path / name)
        load_datamodule(config).generate()
        sizes.append(config)
    reference = _run(["preprocess", "--config", str(sizes[0])])
    assert reference.returncode == 0, reference.stderr[-2000:]
    cache = Path(load_datamodule(sizes[1]).cache_dir)
    flow_sizes = _files(Path(load_datamodule(sizes[0]).cache_dir))
    limit = min(size for name, size in flow_sizes.items() if name.endswith(".pt")) // 2

    limited = _run(["preprocess", "--config", str(sizes[1])], limit)
    assert "flow preprocessing: 0 computed, 0 already cached, 8 failed" in limited.stdout, limited.stdout[-2000:]
    assert f"saving failed: [Errno 27] could not write {cache / 'video_0000.pt'}: File too large" in limited.stdout
    assert not list(cache.glob("*.pt")) and _temp_files(cache) == []

    again = _run(["preprocess", "--config", str(sizes[1])])
    assert "flow preprocessing: 8 computed, 0 already cached, 0 failed" in again.stdout, again.stderr[-2000:]
    assert _files(cache).keys() == flow_sizes.keys()
    print(f"preprocess: limit {limit} B, 8 flow writes failed, 0 files left; rerun computed 8")


@pytest.fixture
def exported(tmp_path):
    """(config, checkpoint of its untrained model, a reference export made without a limit)."""
    from s2dm_lightning.config import load_module
    from s2dm_lightning.models import S2DM

    config = tiny_config(tmp_path)
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": load_module(config, None, S2DM).state_dict()}, ckpt)
    reference = tmp_path / "reference_export"
    done = _run(["export", "--config", str(config), "--ckpt_path", str(ckpt), f"--output_dir={reference}"])
    assert done.returncode == 0, done.stderr[-2000:]
    return config, ckpt, reference


def test_export_under_a_file_size_limit_leaves_no_folder_and_the_next_export_is_whole(exported, tmp_path):
    config, ckpt, reference = exported
    limit = max(_files(reference).values()) // 2
    folder = tmp_path / "exports" / "model"
    args = ["export", "--config", str(config), "--ckpt_path", str(ckpt), f"--output_dir={folder}"]
    limited = _run(args, limit)
    assert limited.returncode == 1
    last = limited.stderr.strip().splitlines()[-1]
    assert f"could not write {folder}: File too large" in last, limited.stderr[-2000:]
    assert list((tmp_path / "exports").iterdir()) == [], "a partial export or a staging folder was left"

    again = _run(args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _files(folder) == _files(reference)
    print(f"export: limit {limit} B, folder absent after the failure; rerun wrote {len(_files(folder))} files")


def test_sample_under_a_file_size_limit_leaves_no_partial_result_and_a_rerun_writes_them(exported, tmp_path):
    config, ckpt, _ = exported  # the config and checkpoint, as the tiny model's hash text encoder is not exported
    args = ["sample", "--prompt", "a red square", f"--s2dm_config={config}", f"--s2dm_ckpt={ckpt}", "--motion=zoom:2",
            "--num_frames=3", "--num_inference_steps=1"]
    reference = _run([*args, f"--output_dir={tmp_path / 'reference'}"])
    assert reference.returncode == 0, reference.stderr[-2000:]
    written = _files(tmp_path / "reference")
    largest = max(written, key=written.get)
    limit = written[largest] // 2
    out = tmp_path / "out"
    limited = _run([*args, f"--output_dir={out}"], limit)
    assert limited.returncode == 1
    last = limited.stderr.strip().splitlines()[-1]
    assert "could not write " in last and "File too large" in last, limited.stderr[-2000:]
    for name in _files(out) if out.exists() else {}:
        assert _files(out)[name] == written[name], f"{name} is partial"
    assert largest not in (_files(out) if out.exists() else {}) and _temp_files(out) == []

    again = _run([*args, f"--output_dir={out}"])
    assert again.returncode == 0, again.stderr[-2000:]
    assert _files(out).keys() == written.keys()
    samples = torch.load(out / "samples.pt", weights_only=True)
    assert torch.equal(samples["frames"], torch.load(tmp_path / "reference" / "samples.pt", weights_only=True)["frames"])
    print(f"sample: limit {limit} B (half of {largest}), failed with: {last}; rerun wrote {len(written)} files")
