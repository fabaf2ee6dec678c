"""``conveyor serve`` takes its timing settings from the environment too (containers and
Kubernetes pods set them there): a bad value is refused naming the variable."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conveyor.cli import app


@pytest.mark.parametrize(
    "variable",
    [
        "CONVEYOR_SERVE_POLL_INTERVAL",
        "CONVEYOR_SERVE_DRAIN_SECONDS",
        "CONVEYOR_SERVE_GRACEFUL_TIMEOUT",
    ],
)
def test_a_bad_value_in_the_environment_is_refused_naming_the_variable(variable: str) -> None:
    result = CliRunner().invoke(
        app, ["serve", "--model-uri", "models:/m@champion"], env={variable: "-1"}
    )
    assert result.exit_code == 2
    assert variable in result.output
