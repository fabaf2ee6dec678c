"""``conveyor backup``: one archive holding a consistent snapshot of a project.

The tracking and registry store is copied first (SQLite online backup, or ``pg_dump``),
then the files it refers to: artifacts, the DVC remote and records, the GX suites, the
run records and the config. Artifacts and DVC objects are never changed once written, so
every artifact of every run and version in the store's copy is whole in the archive.
The archive is written under a temporary name (locally) and appears whole or not at
all; its manifest holds the sha256 of every member.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from conveyor import __version__
from conveyor.data.versioning import DEFAULT_REMOTE_DIR, VERSIONS_DIR
from conveyor.errors import BackupError
from conveyor.pipeline.archive import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PROJECT_PREFIX,
    STORE_DUMP,
    HashingReader,
    Progress,
    archive_suffix,
    is_remote,
    open_fs,
)
from conveyor.pipeline.project import Project
from conveyor.redaction import redact, redact_tree
from conveyor.registry.signing import KEY_FILE, key_file
from conveyor.registry.snapshot import (
    artifact_locations,
    dump_postgres,
    local_path,
    snapshot_sqlite,
    sqlite_file,
    store_kind,
)
from conveyor.settings import STATE_DIR

__all__ = ["BackupReport", "create_backup"]

log = logging.getLogger(__name__)

ARTIFACTS_DIR = f"{STATE_DIR}/mlartifacts"
DVC_REMOTE_DIR = DEFAULT_REMOTE_DIR.as_posix()
STORE_FILE = f"{STATE_DIR}/mlflow.db"
SIGNING_KEY_FILE = f"{STATE_DIR}/{KEY_FILE}"
GZIP_LEVEL = 6


@dataclass(frozen=True)
class BackupReport:
    """What a backup wrote.

    Attributes:
        target: where the archive is (path or URL, redacted).
        members: how many files it holds (manifest aside).
        size: bytes of file content before compression.
        external: locations the store or DVC refer to that are not in the archive
            (object storage keeps them).
    """

    target: str
    members: int
    size: int
    external: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    """Files to archive (member name -> local file) and the manifest's sections."""

    files: dict[str, Path] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    layout: dict[str, Any] = field(default_factory=dict)
    external: list[str] = field(default_factory=list)

    def add(self, name: str, path: Path) -> None:
        self.files[PROJECT_PREFIX + name] = path

    def add_tree(self, name: str, folder: Path) -> None:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            self.add(f"{name}/{path.relative_to(folder).as_posix()}", path)


def create_backup(
    project: Project, *, config_path: Path, target: str, on_progress: Progress | None = None
) -> BackupReport:
    """Write one archive holding a consistent snapshot of the project.

    Args:
        project: the project to back up.
        config_path: its config file (archived as the restored project's config).
        target: an archive path or URL ending in ``.tar.gz``/``.tgz``/``.tar``, or a folder
            or ``s3://bucket/prefix`` to write a timestamped archive into.
        on_progress: progress of the long stages (bytes).

    Returns:
        What was written.

    Raises:
        BackupError: the store cannot be copied, a file cannot be read, or the target
            exists or cannot be written.
    """
    target = _archive_target(target, project.config.name)
    with tempfile.TemporaryDirectory(prefix="conveyor-backup-") as tmp:
        plan = _plan(project, config_path, Path(tmp))
        size = sum(p.stat().st_size for p in plan.files.values())
        _write_archive(target, plan, total=size, on_progress=on_progress)
    log.info("backup of %s written to %s (%d files)", project.root, redact(target), len(plan.files))
    return BackupReport(redact(target), len(plan.files), size, plan.external)


def _archive_target(target: str, name: str) -> str:
    if archive_suffix(target) is not None:
        return target
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{target.rstrip('/')}/conveyor-backup-{name}-{stamp}.tar.gz"


# -- what goes in -------------------------------------------------------------------------
def _plan(project: Project, config_path: Path, tmp: Path) -> _Plan:
    plan = _Plan()
    root = project.root
    plan.sources = {"project_root": str(root), "config": str(config_path.resolve())}
    plan.add(config_path.name, config_path.resolve())
    plan.layout["config"] = config_path.name
    default_root = _add_store(plan, project.tracking_uri, tmp)
    _add_artifacts(plan, project.tracking_uri, tmp, default_root)
    _add_dvc(plan, project)
    suites = project.baseline_path.parent.parent  # <project>/gx: the GX suites
    if suites.is_dir():
        plan.add_tree(suites.relative_to(root).as_posix(), suites)
    runs = project.runs_dir
    for record in sorted(runs.glob("*/record.json")) if runs.is_dir() else []:
        plan.add(f"{STATE_DIR}/runs/{record.parent.name}/record.json", record)
    return plan


def _add_store(plan: _Plan, uri: str, tmp: Path) -> Path | None:
    """Copy the store into ``tmp`` (first: see the module docstring); its default artifact
    root (SQLite: ``mlartifacts`` beside the file), if it has one."""
    kind = store_kind(uri)
    plan.sources.update({"tracking_uri": uri, "store": kind})
    if kind == "sqlite":
        db = sqlite_file(uri)
        snapshot_sqlite(db, tmp / "mlflow.db")
        plan.add(STORE_FILE, tmp / "mlflow.db")
        plan.layout["store"] = {"kind": kind, "path": STORE_FILE}
        key = key_file(uri)
        if key is not None and key.is_file():  # the versions verify only with their key
            plan.add(SIGNING_KEY_FILE, key)
        return db.parent / "mlartifacts"
    dump_postgres(uri, tmp / "postgres.dump")
    plan.files[STORE_DUMP] = tmp / "postgres.dump"
    plan.layout["store"] = {"kind": kind, "path": STORE_DUMP}
    return None


