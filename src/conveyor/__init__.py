"""Conveyor: an end-to-end MLOps pipeline from a raw table to a monitored model."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
