"""Version datasets with DVC: track, push to a remote, record, and restore by md5.

Each tracked version is recorded under ``<project>/.conveyor/data-versions/`` as the
DVC-computed md5 plus a copy of its ``.dvc`` file, so any recorded version can be
restored from the remote even after the workspace file and the local DVC cache are gone.
DVC is imported inside the functions that use it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.durable import durable_write, durable_write_text
from conveyor.errors import RemoteUnavailableError, VersioningError
from conveyor.transient import is_transient

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["DataVersion", "DatasetVersioner", "file_md5"]

log = logging.getLogger(__name__)

REMOTE_NAME = "conveyor"
DEFAULT_REMOTE_DIR = Path(".conveyor") / "dvc-remote"
VERSIONS_DIR = Path(".conveyor") / "data-versions"


@dataclass(frozen=True)
class DataVersion:
    """One recorded dataset version.

    Attributes:
        md5: DVC's content hash of the file.
        path: the file's path relative to the project folder (POSIX form).
        remote: the DVC remote URL it was pushed to.
        size: file size in bytes.
        created_at: when this content was first recorded (ISO 8601, UTC).
    """

    md5: str
    path: str
    remote: str
    size: int
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "md5": self.md5,
            "path": self.path,
            "remote": self.remote,
            "size": self.size,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataVersion:
        """Inverse of ``to_dict``."""
        return cls(
            md5=str(data["md5"]),
            path=str(data["path"]),
            remote=str(data["remote"]),
            size=int(data["size"]),
            created_at=str(data["created_at"]),
        )


class DatasetVersioner:
    """Track dataset files of one project with DVC and restore recorded versions.

    Example:
        >>> versioner = DatasetVersioner(Path("."))
        >>> version = versioner.track(Path(".conveyor/data/adult.parquet"))
        >>> versioner.pull(version.md5, dest=Path("/tmp/adult.parquet"))
    """

    def __init__(self, project_dir: Path, *, remote: str | None = None) -> None:
        """Set up a versioner.

        Args:
            project_dir: the project folder (DVC repo root; created by ``track`` if needed).
            remote: DVC remote URL: a local folder or ``s3://bucket/prefix`` (an
                S3-compatible server's endpoint from ``AWS_ENDPOINT_URL``); default
                ``<project>/.conveyor/dvc-remote``.
        """
        self.project_dir = project_dir.resolve()
        self.remote = remote or str(self.project_dir / DEFAULT_REMOTE_DIR)
        self.versions_dir = self.project_dir / VERSIONS_DIR

    def track(self, file: Path) -> DataVersion:
        """``dvc add`` a file, push it to the remote and record the version.

        Re-tracking unchanged content is cheap and returns the same md5.

        Args:
            file: the dataset file, inside the project folder.

        Returns:
            The recorded version.

        Raises:
            VersioningError: the file is missing or outside the project, or DVC failed.
            RemoteUnavailableError: the remote did not answer (exit 75: retry later).
        """
        path = self._inside_project(file)
        if not path.is_file():
            raise VersioningError(f"cannot version {path}: no such file")
        dvc_file = path.with_name(path.name + ".dvc")
        with self._repo("add", tracked=path) as repo:
            repo.add(str(path))
        md5, size = _read_dvc_file(dvc_file)
        with self._repo("push") as repo:
            repo.push(targets=[str(dvc_file)], remote=REMOTE_NAME)
        version = self._record(md5, path, size, dvc_file)
        log.info("versioned %s as %s on %s", version.path, md5, self.remote)
        return version

    def pull(self, md5: str, *, dest: Path | None = None) -> Path:
        """Restore a recorded version from the remote.

        Works without the workspace file or the local DVC cache: the object is read
        straight from the remote and its md5 checked before it replaces anything.

        Args:
            md5: the version's content hash.
            dest: where to write it; default its recorded path in the project.

        Returns:
            The restored file's path.

        Raises:
            VersioningError: the md5 is not recorded, or the remote lacks it, or DVC failed.
            RemoteUnavailableError: the remote did not answer (exit 75: retry later).
        """
        version = self._version(md5)
        target = (dest or self.project_dir / version.path).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{md5[:8]}.part")
        with self._repo("pull") as repo:
            odb = repo.cloud.get_remote_odb(REMOTE_NAME, command="pull")
            source = odb.oid_to_path(md5)
            if not odb.fs.exists(source):
                raise VersioningError(f"version {md5} is not on the DVC remote {self.remote}")
            odb.fs.get_file(source, str(tmp))
        if file_md5(tmp) != md5:
            tmp.unlink(missing_ok=True)
            raise VersioningError(f"version {md5} read from {self.remote} has another md5")
        tmp.replace(target)
        log.info("restored %s to %s", md5, target)
        return target

    def versions(self) -> list[DataVersion]:
        """Every recorded version, newest first.

        Raises:
            VersioningError: a version record is unreadable.
        """
        found = [self._load(p) for p in self.versions_dir.glob("*.json")]
        return sorted(found, key=lambda v: (v.created_at, v.md5), reverse=True)

    # -- internals -------------------------------------------------------------------
    def _inside_project(self, file: Path) -> Path:
        path = (file if file.is_absolute() else self.project_dir / file).resolve()
        if not path.is_relative_to(self.project_dir):
            raise VersioningError(f"cannot version {path}: it is outside {self.project_dir}")
        return path

    @contextmanager
    def _repo(self, action: str, tracked: Path | None = None) -> Iterator[Any]:
        """An open DVC repo (initialised and remote configured), DVC errors wrapped."""
        from dvc.exceptions import DvcException
        from dvc.logger import set_loggers_level
        from dvc.repo import Repo

        os.environ.setdefault("DVC_NO_ANALYTICS", "1")
        # DVC prints its CLI hints ("To track the changes with git, run: ...") to stdout;
        # as a library we keep only its warnings and errors.
        try:
            with set_loggers_level(logging.WARNING):
                if not (self.project_dir / ".dvc").is_dir():
                    self._init(tracked)
                with Repo(str(self.project_dir)) as repo:
                    self._configure_remote(repo)
                    yield repo
        except Exception as exc:
            if is_transient(exc):  # refused, timed out, unknown host, S3 5xx / SlowDown
                raise RemoteUnavailableError(
                    f"dvc {action}: the remote {self.remote} did not answer ({exc}); "
                    "retry when it is reachable"
                ) from exc
            if "://" in self.remote and _access_denied(exc):  # not a local folder's mode
                raise VersioningError(
                    f"dvc {action}: the remote {self.remote} refused access ({exc}); check the"
                    " credentials (for s3://: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and"
                    " that they may read and write there"
                ) from exc
            if isinstance(exc, DvcException | OSError):
                raise VersioningError(f"dvc {action} failed in {self.project_dir}: {exc}") from exc
            raise

    def _init(self, tracked: Path | None) -> None:
        from dvc.repo import Repo

        git_root = _git_root(self.project_dir)
        dvc_files = [self.project_dir / ".dvc"]
        if tracked is not None:
            dvc_files.append(tracked.with_name(tracked.name + ".dvc"))
        if git_root is not None and any(_git_ignores(git_root, f) for f in dvc_files):
            # The project (or its dataset folder) is ignored by the enclosing repository,
            # e.g. a scratch or demo folder: git could never track DVC's files, so DVC
            # runs without git there.
            log.info("DVC files in %s are ignored by git: DVC without git", self.project_dir)
            git_root = None
        no_scm = git_root is None
        subdir = git_root is not None and git_root != self.project_dir
        Repo.init(str(self.project_dir), no_scm=no_scm, subdir=subdir).close()
        log.info("initialised DVC in %s (%s)", self.project_dir, "no git" if no_scm else "git")

    def _configure_remote(self, repo: Any) -> None:
        config = repo.config
        current = config.get("remote", {}).get(REMOTE_NAME, {}).get("url")
        if current == self.remote and config.get("core", {}).get("remote") == REMOTE_NAME:
            return
        # The URL is machine-specific (absolute paths, endpoints): keep it out of the
        # committed .dvc/config, in the git-ignored .dvc/config.local.
        with config.edit("local") as conf:
            conf["remote"][REMOTE_NAME] = {"url": self.remote}
            conf["core"]["remote"] = REMOTE_NAME

    def _record(self, md5: str, path: Path, size: int, dvc_file: Path) -> DataVersion:
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        record = self.versions_dir / f"{md5}.json"
        relative = path.relative_to(self.project_dir).as_posix()
        created = datetime.now(UTC).isoformat(timespec="microseconds")
        if record.is_file():
            previous = self._load(record)
            if (previous.path, previous.remote) == (relative, self.remote):
                return previous
            created = previous.created_at
        version = DataVersion(md5, relative, self.remote, size, created)
        try:
            copy = self.versions_dir / f"{md5}.dvc"
            durable_write(copy, lambda tmp: shutil.copyfile(dvc_file, tmp))
            durable_write_text(record, json.dumps(version.to_dict(), indent=2))
        except OSError as exc:
            raise VersioningError(f"cannot record version {md5}: {exc}") from exc
        return version

    def _version(self, md5: str) -> DataVersion:
        record = self.versions_dir / f"{md5}.json"
        if not record.is_file():
            known = ", ".join(v.md5 for v in self.versions()) or "none"
            raise VersioningError(f"unknown dataset version {md5!r}; known versions: {known}")
        return self._load(record)

    @staticmethod
    def _load(record: Path) -> DataVersion:
        try:
            return DataVersion.from_dict(json.loads(record.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VersioningError(f"version record {record} is unreadable: {exc}") from exc


def _read_dvc_file(dvc_file: Path) -> tuple[str, int]:
    import yaml

    try:
        out = yaml.safe_load(dvc_file.read_text(encoding="utf-8"))["outs"][0]
        return str(out["md5"]), int(out["size"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
        raise VersioningError(f"cannot read the md5 from {dvc_file}: {exc}") from exc


def _access_denied(exc: BaseException) -> bool:
    """Whether the remote refused the credentials (a PermissionError anywhere in the chain)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, PermissionError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _git_root(folder: Path) -> Path | None:
    """The work tree holding ``folder``, or None outside git."""
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _git_ignores(git_root: Path, path: Path) -> bool:
    """Whether git in ``git_root`` ignores ``path`` (False when git cannot tell)."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "-C", str(git_root), "check-ignore", "-q", str(path)],
            capture_output=True,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0


def file_md5(path: Path) -> str:
    """md5 of a file's content: the identity DVC gives it."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
