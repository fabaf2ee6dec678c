"""Helpers behind ``conveyor config show`` and ``conveyor demo``."""

from __future__ import annotations

from pathlib import Path

from conveyor.config import ConveyorConfig
from conveyor.pipeline.project import Project
from conveyor.pipeline.resolve import resolve_config

__all__ = ["DEMO_CONFIG", "resolved_config", "write_demo_project"]

DEMO_CONFIG = """\
# Conveyor demo project: seeded customer-churn data (see conveyor.data.synthetic).
# Everything not written here is inferred or defaulted: `conveyor config show` prints it all.
name: churn-demo
data:
  source: data/churn.csv
  target: churned
promotion:
  thresholds:
    roc_auc: 0.70
# The monitoring loop's timing, short so that the demo's loop takes a minute. The shipped
# rules wait 15 minutes of drift before they fire (`conveyor monitor alerting` renders
# deploy/'s Prometheus and Alertmanager files with these values).
alerting:
  scrape_interval: 1s
  evaluation_interval: 1s
  notify_wait: 1s
  pending:
    ConveyorFeatureDrift: 5s
    ConveyorDatasetDrift: 5s
    ConveyorOnlinePerformanceLow: 5s
"""


def resolved_config(project: Project) -> ConveyorConfig:
    """The config as a run would use it, with task, model, metric and split inferred.

    Reads and cleans the source once (as ingest does) to learn the task.
    """
    from conveyor.data.cleaning import clean_table
    from conveyor.data.schema import infer_task
    from conveyor.data.sources import read_table

    frame, schema, _ = clean_table(read_table(project.config.data), project.config.data)
    return resolve_config(project.config, inferred_task=infer_task(frame[schema.target]))


def write_demo_project(directory: Path, *, rows: int, seed: int, drift: float) -> Path:
    """Write demo data and a config into ``directory``; return the config's path."""
    from conveyor.data.synthetic import write_demo_dataset

    (directory / "data").mkdir(parents=True, exist_ok=True)
    write_demo_dataset(directory / "data" / "churn.csv", n_rows=rows, seed=seed, drift=drift)
    config_path = directory / "conveyor.yaml"
    if not config_path.exists():
        config_path.write_text(DEMO_CONFIG, encoding="utf-8")
    return config_path
