"""Durable file writes: after a crash or a power cut a file holds its old or its new content.

A file is written to a temporary name in its own folder, flushed to disk (``fsync``),
renamed over the target (``os.replace``, atomic on POSIX) and then the folder itself is
flushed, so that the rename survives too. Folders this creates are flushed into their
parents the same way. A failed write (no space left, read-only disk) leaves the target
as it was and removes the temporary file.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = ["durable_write", "durable_write_text", "fsync_dir"]

# Filesystems that cannot flush a directory say so with these; the rename stands anyway.
_NO_DIR_FSYNC = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EBADF})


def durable_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` durably (see the module docstring).

    Args:
        path: the file to (re)write; missing folders are created.
        text: its new content.

    Returns:
        ``path``.

    Raises:
        OSError: the write failed; ``path`` is untouched and the error's ``filename`` is
            ``path`` (``strerror`` says why, e.g. "No space left on device").

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> durable_write_text(folder / "state.json", "{}").read_text()
        '{}'
    """
    return durable_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def durable_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Write ``path`` durably through ``write``, which fills the temporary file it is given.

    Args:
        path: the file to (re)write; missing folders are created.
        write: called with the temporary path (in ``path``'s folder); it writes the whole
            content there and closes the file (``frame.to_parquet``, ``joblib.dump``, ...).

    Returns:
        ``path``.

    Raises:
        OSError: the write failed; ``path`` is untouched and the error's ``filename`` is
            ``path``.
    """
    folder = path.parent
    try:
        _make_folder(folder)
        tmp = _new_temporary(path)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        write(tmp)
        _fsync_file(tmp)
        tmp.replace(path)  # os.replace: atomic on POSIX
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from exc
        raise
    try:
        fsync_dir(folder)
    except OSError as exc:
        raise _naming(exc, path) from exc
    return path


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (new, renamed or removed files) to disk.

    Raises:
        OSError: the folder cannot be opened or flushed (a filesystem that cannot flush
            folders at all is accepted silently).
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIR_FSYNC:
            raise
    finally:
        os.close(fd)


def _make_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each flushed into its parent."""
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    for created in reversed(missing):
        created.mkdir(exist_ok=True)
        fsync_dir(created.parent)


def _new_temporary(path: Path) -> Path:
    """A new, empty file beside ``path`` (mode from the umask, as any new file)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return tmp


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _naming(exc: OSError, path: Path) -> OSError:
    """The same failure, naming the target file rather than a temporary one."""
    if exc.errno is None:
        return OSError(f"{exc} (writing {path})")
    return OSError(exc.errno, exc.strerror or str(exc), str(path))  # the errno's own subclass
