"""DAG params reach only the folders and URL prefixes the allowlist names."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from tests.source_files import load_module

SETTINGS = Path(__file__).resolve().parents[3] / "dags" / "conveyor_dags" / "settings.py"


@pytest.fixture(scope="module")
def settings() -> ModuleType:
    return load_module(SETTINGS, "conveyor_dags_settings")


@pytest.mark.parametrize(
    ("value", "outside"),
    [
        ("/srv/data/churn.csv", False),
        ("/srv/data", False),
        ("/srv/data/../etc/passwd", True),
        ("/srv/database/x.csv", True),
        ("s3://lake/churn/2026.csv", False),
        ("s3://lake/churnx/2026.csv", True),
        ("s3://lake-evil/churn/x.csv", True),
        ("postgresql://u:p@db.internal:5432/crm", False),
        ("postgresql://u:p@db.internal:5433/crm", True),
        ("postgresql://db.internal@evil.example:5432/crm", True),
        ("http://lake/churn/x.csv", True),
        ("s3://lake:notaport/churn/x", True),
    ],
)
def test_outside_allowlist(settings: ModuleType, value: str, outside: bool) -> None:
    allowed = ["/srv/data", "s3://lake/churn/", "postgresql://db.internal:5432/crm"]
    assert settings.outside_allowlist(value, allowed) is outside


def test_a_symlink_cannot_leave_an_allowed_folder(settings: ModuleType, tmp_path: Path) -> None:
    allowed = tmp_path / "data"
    allowed.mkdir()
    (allowed / "escape").symlink_to("/etc")
    assert settings.outside_allowlist(str(allowed / "escape" / "passwd"), [str(allowed)])


def test_a_url_is_shown_without_its_credentials_or_query(settings: ModuleType) -> None:
    shown = settings.shown("postgresql://app:pw@db:5432/crm?password=x")
    assert shown == "postgresql://db:5432/crm"
