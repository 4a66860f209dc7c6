"""One process at a time per run folder and per cache: ``flock`` locks that name the process holding them.

Two ``fit`` started together with one ``default_root_dir`` / logger name (a job submitted twice, an
array job without ``version``) both took the logger's "next free" ``version_N`` and wrote one event
file, one ``checkpoints/`` folder, one ``last.ckpt``; two ``preprocess`` on one flow cache could clear
it under each other (a cache made with other settings is emptied and rebuilt). Here:

- ``fit`` (rank 0) takes the experiment's lock (``<save_dir>/.<name>.lock``, waited for: it is held
  only while a run picks its folder) while ``--ckpt_path last`` is resolved and the version folder
  is chosen and created, then holds the lock of its own version folder for the whole run. Two new
  runs therefore get ``version_0`` and ``version_1``; a second run on a version folder in use (two
  ``--ckpt_path last`` of one run, a fixed ``version``) stops with :class:`FolderInUse` naming the
  other process. A ``ModelCheckpoint`` ``dirpath`` of its own (or, without a logger,
  ``<default_root_dir>/checkpoints``) is locked the same way.
- ``preprocess`` (and ``fit``'s ``prepare_data``) waits for the flow cache's lock: the second
  process then finds the videos cached and computes nothing twice.

The locks are ``fcntl.flock`` on a ``.<folder name>.lock`` file beside the folder: the kernel releases them when the process ends,
however it ends (``kill -9`` included), so a lock is never stale. The file holds the holder's pid,
host and command line, for the message; it is rewritten in place under the lock (renaming it would
make a new, unlocked file) and is the one file not written by :mod:`s2dm_lightning.io`'s rename.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lightning.pytorch import Trainer
from lightning.pytorch.utilities import rank_zero_only


def lock_file(folder: Path) -> Path:
    """Beside the folder, not in it: a cache rebuilt by renaming a staged folder onto its name keeps its lock."""
    return folder.parent / f".{folder.name}.lock"


class FolderInUse(RuntimeError):
    """Another process holds the folder's lock (printed alone by the command line, exit status 1)."""

    printed_alone = True
    exit_status = 1


def holder_of(folder: str | os.PathLike) -> dict:
    """What the lock file of ``folder`` says about its holder (pid, host, command, since); {} if unreadable."""
    for _ in range(20):  # the holder may be between truncating and writing it
        try:
            text = lock_file(Path(folder)).read_text(encoding="utf-8")
            if text:
                return json.loads(text)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return {}


def describe(holder: dict) -> str:
    if not holder:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')} (since {since}: {holder.get('command')})"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str, wait: bool) -> Iterator[Path]:
    """Hold ``folder``'s lock (created with the folder). ``wait``: block until it is free, saying for whom;
    otherwise :class:`FolderInUse` naming the holder. Released on exit, or when the process ends."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file(folder), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = describe(holder_of(folder))
            if not wait:
                raise FolderInUse(f"{what} {folder} is in use by {other}; wait for it to end, or give this run "
                                  "its own folder (another logger name or version, or default_root_dir)") from None
            print(f"waiting for {other}, which uses {what} {folder}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:300],
                "since": time.time()}
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield folder
    finally:
        os.close(fd)  # releases the lock


def claim_run_folder(trainer: Trainer, held: contextlib.ExitStack, resolve: Callable[[], str | None]) -> str | None:
    """Run ``resolve`` (``--ckpt_path last``) and fix the logger's version folder under the experiment's lock,
    then hold that folder's lock (and any checkpoint folder of its own) in ``held``; returns ``resolve()``.

    Only rank 0 locks: the other ranks of a DDP run share its folders.
    """
    if rank_zero_only.rank != 0:
        return resolve()
    logger = trainer.loggers[0] if trainer.loggers else None
    run_folder = None
    if logger is not None and hasattr(logger, "_version") and getattr(logger, "root_dir", None):
        with folder_lock(logger.root_dir, "experiment folder", wait=True):
            ckpt_path = resolve()
            logger._version = logger.version  # "next free", read while no other run can take it
            run_folder = Path(logger.log_dir)
            run_folder.mkdir(parents=True, exist_ok=True)
            held.enter_context(folder_lock(run_folder, "run folder", wait=False))
    else:
        ckpt_path = resolve()
    for folder in _own_checkpoint_folders(trainer):
        if run_folder is None or run_folder.resolve() not in [folder.resolve(), *folder.resolve().parents]:
            held.enter_context(folder_lock(folder, "checkpoint folder", wait=False))
    return ckpt_path


def _own_checkpoint_folders(trainer: Trainer) -> list[Path]:
    folders = [Path(c.dirpath) for c in trainer.checkpoint_callbacks if getattr(c, "dirpath", None)]
    if not trainer.loggers and trainer.checkpoint_callbacks and not folders:
        folders.append(Path(trainer.default_root_dir) / "checkpoints")
    return list(dict.fromkeys(folders))