def _add_artifacts(plan: _Plan, uri: str, tmp: Path, default_root: Path | None) -> None:
    """Every local folder the experiments keep artifacts in, as few roots as cover them."""
    store = f"sqlite:///{tmp / 'mlflow.db'}" if plan.layout["store"]["kind"] == "sqlite" else uri
    roots: list[Path] = []
    for location in artifact_locations(store):
        path = local_path(location)
        if path is None:
            plan.external.append(redact(location))
            continue
        if default_root is not None and path.is_relative_to(default_root):
            path = default_root
        if path.is_dir() and not any(path.is_relative_to(r) for r in roots):
            roots = [r for r in roots if not r.is_relative_to(path)] + [path]
    layout = []
    for index, folder in enumerate(sorted(roots, key=lambda r: r != default_root)):
        name = ARTIFACTS_DIR if index == 0 else f"{ARTIFACTS_DIR}-{index}"
        plan.add_tree(name, folder)
        layout.append({"source": str(folder), "path": name})
    plan.layout["artifact_roots"] = layout
    plan.sources["artifact_roots"] = [item["source"] for item in layout]


def _add_dvc(plan: _Plan, project: Project) -> None:
    """The DVC remote (when it is a local folder), DVC's config and every dataset record."""
    root = project.root
    remote = project.dvc_remote or str(root / DEFAULT_REMOTE_DIR)
    plan.sources["dvc_remote"] = remote
    folder = local_path(remote) if "://" in remote else Path(remote).resolve()
    if folder is not None and folder.is_dir():
        plan.add_tree(DVC_REMOTE_DIR, folder)
        plan.layout["dvc_remote"] = {"source": str(folder), "path": DVC_REMOTE_DIR}
    else:
        plan.layout["dvc_remote"] = None
        if folder is None:
            plan.external.append(redact(remote))
    for name in (".dvc/config", ".dvc/config.local", ".dvcignore"):
        if (root / name).is_file():
            plan.add(name, root / name)
    datasets = project.dataset_path.parent
    for dvc_file in sorted(datasets.glob("*.dvc")) if datasets.is_dir() else []:
        plan.add(dvc_file.relative_to(root).as_posix(), dvc_file)
    if (root / VERSIONS_DIR).is_dir():
        plan.add_tree(VERSIONS_DIR.as_posix(), root / VERSIONS_DIR)


# -- writing --------------------------------------------------------------------------------
def _write_archive(target: str, plan: _Plan, *, total: int, on_progress: Progress | None) -> None:
    fs, path = open_fs(target)
    try:
        exists = fs.exists(path)
    except OSError as exc:
        raise BackupError(f"cannot reach {redact(target)}: {exc}") from exc
    if exists:
        raise BackupError(f"{redact(target)} already exists; name a new archive or a folder")
    local = not is_remote(target)
    if local:
        fs.makedirs(fs._parent(path), exist_ok=True)
    # Locally the archive is renamed into place; on S3 the object appears on completion.
    partial = f"{path}.partial" if local else path
    try:
        with fs.open(partial, "wb") as out:
            members = _write_members(out, plan, target, total=total, on_progress=on_progress)
        if local:
            fs.mv(partial, path)
    except BaseException:
        _remove_quietly(fs, partial)
        raise
    log.debug("archive %s: %d members", redact(target), members)


def _write_members(
    out: IO[bytes], plan: _Plan, target: str, *, total: int, on_progress: Progress | None
) -> int:
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress("archiving", done, total)

    compressed = archive_suffix(target) != ".tar"
    stream: IO[bytes] = (
        gzip.GzipFile(fileobj=out, mode="wb", compresslevel=GZIP_LEVEL)  # type: ignore[assignment]
        if compressed
        else out
    )
    checksums: dict[str, dict[str, Any]] = {}
    try:
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name, path in sorted(plan.files.items()):
                checksums[name] = _add_file(tar, name, path, advance)
            manifest = _manifest(plan, checksums)
            _add_bytes(tar, MANIFEST, manifest)
    except OSError as exc:
        raise BackupError(f"cannot write {redact(target)}: {exc}") from exc
    finally:
        if compressed:
            stream.close()
    return len(checksums)


def _add_file(tar: tarfile.TarFile, name: str, path: Path, advance: Any) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())  # the file opened, even if renamed meanwhile
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o644
            reader = HashingReader(handle, advance)
            tar.addfile(info, reader)  # type: ignore[arg-type]
    except FileNotFoundError as exc:
        raise BackupError(f"{path} disappeared while it was being backed up") from exc
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc}") from exc
    return {"sha256": reader.hexdigest(), "size": reader.size}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(datetime.now(UTC).timestamp()), 0o644
    tar.addfile(info, io.BytesIO(data))


def _manifest(plan: _Plan, checksums: dict[str, dict[str, Any]]) -> bytes:
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "conveyor_version": __version__,
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "sources": redact_tree(plan.sources),
        "layout": plan.layout,
        "external": plan.external,
        "members": checksums,
    }
    return json.dumps(manifest, indent=2, sort_keys=False).encode()


def _remove_quietly(fs: Any, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm(path)
    except OSError:
        log.warning("could not remove the unfinished archive %s", redact(path))
