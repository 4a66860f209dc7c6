"""The training data order resumes mid-epoch (docs/resuming.md): the real CLI, killed with SIGKILL after a
mid-epoch checkpoint and resumed with ``--ckpt_path last``, trains on the same clips, batch by batch, as an
unbroken run, for the file-based and the streaming datamodule with 2 loader workers, across the epoch ends
that follow the resume."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Callback

from tests.test_resume import ENV, EVERY, MAX_STEPS, REPO, _fit, _fit_args, _kill_when, tiny_config


class ClipRecorder(Callback):
    """Test-only: prints ``clips <global_step> <id> <id>`` for every training batch. A clip is its ``clip_id``
    (packed shards) or its video and frame indices (the folder datasets draw the frames at random)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if "clip_id" in batch:
            clips = list(batch["clip_id"])
        else:
            clips = [f"{video}@{'-'.join(map(str, indices.tolist()))}"
                     for video, indices in zip(batch["video_id"], batch["frame_indices"], strict=True)]
        print(f"clips {trainer.global_step} {' '.join(clips)}", flush=True)


def _config(tmp_path: Path, streaming_shards: Path | None) -> Path:
    """test_resume's tiny synthetic config (8 videos, batch 2, a checkpoint every 4 steps, 12 steps), with 2
    loader workers and the recorder; ``streaming_shards``: trained from that shard set instead."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tiny_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["trainer"]["callbacks"].append({"class_path": "tests.data.test_resume_order.ClipRecorder"})
    if streaming_shards is None:
        config["data"]["init_args"]["num_workers"] = 2
    else:
        config["data"] = {"class_path": "s2dm_lightning.data.streaming.StreamingVideoDataModule",
                          "init_args": {"input_dir": str(streaming_shards), "batch_size": 2, "num_workers": 2,
                                        "seed": 0}}
    path.write_text(yaml.safe_dump(config))
    return path


def _clips(stdout: str) -> dict[int, list[str]]:
    return {int(line.split()[1]): line.split()[2:] for line in stdout.splitlines() if line.startswith("clips ")}


def _run(config: Path, *extra: str) -> subprocess.CompletedProcess:
    done = subprocess.run(_fit_args(config, *extra), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _pack_tiny_shards(tmp_path: Path, clips_per_video: int = 2, chunk_bytes: int = 4000) -> Path:
    """The tiny config's synthetic videos packed as litdata chunks (several chunks: the shuffle crosses them)."""
    pytest.importorskip("litdata", reason="the stream extra (litdata) is not installed")
    from s2dm_lightning.data.shards import pack_split
    from s2dm_lightning.synthetic import SyntheticDataModule

    arguments = yaml.safe_load(_config(tmp_path / "pack", None).read_text())["data"]["init_args"]
    arguments.update(num_workers=0)
    datamodule = SyntheticDataModule(**arguments)
    datamodule.preprocess(progress=False)
    datamodule.setup("fit")
    return pack_split(datamodule, "train", tmp_path / "shards", clips_per_video=clips_per_video,
                      chunk_bytes=chunk_bytes).parent


@pytest.mark.slow
@pytest.mark.parametrize("source", ["folder", "streaming"])
def test_killed_and_resumed_run_trains_on_the_clips_of_an_unbroken_run(tmp_path, source):
    shards = _pack_tiny_shards(tmp_path) if source == "streaming" else None
    unbroken = _clips(_run(_config(tmp_path / "unbroken", shards)).stdout)
    assert sorted(unbroken) == list(range(MAX_STEPS))
    assert len(set(unbroken[0] + unbroken[1])) == 4, "clips of one epoch are distinct (a real shuffle)"

    config = _config(tmp_path / "killed", shards)
    folder = tmp_path / "killed/logs/synthetic/version_0/checkpoints"
    process = _fit(config)
    killed_at = _kill_when(process, "between_checkpoints", folder)  # after step 6: the step-4 checkpoint is newest
    checkpoint = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == EVERY

    resumed = _run(config, "--ckpt_path", "last")
    clips = _clips(resumed.stdout)
    print(f"{source}: killed after step {killed_at}; unbroken {unbroken}; resumed {clips}")
    assert sorted(clips) == list(range(EVERY, MAX_STEPS)), "the resumed run starts at the checkpoint's step"
    assert clips == {step: unbroken[step] for step in range(EVERY, MAX_STEPS)}, \
        "from the checkpoint on, the resumed run trains on the unbroken run's clips, batch by batch"
    assert checkpoint["loops"]["fit_loop"]["state_dict"].get("combined_loader"), "the loader's position is saved"
    assert "not resumable" not in resumed.stderr and "NOTICE" not in resumed.stderr

    if source == "folder":  # a checkpoint of before this change: no loader state; it resumes, with a notice
        del checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"]
        old = tmp_path / "old.ckpt"
        torch.save(checkpoint, old)
        from_old = _run(config, "--ckpt_path", str(old))
        assert sorted(_clips(from_old.stdout)) == list(range(EVERY, MAX_STEPS)), "trained on to the last step"
        assert "resume: NOTICE:" in from_old.stderr and "holds no position of the training data loader" in \
            from_old.stderr, from_old.stderr[-3000:]
