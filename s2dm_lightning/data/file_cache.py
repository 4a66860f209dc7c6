"""What the flow and latent caches share: one file per video in a folder, valid for one meta.json.

A cache's identity (the keys in ``IDENTITY_KEYS`` of ``expected_meta()``: what ``made_with()``
returns plus the optional ``source``) is written to
meta.json; opened with another identity, the cache deletes its files and starts again. Every
write is atomic (:mod:`s2dm_lightning.io`), so a file is either
complete or absent and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from s2dm_lightning import __version__
from s2dm_lightning.io import atomic_write_text, remove_temp_files, safe_file_stem

log = logging.getLogger(__name__)

META_FILE = "meta.json"


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
            remove_temp_files(self.cache_dir)
            return
        if stored is not None or any(self.cache_dir.glob("*.pt")):
            log.warning(
                "%s cache '%s' was made with different settings (%s); deleting its files and recomputing them "
                "with %s", self.KIND, self.cache_dir,
                "unknown: no readable meta.json" if stored is None else self._identity(stored),
                self._identity(expected),
            )
            self.clear()
        remove_temp_files(self.cache_dir)
        atomic_write_text(self.meta_path, json.dumps(expected, indent=2, sort_keys=True) + "\n")

    def clear(self) -> None:
        """Delete the cached files and meta.json (only files this class writes)."""
        for path in self.cache_dir.glob("*.pt"):
            path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)

    def path_for(self, video_id: str) -> Path:
        return self.cache_dir / f"{safe_file_stem(video_id)}.pt"

    def has(self, video_id: str) -> bool:
        return self.path_for(video_id).exists()
