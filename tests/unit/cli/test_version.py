"""``conveyor --version`` prints the package version and exits 0."""

from __future__ import annotations

from typer.testing import CliRunner

from conveyor import __version__
from conveyor.cli import app


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"conveyor {__version__}"
