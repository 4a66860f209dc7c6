"""Atomic writes and safe file names: the one place where the package puts files on disk.

Every file is written to a temporary file in the target's folder, flushed to disk (fsync)
and then renamed onto the target (``os.replace``, atomic on POSIX and Windows): a reader
sees the old file or the new one, never half of one, and a failed write leaves no
temporary file behind. Folders are staged the same way and renamed into place.

Modes: files get ``0666 & ~umask`` and folders ``0777 & ~umask`` (0644 / 0755 under umask
022), so lab mates sharing a cache or run folder can read them. ``tempfile.mkstemp`` /
``mkdtemp`` are not used (they make 0600 / 0700 entries), and before the rename every
entry is set to the umask mode, since libraries writing into a temporary file or folder
may use private modes of their own (safetensors writes 0600). The umask is read from
``/proc/self/status``: ``os.umask`` can only read it by setting it, which races with
other threads creating files.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import resource
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path


def _umask_from_proc() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return None


def _umask_at_import() -> int:
    # Only where /proc/self/status has no "Umask:" line (not Linux >= 4.7): os.umask reads it only
    # by setting it, done once here, when importing, normally before threads that could race start.
    mask = _umask_from_proc()
    if mask is None:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_UMASK_AT_IMPORT = _umask_at_import()


def current_umask() -> int:
    """The process's umask, read without changing it (the value at import where /proc cannot tell)."""
    mask = _umask_from_proc()
    return _UMASK_AT_IMPORT if mask is None else mask


def _set_umask_mode(path: Path, umask: int) -> None:
    """``0777 & ~umask`` for folders and user-executable files, ``0666 & ~umask`` for other files."""
    current = path.lstat().st_mode
    executable = stat.S_ISDIR(current) or current & stat.S_IXUSR
    wanted = (0o777 if executable else 0o666) & ~umask
    if stat.S_IMODE(current) != wanted:
        os.chmod(path, wanted)


TEMP_MARK = ".tmp"  # every temporary name holds it: ".<target name>.<random>.tmp[<suffix>]"


def _temp_name(target: Path) -> Path:
    # The target's suffix last, so encoders that choose the format by extension pick the right one.
    return target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}{TEMP_MARK}{target.suffix}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new, empty temporary file beside ``path``; write it by name, and on success it replaces ``path``.

    The parent folder is created. The temporary name keeps the suffix of ``path``. On error
    (any exception, Ctrl-C included) the temporary file is deleted and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = _temp_name(target)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:  # a 48-bit collision: draw another name
            continue
    try:
        yield tmp
        _set_umask_mode(tmp, current_umask())
        _fsync(tmp)
        os.replace(tmp, target)
    except BaseException as error:
        size = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        cause = _full_disk_or_size_limit(target.parent, size, error)
        if isinstance(error, OSError) or (cause is not None and isinstance(error, Exception)):
            raise _naming(target, error, cause) from error
        raise


def _full_disk_or_size_limit(folder: Path, size: int, error: BaseException | None = None) -> int | None:
    """EFBIG when the file reached the process's file-size limit (``ulimit -f``), ENOSPC when the disk is full:
    libraries that write by path report these in their own words (torch.save: "[enforce fail at
    inline_container.cc] unexpected pos"; an ffmpeg child killed by SIGXFSZ: a broken pipe). Only write-like
    failures are looked at: a TypeError, or a missing or forbidden file, keeps its own meaning."""
    # safetensors (Rust) writes through a temporary file of its own, gone by now, and raises its own exception
    # type: "... File too large (os error 27)"
    stated = re.search(r"\(os error (\d+)\)", str(error)) if error is not None else None
    if stated and int(stated.group(1)) in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
        return int(stated.group(1))
    if not isinstance(error, (OSError, RuntimeError)) or getattr(error, "errno", None) not in _WRITE_ERRNOS:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY and size >= soft:
        return errno.EFBIG
    try:
        disk = os.statvfs(folder)
    except OSError:
        return None
    return errno.ENOSPC if disk.f_bavail * disk.f_frsize < _NEARLY_FULL_BYTES else None


_NEARLY_FULL_BYTES = 1 << 20
_WRITE_ERRNOS = (None, errno.EFBIG, errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EPIPE)


def _naming(target: Path, error: BaseException, cause: int | None = None) -> OSError:
    """A full disk, a quota, a file-size limit: the error names the file (or folder) the user knows,
    not the temporary one beside it, and the cause where the library's words hide it."""
    code = cause if cause is not None else getattr(error, "errno", None)
    if isinstance(error, OSError) and error.errno == code and str(target) in str(error):
        return error
    reason = os.strerror(code) if code is not None else str(error)
    if not isinstance(error, OSError) or error.errno != code:
        reason += f" ({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''})"
    elif error.strerror:
        reason = error.strerror
    # no filename argument: str() would name the file a second time
    message = f"could not write {target}: {reason}"
    return OSError(code, message) if code is not None else OSError(message)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_torch_save(path: str | os.PathLike, payload: object) -> Path:
    """``torch.save(payload)`` to ``path`` atomically; returns the path."""
    import torch  # only callers that save tensors pay for the import

    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def remove_temp_files(folder: str | os.PathLike) -> None:
    """Delete the temporary files a process killed mid-write left in ``folder`` (never valid entries)."""
    for pattern in (f".*{TEMP_MARK}", f".*{TEMP_MARK}.*"):
        for stale in Path(folder).glob(pattern):
            if stale.is_file():
                stale.unlink(missing_ok=True)


def apply_umask_modes(root: str | os.PathLike) -> None:
    """Give ``root`` and everything under it the modes the umask allows (0644 / 0755 under 022).

    For folders that libraries fill themselves with private modes (diffusers' and safetensors'
    ``save_pretrained`` write 0600 files); links are left alone.
    """
    umask = current_umask()
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            if not os.path.islink(os.path.join(folder, name)):
                _set_umask_mode(Path(folder, name), umask)
    _set_umask_mode(Path(root), umask)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new, empty temporary folder beside ``path``; fill it, and on success it replaces ``path`` as a whole.

    An existing ``path`` is first moved aside and deleted after the rename, so ``path`` is
    never a mix of old and new. On error the temporary folder is deleted and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_folder(target)
    try:
        yield staging
        apply_umask_modes(staging)
        if target.exists():
            aside = _new_folder(target)
            target.rename(aside / target.name)
            staging.rename(target)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException as error:
        largest = max((f.stat().st_size for f in staging.rglob("*") if f.is_file()), default=0)
        cause = _full_disk_or_size_limit(target.parent, largest, error)
        if isinstance(error, OSError) or (cause is not None and isinstance(error, Exception)):
            raise _naming(target, error, cause) from error
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _new_folder(target: Path) -> Path:
    while True:
        folder = _temp_name(target)
        try:
            os.mkdir(folder, 0o777)
            return folder
        except FileExistsError:
            continue


def safe_file_stem(name: str) -> str:
    """A file-name-safe, collision-free stem for ``name`` (video ids and prompts may hold '/' or spaces).

    Names made only of ``A-Za-z0-9._-`` (and not starting or ending with '.') are kept as
    they are; any other name gets its characters replaced by '_' plus a hash of the original,
    so that "a/b" and "a_b" still get different files.
    """
    name = str(name)
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "video"
    if stem != name or len(stem) > 120:
        stem = f"{stem[:100]}-{hashlib.sha1(name.encode()).hexdigest()[:10]}"
    return stem


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
