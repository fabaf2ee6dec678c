"""The backup archive's format: one tar (gzip unless it is named ``.tar``) and its manifest.

Layout inside the archive::

    project/...            files restored into the project folder as they are named
                           (config, .conveyor/mlflow.db, .conveyor/mlartifacts/, runs, ...)
    store/postgres.dump    a PostgreSQL store (pg_dump custom format), when it is one
    manifest.json          format version, Conveyor version, date, redacted source paths,
                           the layout, and the sha256 and size of every other member

Archives are read and written through fsspec, so a local path and ``s3://bucket/key``
share one code path (the endpoint of an S3-compatible server from ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import IO, Any

from conveyor.errors import BackupError
from conveyor.redaction import redact

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "PROJECT_PREFIX",
    "STORE_DUMP",
    "Progress",
    "HashingReader",
    "archive_suffix",
    "is_remote",
    "open_fs",
    "safe_member_name",
]

FORMAT = "conveyor-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PROJECT_PREFIX = "project/"
STORE_DUMP = "store/postgres.dump"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
CHUNK = 1 << 20

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: bytes done of total in a stage of long work."""


def is_remote(target: str) -> bool:
    """Whether a target is a URL (``s3://...``) rather than a local path."""
    return "://" in target and not target.startswith("file://")


def archive_suffix(target: str) -> str | None:
    """The archive suffix a target ends with, or None when it names a folder or prefix."""
    lowered = target.lower()
    return next((s for s in ARCHIVE_SUFFIXES if lowered.endswith(s)), None)


def open_fs(target: str) -> tuple[Any, str]:
    """The fsspec filesystem and path of a local path or URL.

    Raises:
        BackupError: no filesystem for the scheme (e.g. s3fs not installed).
    """
    import fsspec.core

    options: dict[str, Any] = {}
    if target.startswith(("s3://", "s3a://")):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["client_kwargs"] = {"endpoint_url": endpoint}
    try:
        fs, path = fsspec.core.url_to_fs(target, **options)
    except (ImportError, ValueError) as exc:
        raise BackupError(f"cannot use {redact(target)}: {exc}") from exc
    return fs, str(path)


def safe_member_name(name: str) -> bool:
    """Whether an archive member name stays inside the folder it is extracted into."""
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name


class HashingReader:
    """A binary reader that hashes (sha256) and counts what passes through it.

    Args:
        raw: the stream to read.
        on_bytes: called with the size of each chunk read (progress).
    """

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None] | None = None) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0
        self.on_bytes = on_bytes

    def read(self, size: int = -1) -> bytes:
        """Read and account for up to ``size`` bytes."""
        data = self.raw.read(size)
        self.digest.update(data)
        self.size += len(data)
        if self.on_bytes is not None and data:
            self.on_bytes(len(data))
        return data

    def drain(self) -> None:
        """Read to the end (hashing everything)."""
        while self.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        """sha256 of everything read so far."""
        return self.digest.hexdigest()
