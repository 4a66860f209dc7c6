"""What the flow and latent caches share: one file per video in a folder, valid for one meta.json.

A cache's identity (the keys in ``IDENTITY_KEYS`` of ``expected_meta()``: what ``made_with()``
returns plus the optional ``source``) is written to
meta.json; opened with another identity, the cache deletes its files and starts again. Every
write goes to a temporary file beside the target followed by ``os.replace``, so a file is either
complete or absent and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from s2dm_lightning import __version__

log = logging.getLogger(__name__)

META_FILE = "meta.json"
_TMP_SUFFIX = ".tmp"


def safe_file_stem(video_id: str) -> str:
    """A file-name-safe, collision-free stem for a video id (ids may hold '/' or spaces)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", video_id).strip(".") or "video"
    if stem != video_id or len(stem) > 120:
        # The hash keeps "a/b" and "a_b" apart after the substitution.
        stem = f"{stem[:100]}-{hashlib.sha1(video_id.encode()).hexdigest()[:10]}"
    return stem


def atomic_write_bytes(target: Path, write) -> None:
    """Call ``write(handle)`` on a temp file beside ``target``, then move it into place."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TMP_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class PerVideoFileCache(ABC):
    """``cache_dir/<safe video id>.pt`` files plus ``cache_dir/meta.json``; opened on construction."""

    KIND = "file"  # named in log messages: "flow cache '...'"
    IDENTITY_KEYS: tuple[str, ...] = ()

    def __init__(self, cache_dir: str | Path, source: dict[str, Any] | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.source = json.loads(json.dumps(source)) if source else None  # tuples -> lists, as stored
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._open()

    @abstractmethod
    def made_with(self) -> dict[str, Any]:
        """What this kind of cache depends on (format version, settings, ...), written to meta.json."""

    def expected_meta(self) -> dict[str, Any]:
        """meta.json of a cache made now; ``IDENTITY_KEYS`` of it decide whether old files are valid.

        The package version is recorded for the record only; ``source`` only when given, so older
        caches stay valid.
        """
        meta = {**self.made_with(), "package_version": __version__}
        if self.source is not None:
            meta["source"] = self.source
        return meta

    @property
    def meta_path(self) -> Path:
        return self.cache_dir / META_FILE

    def _identity(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {key: meta.get(key) for key in self.IDENTITY_KEYS}

    def _read_meta(self) -> dict[str, Any] | None:
        if not self.meta_path.exists():
            return None
        try:
            stored = json.loads(self.meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return stored if isinstance(stored, dict) else None

    def _open(self) -> None:
        expected, stored = self.expected_meta(), self._read_meta()
        if stored is not None and self._identity(stored) == self._identity(expected):
            self._remove_stale_temp_files()
            return
        if stored is not None or any(self.cache_dir.glob("*.pt")):
            log.warning(
                "%s cache '%s' was made with different settings (%s); deleting its files and recomputing them "
                "with %s", self.KIND, self.cache_dir,
                "unknown: no readable meta.json" if stored is None else self._identity(stored),
                self._identity(expected),
            )
            self.clear()
        self._remove_stale_temp_files()
        payload = (json.dumps(expected, indent=2, sort_keys=True) + "\n").encode()
        atomic_write_bytes(self.meta_path, lambda handle: handle.write(payload))

    def _remove_stale_temp_files(self) -> None:
        # Left by a process killed mid-write; never a valid entry.
        for stale in self.cache_dir.glob(f".*{_TMP_SUFFIX}"):
            stale.unlink(missing_ok=True)

    def clear(self) -> None:
        """Delete the cached files and meta.json (only files this class writes)."""
        for path in self.cache_dir.glob("*.pt"):
            path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)

    def path_for(self, video_id: str) -> Path:
        return self.cache_dir / f"{safe_file_stem(video_id)}.pt"

    def has(self, video_id: str) -> bool:
        return self.path_for(video_id).exists()
