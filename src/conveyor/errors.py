"""One exception tree for Conveyor.

Adapters wrap library errors (``raise RegistryError(...) from exc``); only ``cli.py``
maps them to exit codes and human messages, only ``serving/`` to HTTP status codes::

    ConveyorError                 exit 1 unless noted
    ├── ConfigError               exit 2: bad YAML, unknown key, bad value
    ├── DataError                 source missing, unreadable, target absent, ...
    │   ├── DataValidationError   the batch failed its expectation suite
    │   └── SourceUnavailableError  exit 75: the source's database did not answer
    ├── VersioningError           DVC add / push / pull failed
    │   └── RemoteUnavailableError  exit 75: the DVC remote (object store) did not answer
    ├── TrainingError             model could not be built or fitted
    ├── RegistryError             MLflow tracking / registry failed
    │   ├── PromotionError        a promote / rollback request cannot be honoured
    │   └── ModelIntegrityError   a model version is unsigned, or its files or signature
    │                             changed since registration: it is never loaded
    ├── PipelineError             runner problems: unknown run id, missing step output
    ├── BackupError               a backup cannot be written, or an archive is not whole
    └── ServiceUnavailableError   exit 75: a database, object store or registry did not
        │                         answer; the same request may succeed later (retry it)
        ├── RegistryUnavailableError  the MLflow server or database did not answer, or was
        │                             busy (also a RegistryError)
        ├── ChampionMovedError        the champion moved after the gate compared with it:
        │                             a retry gates again (also a PromotionError)
        └── ProjectBusyError          another run of the project held its lock for longer
                                      than the wait allowed (also a PipelineError)
"""

from __future__ import annotations

__all__ = [
    "BackupError",
    "ChampionMovedError",
    "ConfigError",
    "ConveyorError",
    "DataError",
    "DataValidationError",
    "ImageBuildError",
    "ModelIntegrityError",
    "PipelineError",
    "ProjectBusyError",
    "PromotionError",
    "RegistryError",
    "RegistryUnavailableError",
    "RemoteUnavailableError",
    "ServiceUnavailableError",
    "SourceUnavailableError",
    "TrainingError",
    "VersioningError",
]


class ConveyorError(Exception):
    """Base of every error Conveyor raises on purpose."""

    exit_code = 1


class ConfigError(ConveyorError):
    """The pipeline config or the runtime settings are invalid."""

    exit_code = 2


class DataError(ConveyorError):
    """The data cannot be read or cannot be used for the configured task."""


class DataValidationError(DataError):
    """The batch failed its expectation suite.

    Attributes:
        failures: one human-readable line per failed expectation.
        report_path: where the HTML report was written, if one was.
    """

    def __init__(
        self, message: str, *, failures: list[str] | None = None, report_path: str | None = None
    ) -> None:
        super().__init__(message)
        self.failures = failures or []
        self.report_path = report_path


class VersioningError(ConveyorError):
    """DVC could not track, push or pull a dataset."""


class TrainingError(ConveyorError):
    """A model could not be built, fitted or evaluated."""


class RegistryError(ConveyorError):
    """The MLflow tracking store or model registry failed."""


class PromotionError(RegistryError):
    """A promotion or rollback cannot be honoured (unknown version, no previous, ...)."""


class ModelIntegrityError(RegistryError):
    """A model version is unsigned, its signature is wrong, or its files changed since
    registration; nothing of it is deserialised."""


class PipelineError(ConveyorError):
    """The runner cannot do what was asked (unknown run id or step, missing output)."""


class BackupError(ConveyorError):
    """A backup cannot be written, or a backup archive is not whole (tampered, truncated)."""


class ImageBuildError(ConveyorError):
    """A container image build failed (the engine's last lines say why)."""


class ServiceUnavailableError(ConveyorError):
    """A service the step needs (database, object store, registry) could not be reached.

    The failure is transient: the same step may succeed when retried (orchestrators retry
    exit code 75, ``EX_TEMPFAIL``, and nothing else).
    """

    exit_code = 75


class SourceUnavailableError(ServiceUnavailableError, DataError):
    """The source's database did not answer: a data error that a retry may cure (exit 75)."""


class RemoteUnavailableError(ServiceUnavailableError, VersioningError):
    """The DVC remote (S3, MinIO) could not be reached: a retry may cure it (exit 75)."""


class RegistryUnavailableError(ServiceUnavailableError, RegistryError):
    """The MLflow tracking server or database did not answer, or was busy (locked SQLite,
    HTTP 5xx after MLflow's own retries): a retry may cure it (exit 75)."""


class ChampionMovedError(ServiceUnavailableError, PromotionError):
    """The champion moved after the gate compared the challenger with it; no alias was
    changed. A retry gates the challenger against the new champion (exit 75)."""


class ProjectBusyError(ServiceUnavailableError, PipelineError):
    """Another run, promotion or rollback of the same project held its lock for longer than
    the wait allowed (``CONVEYOR_RUN_LOCK_TIMEOUT``): retry later (exit 75)."""
