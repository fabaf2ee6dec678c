"""Tasks that run the ``conveyor`` CLI of Conveyor's environment as a subprocess.

The CLI's exit code decides what Airflow does: 0 success; 75 (``EX_TEMPFAIL``: a
database, object store or registry did not answer) a retryable failure; 1 and 2 (bad
data, bad config, a failed validation) a failure that is never retried, with the CLI's
own error line as the reason. Every log line carries the Conveyor run id.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from conveyor_dags.settings import (
    allowed_config_roots,
    allowed_sources,
    conveyor_bin,
    conveyor_run_id,
    outside_allowlist,
    shown,
)

__all__ = [
    "ConveyorDriftCheckOperator",
    "ConveyorStepOperator",
    "record_failure",
    "step_record",
]

TRANSIENT_EXIT = 75
DETERMINISTIC_EXITS = (1, 2)
_INTERRUPT_GRACE_SECONDS = 20
_MAX_TEXT = 200
# The CLI's environment is its own: nothing of Airflow's interpreter leaks into it.
_DROPPED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
_QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "NO_COLOR": "1",
    "TERM": "dumb",
    "COLUMNS": "160",
}


def _mask_password(value: str, mask: Any) -> None:
    """Register a URL's password (as written and decoded) with Airflow's log masker."""
    from urllib.parse import unquote, urlsplit

    if "://" not in value:
        return
    try:
        password = urlsplit(value.strip()).password
    except ValueError:
        return
    if password:
        mask(password)
        mask(unquote(password))


def _flag(value: Any) -> bool:
    """A templated boolean ("True", "false", True, ...) as a bool."""
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def _project_dir(config: str) -> Path:
    """The project folder as the CLI resolves it: CONVEYOR_PROJECT_DIR, else the config's."""
    configured = os.environ.get("CONVEYOR_PROJECT_DIR")
    return Path(configured).resolve() if configured else Path(config).resolve().parent


def step_record(config: str, run_id: str) -> dict[str, Any] | None:
    """The run record the CLI wrote (``.conveyor/runs/<id>/record.json``), if readable."""
    path = _project_dir(config) / ".conveyor" / "runs" / run_id / "record.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _small(summary: dict[str, Any]) -> dict[str, Any]:
    """The scalar fields of a step summary (and its metrics): what may travel in XCom."""
    kept: dict[str, Any] = {}
    for key, value in summary.items():
        short_text = isinstance(value, str) and len(value) <= _MAX_TEXT
        if isinstance(value, bool | int | float) or value is None or short_text:
            kept[key] = value
        elif key == "metrics" and isinstance(value, dict):
            kept[key] = {k: v for k, v in value.items() if isinstance(v, int | float)}
    if "run_id" in kept:  # the registry's MLflow run, not the Conveyor run
        kept["mlflow_run_id"] = kept.pop("run_id")
    return kept


def record_failure(context: Any) -> None:
    """``on_failure_callback``: one log line naming the run, task, try and reason.

    The CLI has already marked the step failed (or interrupted) in the run record; this
    line ties that record to the Airflow task instance that gave up.
    """
    ti = context["ti"]
    run_id = conveyor_run_id(context["dag_run"])
    reason = context.get("exception") or "unknown reason"
    context["task"].log.error(
        "[conveyor %s] task %s of %s failed for good on try %s: %s",
        run_id,
        ti.task_id,
        ti.dag_id,
        ti.try_number,
        reason,
    )


