"""Where a project's state lives on disk: runs, cache, baseline, datasets, MLflow store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conveyor.config import ConveyorConfig
from conveyor.settings import STATE_DIR, Settings

__all__ = ["Project"]


@dataclass(frozen=True)
class Project:
    """A Conveyor project: a config plus the folder it lives in.

    Attributes:
        config: the validated pipeline config.
        root: the project folder (the config file's folder unless CONVEYOR_PROJECT_DIR).
        settings: runtime settings in force.
    """

    config: ConveyorConfig
    root: Path
    settings: Settings

    @classmethod
    def open(cls, config: ConveyorConfig, *, config_dir: Path, settings: Settings) -> Project:
        """Bind a config to its project folder."""
        return cls(config=config, root=settings.project_root(config_dir), settings=settings)

    @property
    def state_dir(self) -> Path:
        """``.conveyor/``: runs, cache, MLflow store, DVC remote."""
        return self.root / STATE_DIR

    @property
    def runs_dir(self) -> Path:
        """One folder per run id."""
        return self.state_dir / "runs"

    @property
    def cache_dir(self) -> Path:
        """Index of reusable step outputs, by cache key."""
        return self.state_dir / "cache"

    @property
    def baseline_path(self) -> Path:
        """The GX expectation suite profiled from the first accepted dataset.

        Kept outside ``.conveyor/`` so it can be committed with the project.
        """
        return self.root / "gx" / "expectations" / f"{self.config.name}.json"

    @property
    def dataset_path(self) -> Path:
        """The validated dataset that DVC tracks.

        In the project folder (not ``.conveyor/``), so its ``.dvc`` file can be committed.
        """
        return self.root / "datasets" / f"{self.config.name}.parquet"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: MLFLOW_TRACKING_URI > config > embedded SQLite."""
        return self.settings.tracking_uri(self.root, self.config.tracking_uri)

    @property
    def dvc_remote(self) -> str | None:
        """DVC remote URL: CONVEYOR_DVC_REMOTE > config > default (local dir)."""
        return self.settings.dvc_remote or self.config.versioning.remote
