"""Support code of Conveyor's Airflow DAGs: settings, the CLI task, the Kubernetes task.

Imports Airflow and the standard library only; the pipeline itself runs in Conveyor's
own environment (the ``conveyor`` CLI) or in its image (Kubernetes pods).
"""

from __future__ import annotations

__all__: list[str] = []