class _ConveyorCommand(BaseOperator):
    """Runs one ``conveyor`` command, streams its output, maps its exit code."""

    ui_color = "#e8f0fe"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._proc: subprocess.Popen[str] | None = None

    def run_cli(self, args: Sequence[str], *, run_id: str, cwd: Path) -> None:
        """Run ``conveyor ARGS`` in ``cwd``; raise as the exit code says.

        Raises:
            AirflowException: exit 75 or a signal (retried).
            AirflowFailException: exit 1 or 2 (not retried).
        """
        try:
            argv = [conveyor_bin(), *args]
        except FileNotFoundError as exc:
            raise AirflowFailException(str(exc)) from exc
        if not cwd.is_dir():
            raise AirflowFailException(f"[conveyor {run_id}] no such folder {cwd}")
        self.log.info("[conveyor %s] %s", run_id, " ".join(shown(a) for a in argv))
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env.update({k: env.get(k, v) for k, v in _QUIET_ENV.items()})
        errors: list[str] = []
        self._proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # so a timeout can interrupt the whole process group
        )
        output = self._proc.stdout or ()
        try:
            for line in output:
                text = line.rstrip()
                if text.startswith("error:"):
                    errors.append(text.removeprefix("error:").strip())
                if text:
                    self.log.info("[conveyor %s] %s", run_id, text)
            code = self._proc.wait()
        finally:
            self._stop()
        self._raise_for(code, run_id=run_id, reason=errors[-1] if errors else "")

    def guard(self, run_id: str, *, config: str, **sources: str) -> None:
        """Mask passwords of the params in the task log; refuse (not retried) a config
        outside the allowed roots or a source outside the allowed sources, so a DAG run's
        params reach only what the Variables allow, not everything the worker can.

        Raises:
            AirflowFailException: a param is outside its allowlist (the message names it
                and the Variable to change, never the file's contents).
        """
        from airflow.sdk.log import mask_secret

        for value in (config, *sources.values()):
            _mask_password(value, mask_secret)
        problems = []
        roots = allowed_config_roots()
        if outside_allowlist(config, roots):
            problems.append(
                f"config {shown(config)!r} is outside the allowed config roots"
                f" (Variable conveyor_allowed_config_roots: {', '.join(map(shown, roots))})"
            )
        places = allowed_sources()
        for name, value in sources.items():
            if value.strip() and outside_allowlist(value.strip(), places):
                problems.append(
                    f"{name} {shown(value)!r} is outside the allowed sources"
                    f" (Variable conveyor_allowed_sources: {', '.join(map(shown, places))})"
                )
        if problems:
            raise AirflowFailException(f"[conveyor {run_id}] " + "; ".join(problems))

    def _raise_for(self, code: int, *, run_id: str, reason: str) -> None:
        where = f"conveyor run {run_id}, task {self.task_id}"
        if code == 0:
            return
        if code in DETERMINISTIC_EXITS:
            message = f"{where}: exit {code}: {reason or 'see the log above'} (not retried)"
            self.log.error("[conveyor %s] %s", run_id, message)
            raise AirflowFailException(message)
        kind = "transient failure" if code == TRANSIENT_EXIT else "stopped"
        message = f"{where}: {kind} (exit {code}): {reason or 'see the log above'}; retrying"
        self.log.warning("[conveyor %s] %s", run_id, message)
        raise AirflowException(message)

    def _stop(self) -> None:
        """Interrupt a CLI still running (it records the step as interrupted), then kill."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGINT)
            deadline = time.monotonic() + _INTERRUPT_GRACE_SECONDS
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def on_kill(self) -> None:
        """Airflow kills the task (timeout, mark failed, shutdown): stop the CLI too."""
        self._stop()


class ConveyorStepOperator(_ConveyorCommand):
    """``conveyor run -c CONFIG --step STEP --run-id ID [--source URI] [--force]`` for one
    pipeline step.

    The run id comes from the DAG run (``conveyor_run_id``), so a retried or cleared task
    reads and writes the same run store entries; cached steps return at once and
    registration is idempotent on its key, so a re-run makes no duplicate version.

    Returns (XCom): the Conveyor run id, the step's status and seconds, and the scalar
    fields of its summary (for ``register``: version, model_uri, mlflow_run_id).
    """

    template_fields = ("config", "force", "source")

    def __init__(
        self, *, step: str, config: str, force: Any = False, source: str = "", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.step = step
        self.config = config
        self.force = force
        self.source = source

    def execute(self, context: Any) -> dict[str, Any]:
        """Run the step; return its small summary for XCom."""
        run_id = conveyor_run_id(context["dag_run"])
        config = str(self.config or "").strip()
        if not config:
            raise AirflowFailException(
                f"[conveyor {run_id}] no config: pass the 'config' param "
                "or set the Airflow Variable conveyor_config"
            )
        config = str(Path(config).resolve())
        source = str(self.source or "").strip()
        self.guard(run_id, config=config, source=source)
        args = ["run", "-c", config, "--step", self.step, "--run-id", run_id]
        if source:  # every step gets it: the config (and so every cache key) includes it
            args += ["--source", source]
        if _flag(self.force):
            args.append("--force")
        self.run_cli(args, run_id=run_id, cwd=Path(config).parent)
        result: dict[str, Any] = {"conveyor_run_id": run_id, "step": self.step}
        record = step_record(config, run_id) or {}
        entry = record.get("steps", {}).get(self.step, {})
        result.update(status=entry.get("status"), seconds=entry.get("seconds"))
        result.update(_small(entry.get("summary") or {}))
        self.log.info("[conveyor %s] %s: %s", run_id, self.step, json.dumps(result, default=str))
        return result


class _ConveyorDataCommand(_ConveyorCommand):
    """A command on a project's model and a data source, writing into a folder."""

    template_fields = ("config", "model", "data", "out_dir")
    data_variable = "conveyor_data"  # the Variable that defaults ``data``

    def __init__(self, *, config: str, model: str, data: str, out_dir: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.model = model
        self.data = data
        self.out_dir = out_dir

    def require(self, run_id: str, names: Sequence[str]) -> None:
        """Fail (not retried) when a needed param is empty, naming its Variable."""
        missing = [n for n in names if not str(getattr(self, n)).strip()]
        if missing:
            variables = [self.data_variable if n == "data" else f"conveyor_{n}" for n in missing]
            raise AirflowFailException(
                f"[conveyor {run_id}] missing {', '.join(missing)}: pass the param(s) or set "
                + ", ".join(variables)
            )


class ConveyorDriftCheckOperator(_ConveyorDataCommand):
    """``conveyor monitor drift -c CONFIG --model NAME@champion --data PATH --out DIR``.

    Returns (XCom): ``drift_detected`` and the path of ``drift.json``.
    """

    data_variable = "conveyor_monitoring_data"

    def execute(self, context: Any) -> dict[str, Any]:
        """Check the data for drift; return whether drift was detected."""
        run_id = conveyor_run_id(context["dag_run"])
        self.require(run_id, ("config", "model", "data"))
        self.guard(run_id, config=str(Path(self.config).resolve()), data=self.data)
        out = Path(self.out_dir) / run_id
        model = self.model if "@" in self.model else f"{self.model}@champion"
        config = Path(self.config).resolve()
        args = ["monitor", "drift", "-c", str(config), "--model", model]
        args += ["--data", self.data, "--out", str(out)]
        self.run_cli(args, run_id=run_id, cwd=config.parent)
        report = out / "drift.json"
        try:
            drift = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AirflowFailException(f"[conveyor {run_id}] no readable {report}: {exc}") from exc
        detected = drift.get("drift_detected")
        if not isinstance(detected, bool):
            raise AirflowFailException(f"[conveyor {run_id}] {report}: no boolean drift_detected")
        self.log.info("[conveyor %s] drift detected: %s (%s)", run_id, detected, report)
        return {"drift_detected": detected, "report": str(report)}


class ConveyorPredictOperator(_ConveyorDataCommand):
    """``conveyor predict -c CONFIG --model NAME@ALIAS -i INPUT -o OUT/RUN.parquet``.

    Bad rows go to ``OUT/RUN.rejects.csv``; they are counted, never fatal. A retried task
    rewrites the same output files (named by the DAG run), so a retry duplicates nothing.

    Returns (XCom): rows, scored, rejected, the version that scored, the output path.
    """

    data_variable = "conveyor_scoring_data"

    def execute(self, context: Any) -> dict[str, Any]:
        """Score the data; return the counts."""
        run_id = conveyor_run_id(context["dag_run"])
        self.require(run_id, ("config", "data"))
        self.guard(run_id, config=str(Path(self.config).resolve()), data=self.data)
        config = Path(self.config).resolve()
        out = Path(self.out_dir).resolve()  # the CLI runs in the project's folder
        output, report = out / f"{run_id}.parquet", out / f"{run_id}.report.json"
        args = ["predict", "-c", str(config), "-i", self.data, "-o", str(output)]
        args += ["--rejects", str(out / f"{run_id}.rejects.csv"), "--report", str(report)]
        if str(self.model).strip():
            model = (
                self.model if "@" in self.model or "/" in self.model else f"{self.model}@champion"
            )
            args += ["--model", model]
        self.run_cli(args, run_id=run_id, cwd=config.parent)
        try:
            result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AirflowFailException(f"[conveyor {run_id}] no readable {report}: {exc}") from exc
        keys = ("model", "version", "runtime", "rows", "scored", "rejected", "output", "rejects")
        small = {k: result.get(k) for k in keys}
        self.log.info("[conveyor %s] scored: %s", run_id, json.dumps(small))
        return small
