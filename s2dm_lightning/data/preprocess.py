"""Compute the flows of a dataset once, before training (the ``preprocess`` subcommand).

Videos already in the cache are skipped, so an interrupted run resumes. A video that
cannot be read or estimated, or whose first frame is constant (all-zero flows), is reported and
skipped, nothing cached for it; the others still finish. A video whose header states another
frame count than decodes, or shorter than a clip, is cached and named in the summary's warnings
(see :mod:`.footage`). Worker
processes end with the process that started them, even when it is killed with SIGKILL
(see :func:`_exit_with`).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from s2dm_lightning.data.flow import FlowSettings, estimate_gray_sequence, estimation_shape
from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.data.footage import constant_first_frame, frame_count_mismatch, short_video
from s2dm_lightning.data.video_io import read_gray_video

if TYPE_CHECKING:
    from s2dm_lightning.data.datasets import VideoRecord


@dataclass
class PreprocessSummary:
    """What a preprocessing run did: counts of computed and already-cached videos, failures and warnings.

    ``kind`` names the step in the printed line ("flow", "latent"); ``warnings`` are (video id, note)
    of videos cached with something the user should know (:mod:`.footage`).
    """

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    kind: str = "flow"
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"{self.kind} preprocessing: {self.done} computed, {self.skipped} already cached, {len(self.failed)} failed"
        ]
        for video_id, note in self.warnings:
            lines.append(f"  WARNING {video_id}: {note}")
        for video_id, reason in self.failed:
            lines.append(f"  FAILED {video_id}: {reason}")
        return "\n".join(lines)


Computed = tuple[str, "torch.Tensor | None", "str | None", list[str]]


def _compute(
    video_id: str, path: str, settings: FlowSettings, crop: tuple[float, float, float, float] | None = None,
    num_frames: int | None = None,
) -> Computed:
    """(video id, flows or None, the error or None, notes) for one video (frames cut to ``crop`` first);
    never raises, so one bad video cannot stop a run. ``num_frames``: a clip's length, for the short-video note."""
    try:
        # Gray frames at estimation size straight from the decoder: no full-size RGB copy.
        gray = read_gray_video(path, functools.partial(estimation_shape, settings=settings), crop=crop,
                               geometry=settings.frame_geometry)
        if len(gray) < 2:
            return video_id, None, f"'{path}' has {len(gray)} frame(s); at least 2 are needed", []
        problem = constant_first_frame(gray, path)
        if problem is not None:
            return video_id, None, problem, []
        notes = [frame_count_mismatch(path, len(gray)),
                 None if num_frames is None else short_video(path, len(gray), num_frames, "data.init_args.num_frames")]
        return video_id, estimate_gray_sequence(gray, settings), None, [n for n in notes if n]
    except Exception as error:
        return video_id, None, f"{type(error).__name__}: {error}", []


_POLL_SECONDS = 0.5  # only where os.pidfd_open is missing (not Linux >= 5.3)


def _exit_with(main_pid: int) -> None:
    """End this worker as soon as the main process has ended, however it ended (SIGKILL included).

    ``PR_SET_PDEATHSIG`` does not help here: a worker's parent is the forkserver, and the
    forkserver (like the resource tracker) lives as long as any worker holds its pipe. So a
    daemon thread waits for the main process to end (a pidfd turns readable, even while the
    dead process waits as a zombie to be reaped) and exits the worker; the forkserver and
    then the resource tracker see their pipes close and exit by themselves.
    """
    try:
        pidfd: int | None = os.pidfd_open(main_pid)
    except ProcessLookupError:  # already gone
        os._exit(1)
    except (AttributeError, OSError):
        pidfd = None

    def watch() -> None:
        if pidfd is not None:
            select.select([pidfd], [], [])
        else:
            while True:
                try:
                    os.kill(main_pid, 0)
                except (ProcessLookupError, PermissionError):  # PermissionError: the id was reused
                    break
                time.sleep(_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-main-process", daemon=True).start()


def _init_worker(main_pid: int) -> None:
    _exit_with(main_pid)
    # Each worker is one of several processes: keep OpenCV and torch from spawning
    # a thread per core each.
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def preprocess_flows(
    records: Iterable[VideoRecord],
    cache: FlowCache,
    num_workers: int = 0,
    progress: bool = True,
    num_frames: int | None = None,
) -> PreprocessSummary:
    """Compute and cache the flows of every record missing from ``cache`` (``num_frames``: a clip's
    length, to name videos shorter than it)."""
    summary = PreprocessSummary()
    todo: list[tuple[str, Path, tuple[float, float, float, float] | None]] = []
    seen: set[str] = set()
    for record in records:
        if record.video_id in seen:
            continue
        seen.add(record.video_id)
        if cache.has(record.video_id):
            summary.skipped += 1
        else:
            todo.append((record.video_id, Path(record.path), record.crop))
    if not todo:
        return summary

    bar = tqdm(total=len(todo), desc="flows", unit="video", disable=not progress)

    def finish(video_id: str, flow: torch.Tensor | None, error: str | None, notes: list[str] = ()) -> None:
        summary.warnings += [(video_id, note) for note in notes]
        if flow is None:
            summary.failed.append((video_id, error or "unknown error"))
        else:
            try:
                cache.save(video_id, flow)
                summary.done += 1
            except Exception as save_error:
                summary.failed.append((video_id, f"saving failed: {save_error}"))
        bar.update(1)

    try:
        if num_workers <= 0:
            for video_id, path, crop in todo:
                finish(*_compute(video_id, str(path), cache.settings, crop, num_frames))
        else:
            _run_in_pool(todo, cache.settings, num_workers, finish, num_frames)
    finally:
        bar.close()
    return summary


def _make_pool(num_workers: int) -> ProcessPoolExecutor:
    # Not "fork": a child forked while OpenCV's thread pool is busy or waiting can hang
    # for ever (seen: cv2.setNumThreads blocking in pthread_cond_destroy). "forkserver"
    # forks clean workers from a server that imported this module once (cheaper than
    # "spawn", which would import torch again in every worker).
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
    else:
        context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        max_workers=num_workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),)
    )


def _run_in_pool(todo: list[tuple[str, Path, Any]], settings: FlowSettings, num_workers: int, finish,
                 num_frames: int | None = None) -> None:
    crashed: list[tuple[str, Path, Any]] = []
    pool = _make_pool(num_workers)
    try:
        futures: dict[Future, tuple[str, Path, Any]] = {
            pool.submit(_compute, video_id, str(path), settings, crop, num_frames): (video_id, path, crop)
            for video_id, path, crop in todo
        }
        for future in as_completed(futures):
            try:
                finish(*future.result())
            except BrokenProcessPool:
                # A worker died (e.g. a decoder crash) and took every pending video with it.
                crashed.append(futures[future])
    finally:
        # Interrupted (Ctrl-C, an error in finish): drop the queued videos rather than
        # computing all of them, unsaved, before the exception gets through.
        pool.shutdown(wait=True, cancel_futures=True)
    # Retry those one at a time, so that only the video that kills a worker is reported.
    pool = None
    try:
        for video_id, path, crop in crashed:
            pool = pool or _make_pool(1)
            try:
                finish(*pool.submit(_compute, video_id, str(path), settings, crop, num_frames).result())
            except BrokenProcessPool:
                finish(video_id, None, f"the worker process died while reading or estimating '{path}'")
                pool.shutdown(wait=False)
                pool = None
    finally:
        if pool is not None:
            pool.shutdown()
