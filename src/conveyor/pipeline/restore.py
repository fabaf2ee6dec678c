"""``conveyor restore``: a backup archive back into a project folder, on any machine.

Every member's sha256 is checked against the manifest before anything is written: a
tampered, truncated or foreign archive is refused and the target stays as it was. Then
the files are extracted (each checked again as it is written) and every absolute path
of the old machine is moved to the new folder: artifact locations in the store, the
DVC remote in ``.dvc/config``, dataset and run records. A failure part-way leaves the
target folder empty again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.data.versioning import VERSIONS_DIR
from conveyor.errors import BackupError, ConfigError
from conveyor.pipeline.archive import (
    CHUNK,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PROJECT_PREFIX,
    HashingReader,
    Progress,
    is_remote,
    open_fs,
    safe_member_name,
)
from conveyor.redaction import redact
from conveyor.registry.signing import KEY_FILE
from conveyor.registry.snapshot import (
    Relocation,
    relocate_artifacts,
    restore_postgres,
    store_counts,
)
from conveyor.settings import STATE_DIR

__all__ = ["RestoreReport", "restore_backup", "verify_archive"]

log = logging.getLogger(__name__)

_URL_LINE = re.compile(r"^(\s*url\s*=\s*)(\S.*?)\s*$")


@dataclass(frozen=True)
class RestoreReport:
    """What a restore brought back.

    Attributes:
        into: the restored project folder.
        config: its config file.
        store: the restored tracking URI.
        counts: registered models, versions, aliases and runs in the restored store.
        run_records: pipeline run records restored.
        datasets: dataset versions recorded (each can be pulled from the DVC remote).
        notes: what the user still has to do (settings that name the old machine).
    """

    into: Path
    config: Path
    store: str
    counts: dict[str, int]
    run_records: int
    datasets: int
    notes: list[str] = field(default_factory=list)


def restore_backup(
    source: str,
    *,
    into: Path,
    tracking_uri: str | None = None,
    on_progress: Progress | None = None,
) -> RestoreReport:
    """Restore a backup archive into an empty (or new) folder.

    Args:
        source: the archive: a local path or ``s3://bucket/key``.
        into: the folder to restore into; it must be empty or not exist.
        tracking_uri: for an archive of a PostgreSQL store, the empty database to
            restore it into (ignored for a SQLite store, restored under ``into``).
        on_progress: progress of the long stages (bytes).

    Returns:
        What was restored.

    Raises:
        ConfigError: ``into`` is not empty, or a PostgreSQL archive without a target.
        BackupError: the archive is missing, not whole, or cannot be restored.
    """
    into = into.expanduser().resolve()
    _check_empty(into)
    with tempfile.TemporaryDirectory(prefix="conveyor-restore-") as tmp:
        archive = _local_copy(source, Path(tmp), on_progress)
        manifest = verify_archive(archive, on_progress=on_progress)
        store = _target_store(manifest, into, tracking_uri)
        kind = manifest["layout"]["store"]["kind"]
        created = not into.exists()
        into.mkdir(parents=True, exist_ok=True)
        try:
            _extract(archive, manifest, into, Path(tmp), on_progress)
            if kind == "postgresql":
                restore_postgres(store, Path(tmp) / manifest["layout"]["store"]["path"])
            notes = _relocate(manifest, into, store)
            counts = store_counts(store)
        except BaseException:
            _empty(into, remove=created)
            raise
    return RestoreReport(
        into=into,
        config=into / manifest["layout"]["config"],
        store=redact(store),
        counts=counts,
        run_records=len(list((into / STATE_DIR / "runs").glob("*/record.json"))),
        datasets=len(list((into / VERSIONS_DIR).glob("*.json"))),
        notes=notes,
    )


def _target_store(manifest: dict[str, Any], into: Path, tracking_uri: str | None) -> str:
    """Where the archived store goes: under ``into`` (SQLite) or the named database."""
    if manifest["layout"]["store"]["kind"] != "postgresql":
        return f"sqlite:///{into / STATE_DIR}/mlflow.db"
    if not tracking_uri:
        raise ConfigError(
            "this archive holds a PostgreSQL store: pass --tracking-uri "
            "postgresql://... naming an empty database to restore it into"
        )
    return tracking_uri


def _check_empty(into: Path) -> None:
    if into.exists() and not into.is_dir():
        raise ConfigError(f"--into {into}: it is a file; restore needs an empty folder")
    if into.is_dir() and any(into.iterdir()):
        count = sum(1 for _ in into.iterdir())
        raise ConfigError(
            f"--into {into}: the folder is not empty ({count} entries); restore needs an "
            "empty or new folder, so nothing there is overwritten"
        )


def _empty(into: Path, *, remove: bool) -> None:
    """Undo a failed restore: the folder is left as it was found (empty or absent)."""
    for child in into.iterdir() if into.is_dir() else []:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
    if remove:
        shutil.rmtree(into, ignore_errors=True)


def _local_copy(source: str, tmp: Path, on_progress: Progress | None) -> Path:
    """The archive as a local file: itself, or a download of a remote one into ``tmp``."""
    if not is_remote(source):
        path = Path(source.removeprefix("file://")).expanduser()
        if not path.is_file():
            raise BackupError(f"no backup archive at {path}")
        return path
    fs, remote = open_fs(source)
    local = tmp / "archive"
    try:
        total = int(fs.size(remote))
        done = 0
        with fs.open(remote, "rb") as src, local.open("wb") as dst:
            while chunk := src.read(CHUNK):
                dst.write(chunk)
                done += len(chunk)
                if on_progress is not None:
                    on_progress("downloading", done, total)
    except FileNotFoundError as exc:
        raise BackupError(f"no backup archive at {redact(source)}") from exc
    except OSError as exc:
        raise BackupError(f"cannot read {redact(source)}: {exc}") from exc
    return local


# -- verification ---------------------------------------------------------------------------
def verify_archive(path: Path, *, on_progress: Progress | None = None) -> dict[str, Any]:
    """Check every member of an archive against its manifest; write nothing.

    Args:
        path: the local archive.
        on_progress: progress over the archive's bytes.

    Returns:
        The manifest.

    Raises:
        BackupError: unreadable, truncated, a member missing, added, changed or unsafe
            (absolute, ``..``, a link), no manifest, or a newer format.
    """
    total = path.stat().st_size
    found: dict[str, tuple[str, int]] = {}
    raw_manifest: bytes | None = None
    try:
        with path.open("rb") as handle:
            counted = HashingReader(handle, _advance(on_progress, "verifying", total))
            with tarfile.open(fileobj=counted, mode="r|*") as tar:  # type: ignore[call-overload]
                for info in tar:
                    _check_member(path, info)
                    if info.isdir():
                        continue
                    if info.name in found or (info.name == MANIFEST and raw_manifest):
                        raise BackupError(f"{path}: member {info.name} appears twice")
                    member = tar.extractfile(info)
                    if info.name == MANIFEST:
                        raw_manifest = member.read()
                        continue
                    reader = HashingReader(member)
                    reader.drain()
                    found[info.name] = (reader.hexdigest(), reader.size)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BackupError(
            f"{path} is not a whole backup archive (truncated or corrupt: {exc}); "
            "nothing was restored"
        ) from exc
    manifest = _parse_manifest(path, raw_manifest)
    _compare(path, manifest["members"], found)
    return manifest


def _advance(on_progress: Progress | None, stage: str, total: int) -> Any:
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(stage, min(done, total), total)

    return advance


def _check_member(path: Path, info: tarfile.TarInfo) -> None:
    if not safe_member_name(info.name):
        raise BackupError(f"{path}: member {info.name!r} would be written outside the folder")
    if not (info.isfile() or info.isdir()):
        raise BackupError(f"{path}: member {info.name!r} is a link or device; refused")


def _parse_manifest(path: Path, raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise BackupError(f"{path} has no {MANIFEST}: not a Conveyor backup, or truncated")
    try:
        manifest: dict[str, Any] = json.loads(raw)
        fmt, version = manifest["format"], int(manifest["format_version"])
        members = manifest["members"]
        manifest["layout"]["store"]["kind"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{path}: {MANIFEST} is unreadable ({exc})") from exc
    if fmt != FORMAT or not isinstance(members, dict):
        raise BackupError(f"{path}: not a Conveyor backup (format {fmt!r})")
    if version > FORMAT_VERSION:
        raise BackupError(
            f"{path}: archive format {version} is newer than this Conveyor reads "
            f"({FORMAT_VERSION}); restore it with a newer Conveyor"
        )
    return manifest


def _compare(path: Path, expected: dict[str, Any], found: dict[str, tuple[str, int]]) -> None:
    missing = sorted(set(expected) - set(found))
    if missing:
        raise BackupError(f"{path}: member {missing[0]} is missing (truncated?); nothing restored")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise BackupError(f"{path}: member {extra[0]} is not in the manifest; nothing restored")
    for name, (digest, size) in sorted(found.items()):
        want = expected[name]
        if (digest, size) != (want.get("sha256"), want.get("size")):
            raise BackupError(
                f"{path}: member {name} does not match its checksum in the manifest "
                "(the archive was changed or damaged); nothing was restored"
            )


# -- extraction -----------------------------------------------------------------------------
def _extract(
    path: Path, manifest: dict[str, Any], into: Path, tmp: Path, on_progress: Progress | None
) -> None:
    members: dict[str, Any] = manifest["members"]
    advance = _advance(on_progress, "restoring", sum(int(m["size"]) for m in members.values()))
    with path.open("rb") as handle, tarfile.open(fileobj=handle, mode="r|*") as tar:
        for info in tar:
            if info.name not in members:
                continue
            relative = info.name.removeprefix(PROJECT_PREFIX)
            base = into if info.name.startswith(PROJECT_PREFIX) else tmp
            dest = base / relative
            if not dest.resolve().is_relative_to(base):
                raise BackupError(f"{path}: member {info.name!r} leaves the target folder")
            dest.parent.mkdir(parents=True, exist_ok=True)
            reader = HashingReader(tar.extractfile(info), advance)  # type: ignore[arg-type]
            mode = 0o600 if dest.name == KEY_FILE else 0o644  # the signing key: owner only
            with os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as out:
                shutil.copyfileobj(reader, out, CHUNK)  # type: ignore[misc]
            if reader.hexdigest() != members[info.name]["sha256"]:
                raise BackupError(f"{path}: {info.name} changed while it was being restored")


# -- moving the old machine's paths ------------------------------------------------------------
def _relocate(manifest: dict[str, Any], into: Path, store: str) -> list[str]:
    layout, sources = manifest["layout"], manifest["sources"]
    old_root = str(sources["project_root"])
    moves = [
        Relocation(old=r["source"], new=str(into / r["path"])) for r in layout["artifact_roots"]
    ]
    changed = relocate_artifacts(store, moves)
    log.info("rewrote %d artifact locations in the restored store", changed)
    pairs = [(m.old, m.new) for m in moves]
    remote = layout.get("dvc_remote")
    if remote:
        pairs.insert(0, (str(remote["source"]), str(into / remote["path"])))
        _rewrite_dvc_config(into, old=str(remote["source"]), new=str(into / remote["path"]))
    pairs.append((old_root, str(into)))
    records = [
        *(into / STATE_DIR / "runs").glob("*/record.json"),
        *(into / VERSIONS_DIR).glob("*.json"),
    ]
    for record in records:
        _rewrite_json(record, pairs)
    return _notes(manifest, into)


def _moved(value: str, pairs: list[tuple[str, str]]) -> str:
    for old, new in pairs:
        if value == old or value.startswith(old.rstrip("/") + "/"):
            return new + value[len(old) :]
    return value


def _rewrite_json(path: Path, pairs: list[tuple[str, str]]) -> None:
    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return _moved(value, pairs)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        log.warning("%s is not JSON; left as it is", path)
        return
    path.write_text(json.dumps(walk(data), indent=2), encoding="utf-8")


def _rewrite_dvc_config(into: Path, *, old: str, new: str) -> None:
    """Point every DVC remote URL inside the old remote folder at the restored one."""
    for name in (".dvc/config", ".dvc/config.local"):
        config = into / name
        if not config.is_file():
            continue
        lines = config.read_text(encoding="utf-8").splitlines(keepends=True)
        for index, line in enumerate(lines):
            found = _URL_LINE.match(line.rstrip("\n"))
            if found:
                moved = _moved(found.group(2), [(old, new)])
                lines[index] = f"{found.group(1)}{moved}\n"
        config.write_text("".join(lines), encoding="utf-8")


def _notes(manifest: dict[str, Any], into: Path) -> list[str]:
    """Settings of the old machine the restored project does not follow by itself."""
    layout, sources = manifest["layout"], manifest["sources"]
    old_root = Path(sources["project_root"])
    notes = []
    remote = layout.get("dvc_remote")
    if remote and Path(remote["source"]) != old_root / remote["path"]:
        notes.append(
            f"the DVC remote was {remote['source']} (outside the project); it is restored at "
            f"{into / remote['path']}: set versioning.remote or CONVEYOR_DVC_REMOTE to it"
        )
    store = layout["store"]
    if store["kind"] == "sqlite" and sources.get("tracking_uri", "").rstrip("/") != (
        f"sqlite:///{old_root / store['path']}"
    ):
        notes.append(
            f"the tracking store was {sources.get('tracking_uri')}; it is restored at "
            f"sqlite:///{into / store['path']}: set tracking_uri or MLFLOW_TRACKING_URI to it"
        )
    notes.extend(f"not in the archive (kept by its own storage): {e}" for e in manifest["external"])
    return notes
