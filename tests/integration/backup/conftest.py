"""Fixtures for the backup tests: the throw-away PostgreSQL server of the SQL source tests."""

from __future__ import annotations

from tests.integration.data_sources.conftest import postgres

__all__ = ["postgres"]
