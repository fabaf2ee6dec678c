"""The real Airflow 3 environment (``.venv-airflow``), run as subprocesses.

One metadata DB per test session (``airflow db migrate`` costs ~7 s), in a temporary
AIRFLOW_HOME; the DAGs come from the repository's ``dags/`` folder and call the
``conveyor`` CLI of this test run's environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
AIRFLOW_VENV = REPO / ".venv-airflow"
CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


@dataclass
class Airflow:
    """Runs ``airflow`` (or the Airflow venv's python) with this session's settings."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(
        self, *args: str, timeout: float = 420, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``airflow ARGS``; stdout and stderr together in ``.stdout``."""
        return self._run([str(AIRFLOW_VENV / "bin" / "airflow"), *args], timeout, extra_env)

    def python(
        self, code: str, *, timeout: float = 120, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``code`` with the Airflow environment's interpreter."""
        return self._run([str(AIRFLOW_VENV / "bin" / "python"), "-c", code], timeout, extra_env)

    def _run(
        self, argv: list[str], timeout: float, extra_env: dict[str, str] | None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            env={**self.env, **(extra_env or {})},
            cwd=self.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Airflow]:
    """A migrated Airflow home for this session (fails, never skips, without the venv)."""
    if not (AIRFLOW_VENV / "bin" / "airflow").is_file():
        pytest.fail(f"no Airflow environment at {AIRFLOW_VENV}: run `make airflow` first")
    home = tmp_path_factory.mktemp("airflow-home")
    drop = ("MLFLOW_", "CONVEYOR_", "AIRFLOW", "PYTHON", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__USAGE_DATA_COLLECTION__ENABLED="False",
        SCARF_ANALYTICS="false",
        DO_NOT_TRACK="1",
        CONVEYOR_BIN=CONVEYOR,
        # Tests wait for retries: one second, not one minute.
        AIRFLOW_VAR_CONVEYOR_RETRY_DELAY_SECONDS="1",
        # Every test's project and data live under pytest's temporary folder.
        AIRFLOW_VAR_CONVEYOR_ALLOWED_CONFIG_ROOTS=str(tmp_path_factory.getbasetemp()),
    )
    runner = Airflow(home=home, env=env)
    migrated = runner("db", "migrate", timeout=180)
    assert migrated.returncode == 0, migrated.stdout[-3000:]
    yield runner
    shutil.rmtree(home / "logs", ignore_errors=True)


@pytest.fixture
def conveyor() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``conveyor(*args, cwd=...)`` runs the CLI of this test run's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CONVEYOR, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )

    return run
