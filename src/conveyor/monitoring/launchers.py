"""Where a triggered retraining run runs: a local ``conveyor run`` or an Airflow DAG run.

Both describe a run as a JSON-friendly dict with ``launcher``, ``id`` and ``state``
(``running``, ``succeeded``, ``failed`` or ``unknown``), kept in the trigger's state file.

* ``LocalLauncher`` starts ``conveyor run -c CONFIG`` in its own session (a restart of the
  receiver does not kill the training), output to a log file; the config's data source is
  the newest data, and the run goes through the normal validation and promotion gates.
* ``AirflowLauncher`` triggers the ``conveyor_training`` DAG through Airflow 3's REST API
  (``POST /api/v2/dags/{dag_id}/dagRuns``, JWT bearer from ``POST /auth/token``). The DAG
  run id is derived from the incidents, so a retried launch that Airflow already accepted
  answers 409 and is taken as the same run, never a second one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.errors import ConfigError, PipelineError, ServiceUnavailableError
from conveyor.settings import Settings, get_settings

__all__ = [
    "AIRFLOW_PASSWORD_ENV",
    "AIRFLOW_URL_ENV",
    "AIRFLOW_USERNAME_ENV",
    "AirflowLauncher",
    "LocalLauncher",
]

log = logging.getLogger(__name__)

AIRFLOW_URL_ENV = "CONVEYOR_AIRFLOW_URL"
AIRFLOW_USERNAME_ENV = "CONVEYOR_AIRFLOW_USERNAME"
AIRFLOW_PASSWORD_ENV = "CONVEYOR_AIRFLOW_PASSWORD"
_RUN_ID_FORMAT = "%Y%m%dT%H%M%S"  # the prefix of Conveyor run ids (pipeline.store)
_AIRFLOW_STATES = {
    "queued": "running",
    "running": "running",
    "success": "succeeded",
    "failed": "failed",
}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _conveyor_command() -> list[str]:
    """The ``conveyor`` of this environment (beside the interpreter), else on PATH."""
    beside = Path(sys.executable).with_name("conveyor")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("conveyor")
    return [found] if found else [sys.executable, "-m", "conveyor"]


class LocalLauncher:
    """Runs ``conveyor run -c CONFIG`` as a subprocess of this machine."""

    name = "local"

    def __init__(
        self, config: Path, *, runs_dir: Path, log_dir: Path, command: list[str] | None = None
    ) -> None:
        """Bind the launcher to a project.

        Args:
            config: the project's ``conveyor.yaml``.
            runs_dir: the project's ``.conveyor/runs`` (to find the run id afterwards).
            log_dir: where each launched run's output goes.
            command: the ``conveyor`` command (default: the one of this environment).
        """
        self.config = config.resolve()
        self.runs_dir = runs_dir
        self.log_dir = log_dir
        self.command = command or _conveyor_command()
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def launch(self, *, reason: str, incidents: Sequence[str]) -> dict[str, Any]:
        """Start ``conveyor run`` in the background.

        Raises:
            PipelineError: the process could not be started.
        """
        started = _now()
        launch_id = f"local-{started.strftime(_RUN_ID_FORMAT)}-{secrets.token_hex(3)}"
        log_path = self.log_dir / f"{launch_id}.log"
        argv = [*self.command, "run", "-c", str(self.config)]
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with log_path.open("wb") as out:
                child = subprocess.Popen(
                    argv,
                    cwd=self.config.parent,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            raise PipelineError(f"cannot start {' '.join(argv)}: {exc}") from exc
        self._children[child.pid] = child
        log.info("launched %s (pid %s, log %s): %s", " ".join(argv), child.pid, log_path, reason)
        return {
            "launcher": self.name,
            "id": launch_id,
            "state": "running",
            "pid": child.pid,
            "command": argv,
            "log": str(log_path),
            "started_at": started.isoformat(),
            "run_id": None,
            "exit_code": None,
        }

    def status(self, run: dict[str, Any]) -> dict[str, Any]:
        """The run's state; once finished, its exit code and Conveyor run id."""
        pid = int(run["pid"])
        child = self._children.get(pid)
        if child is not None:
            code = child.poll()
            if code is None:
                return run
            del self._children[pid]
        elif _alive(pid):
            return run  # started by an earlier receiver process, still running
        else:
            code = None
        run_id, record_status = self._conveyor_run(run["started_at"])
        if code is not None:
            state = "succeeded" if code == 0 else "failed"
        else:
            state = record_status if record_status in ("succeeded", "failed") else "unknown"
        return {
            **run,
            "state": state,
            "exit_code": code,
            "run_id": run_id,
            "finished_at": _now().isoformat(),
        }

    def _conveyor_run(self, started_at: str) -> tuple[str | None, str | None]:
        """The first Conveyor run recorded since the launch (ids sort by start time)."""
        since = datetime.fromisoformat(started_at).strftime(_RUN_ID_FORMAT)
        if not self.runs_dir.is_dir():
            return None, None
        ids = sorted(p.name for p in self.runs_dir.iterdir() if p.is_dir() and p.name >= since)
        if not ids:
            return None, None
        try:
            record = json.loads((self.runs_dir / ids[0] / "record.json").read_text("utf-8"))
        except (OSError, ValueError):
            return ids[0], None
        return ids[0], str(record.get("status"))


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running ``conveyor`` process (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return b"conveyor" in cmdline.read_bytes()
    except OSError:
        return True  # no /proc: trust the signal check


class AirflowLauncher:
    """Triggers the training DAG through Airflow 3's REST API (``/api/v2``, JWT)."""

    name = "airflow"

    def __init__(
        self,
        url: str,
        *,
        username: str,
        password: str,
        dag_config: str,
        dag_id: str = "conveyor_training",
        timeout: float = 10.0,
    ) -> None:
        """Bind the launcher to an Airflow API server.

        Args:
            url: base URL of the API server (``http://airflow:8080``).
            username: user for ``POST /auth/token``.
            password: its password.
            dag_config: the ``config`` param of the DAG (the project's conveyor.yaml as
                the Airflow workers see it).
            dag_id: the training DAG.
            timeout: seconds per HTTP request.
        """
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self.dag_config = dag_config
        self.dag_id = dag_id
        self.timeout = timeout
        self._token: str | None = None

    @classmethod
    def from_settings(cls, *, dag_config: str, settings: Settings | None = None) -> AirflowLauncher:
        """Build from ``CONVEYOR_AIRFLOW_URL``, ``..._USERNAME``, ``..._PASSWORD``.

        Raises:
            ConfigError: a variable is missing.
        """
        settings = settings or get_settings()
        given = {
            AIRFLOW_URL_ENV: settings.airflow_url,
            AIRFLOW_USERNAME_ENV: settings.airflow_username,
            AIRFLOW_PASSWORD_ENV: (
                settings.airflow_password.get_secret_value() if settings.airflow_password else None
            ),
        }
        missing = [name for name, value in given.items() if not value]
        if missing:
            raise ConfigError(f"--launcher airflow needs {', '.join(missing)} in the environment")
        return cls(
            str(given[AIRFLOW_URL_ENV]),
            username=str(given[AIRFLOW_USERNAME_ENV]),
            password=str(given[AIRFLOW_PASSWORD_ENV]),
            dag_config=dag_config,
        )

    def launch(self, *, reason: str, incidents: Sequence[str]) -> dict[str, Any]:
        """Trigger a DAG run with conf ``{"config": ...}``, its id derived from the incidents.

        Raises:
            ConfigError: bad credentials or no such DAG.
            ServiceUnavailableError: Airflow did not answer (retry later).
            PipelineError: Airflow refused the request.
        """
        digest = hashlib.sha256("\n".join(sorted(incidents)).encode()).hexdigest()[:16]
        run_id = f"conveyor_retrain__{digest}"
        body = {
            "dag_run_id": run_id,
            "logical_date": None,
            "conf": {"config": self.dag_config},
            "note": reason[:500],
        }
        path = f"/api/v2/dags/{self.dag_id}/dagRuns"
        status, answer = self._api("POST", path, body)
        if status == 409:  # accepted by an earlier attempt whose answer was lost
            status, answer = self._api("GET", f"{path}/{run_id}")
        if status not in (200, 201):
            raise self._refusal(status, answer)
        return self._describe(answer, fallback_id=run_id)

    def status(self, run: dict[str, Any]) -> dict[str, Any]:
        """The DAG run's state (queued/running -> running, success -> succeeded)."""
        status, answer = self._api("GET", f"/api/v2/dags/{self.dag_id}/dagRuns/{run['id']}")
        if status != 200:
            raise self._refusal(status, answer)
        return {**run, **self._describe(answer, fallback_id=str(run["id"]))}

    def _describe(self, answer: dict[str, Any], *, fallback_id: str) -> dict[str, Any]:
        state = str(answer.get("state") or "queued")
        return {
            "launcher": self.name,
            "id": answer.get("dag_run_id", fallback_id),
            "dag_id": self.dag_id,
            "state": _AIRFLOW_STATES.get(state, "unknown"),
            "airflow_state": state,
            "url": f"{self.url}/dags/{self.dag_id}/runs/{answer.get('dag_run_id', fallback_id)}",
        }

    def _refusal(self, status: int, answer: dict[str, Any]) -> Exception:
        detail = answer.get("detail", answer)
        if status == 404:
            return ConfigError(f"Airflow at {self.url} has no DAG {self.dag_id!r}: {detail}")
        if status in (401, 403):
            return ConfigError(f"Airflow at {self.url} refused user {self.username!r}: {detail}")
        if status >= 500:
            return ServiceUnavailableError(f"Airflow at {self.url} answered {status}: {detail}")
        return PipelineError(f"Airflow at {self.url} refused the DAG run ({status}): {detail}")

    def _token_now(self, *, renew: bool = False) -> str:
        if self._token is None or renew:
            body = {"username": self.username, "password": self.password}
            status, answer = self._request("POST", "/auth/token", body, token=None)
            token = answer.get("access_token")
            if status not in (200, 201) or not isinstance(token, str):
                raise self._refusal(status if status >= 400 else 401, answer)
            self._token = token
        return self._token

    def _api(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        status, answer = self._request(method, path, body, token=self._token_now())
        if status == 401:  # expired token: get a new one, once
            status, answer = self._request(method, path, body, token=self._token_now(renew=True))
        return status, answer

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None, *, token: str | None
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            raise ServiceUnavailableError(f"Airflow at {self.url} did not answer: {exc}") from exc


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {"detail": raw[:200].decode("utf-8", "replace")}
    return data if isinstance(data, dict) else {"detail": data}
