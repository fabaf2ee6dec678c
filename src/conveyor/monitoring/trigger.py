"""Retraining trigger: decide from firing alerts whether to start a retraining run.

The decision core (``decide``) is pure. Rules, in order:

1. only alerts with ``status: firing`` and the label ``retrain="true"`` count
   (``ignored`` otherwise; resolved alerts never trigger);
2. an incident is one alert firing episode, keyed ``<fingerprint>@<startsAt>``: an
   incident that already started a run never starts another (``deduplicated``);
3. no new run within ``cooldown`` seconds of the last triggered one (``cooldown``);
   incidents held back by the cooldown are *not* consumed: if they still fire after it,
   the next notification starts a run;
4. at most one run in flight (``in_flight``), for cooldowns shorter than a run.

``RetrainTrigger`` wires the core to a persisted state (a small JSON file, locked, so a
restart or a second process keeps the same memory) and a launcher (``launchers``). A
launch that fails (``failed``) consumes nothing: no incident is marked, no cooldown
starts, so the next notification of the same incident (Alertmanager's retry or
``repeat_interval``, the next ``watch`` tick) tries again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from conveyor.durable import durable_write_text
from conveyor.errors import ConfigError, ConveyorError

__all__ = [
    "DEFAULT_COOLDOWN_SECONDS",
    "RESULTS",
    "Alert",
    "AlertNotification",
    "AlertmanagerAlert",
    "Decision",
    "Launcher",
    "RetrainTrigger",
    "TriggerOutcome",
    "TriggerState",
    "TriggerStateFile",
    "decide",
    "label_fingerprint",
    "record_launch",
]

log = logging.getLogger(__name__)

DEFAULT_COOLDOWN_SECONDS = 3600.0
RETRAIN_LABEL = "retrain"
SEEN_LIMIT = 1000  # incidents remembered; older ones are forgotten first
Result = Literal["started", "deduplicated", "cooldown", "in_flight", "ignored", "failed"]
RESULTS: tuple[Result, ...] = (
    "started",
    "deduplicated",
    "cooldown",
    "in_flight",
    "ignored",
    "failed",
)


# -- Alertmanager webhook payload (version 4) ---------------------------------
class AlertmanagerAlert(BaseModel):
    """One alert of an Alertmanager webhook notification."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = Field(min_length=1)  # noqa: N815 (Alertmanager's field name)
    endsAt: str | None = None  # noqa: N815
    fingerprint: str | None = None


class AlertNotification(BaseModel):
    """Alertmanager's webhook body, ``"version": "4"``."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    alerts: list[AlertmanagerAlert]
    groupKey: str = ""  # noqa: N815
    receiver: str = ""

    def to_alerts(self) -> list[Alert]:
        """The notification's alerts in the decision core's form."""
        return [
            Alert(
                name=a.labels.get("alertname", "unnamed"),
                status=a.status,
                labels=dict(a.labels),
                starts_at=a.startsAt,
                fingerprint=a.fingerprint or label_fingerprint(a.labels),
            )
            for a in self.alerts
        ]


def label_fingerprint(labels: dict[str, str]) -> str:
    """A stable fingerprint of a label set (when the sender gives none).

    Args:
        labels: the alert's labels.

    Returns:
        16 hex digits identifying the label set.
    """
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# -- decision core -------------------------------------------------------------
@dataclass(frozen=True)
class Alert:
    """An alert as the decision core sees it.

    Attributes:
        name: the ``alertname`` label.
        status: ``firing`` or ``resolved``.
        labels: all labels.
        starts_at: when this firing episode began (as the sender wrote it).
        fingerprint: identity of the label set.
    """

    name: str
    status: str
    labels: dict[str, str]
    starts_at: str
    fingerprint: str

    @property
    def incident(self) -> str:
        """The de-duplication key: one firing episode of one alert."""
        return f"{self.fingerprint}@{self.starts_at}"

    @property
    def wants_retraining(self) -> bool:
        """Firing, and labelled ``retrain="true"``."""
        return self.status == "firing" and self.labels.get(RETRAIN_LABEL) == "true"


@dataclass(frozen=True)
class TriggerState:
    """What the trigger remembers between notifications (and restarts).

    Attributes:
        seen: incident key -> Unix time of the run it started.
        last_triggered_at: Unix time of the last started run, if any.
        last_run: the launcher's description of the last started run.
    """

    seen: dict[str, float] = field(default_factory=dict)
    last_triggered_at: float | None = None
    last_run: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the state file)."""
        return {
            "seen": dict(self.seen),
            "last_triggered_at": self.last_triggered_at,
            "last_run": self.last_run,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TriggerState:
        """Rebuild from ``to_dict`` output."""
        seen = {str(k): float(v) for k, v in dict(data.get("seen") or {}).items()}
        last = data.get("last_triggered_at")
        return cls(
            seen=seen,
            last_triggered_at=float(last) if last is not None else None,
            last_run=data.get("last_run"),
        )


@dataclass(frozen=True)
class Decision:
    """What the core decided, why, and which incidents a started run answers."""

    result: Result
    reason: str
    incidents: tuple[Alert, ...] = ()

    @property
    def triggered(self) -> bool:
        """True when a run is to be started."""
        return self.result == "started"


def _names(alerts: Sequence[Alert]) -> str:
    return ", ".join(sorted({a.name for a in alerts}))


def decide(
    alerts: Sequence[Alert],
    state: TriggerState,
    *,
    now: float,
    cooldown: float,
    in_flight: bool,
) -> Decision:
    """Decide whether these alerts start a retraining run.

    Args:
        alerts: the alerts of one notification (or one poll).
        state: the remembered incidents, last trigger time and run.
        now: current Unix time.
        cooldown: seconds after a started run during which no other starts.
        in_flight: whether the last started run is still running.

    Returns:
        The decision; only ``started`` means "launch now".
    """
    wanted = [a for a in alerts if a.wants_retraining]
    if not wanted:
        return Decision("ignored", 'no firing alert with label retrain="true"')
    new = tuple(a for a in wanted if a.incident not in state.seen)
    if not new:
        return Decision("deduplicated", f"incident already triggered a run: {_names(wanted)}")
    since = None if state.last_triggered_at is None else now - state.last_triggered_at
    if since is not None and since < cooldown:
        running = " (that run is still in flight)" if in_flight else ""
        return Decision(
            "cooldown",
            f"{_names(new)}: last run triggered {since:.0f}s ago{running}; "
            f"cooldown {cooldown:.0f}s, next run allowed in {cooldown - since:.0f}s",
            new,
        )
    if in_flight:
        return Decision("in_flight", f"{_names(new)}: a retraining run is still in flight", new)
    return Decision("started", f"{_names(new)} firing: retraining", new)


def record_launch(
    state: TriggerState, decision: Decision, *, now: float, run: dict[str, Any]
) -> TriggerState:
    """The state after a started run: its incidents consumed, the cooldown starting now.

    Args:
        state: the state the decision was made on.
        decision: a ``started`` decision.
        now: Unix time of the launch.
        run: the launcher's description of the run.

    Returns:
        The new state (the oldest incidents forgotten beyond ``SEEN_LIMIT``).
    """
    seen = {**state.seen, **{a.incident: now for a in decision.incidents}}
    if len(seen) > SEEN_LIMIT:
        seen = dict(sorted(seen.items(), key=lambda kv: kv[1])[-SEEN_LIMIT:])
    return TriggerState(seen=seen, last_triggered_at=now, last_run=run)


# -- persisted state -----------------------------------------------------------
class TriggerStateFile:
    """The trigger's state in a JSON file, written durably, guarded by an flock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> TriggerState:
        """The saved state (empty when there is no file yet).

        Raises:
            ConfigError: the file is not a state file.
        """
        if not self.path.is_file():
            return TriggerState()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return TriggerState.from_dict(data)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"trigger state {self.path} is unreadable ({exc}); delete it to start afresh"
            ) from exc

    def save(self, state: TriggerState) -> None:
        """Persist the state durably (fsynced, renamed into place).

        Raises:
            OSError: the file cannot be written; the saved state is the previous one.
        """
        durable_write_text(self.path, json.dumps(state.to_dict(), indent=2))

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock (across processes) for a read-decide-write."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        with lock.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


# -- the service ---------------------------------------------------------------
class Launcher(Protocol):
    """Starts a retraining run somewhere and reports on it."""

    name: str

    def launch(self, *, reason: str, incidents: Sequence[str]) -> dict[str, Any]:
        """Start a run; return a JSON-friendly description with ``id`` and ``state``.

        Args:
            reason: why (for logs and notes).
            incidents: the incident keys the run answers (an idempotency key).

        Raises:
            ConveyorError: the run could not be started.
        """
        ...

    def status(self, run: dict[str, Any]) -> dict[str, Any]:
        """The run's description brought up to date (``state``: running, succeeded, ...)."""
        ...


@dataclass(frozen=True)
class TriggerOutcome:
    """A decision and, when a run started, the run."""

    decision: Decision
    run: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The webhook's answer."""
        return {
            "triggered": self.decision.triggered,
            "result": self.decision.result,
            "reason": self.decision.reason,
            "incidents": [a.incident for a in self.decision.incidents],
            "run": self.run,
        }


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).replace(microsecond=0).isoformat()


class RetrainTrigger:
    """Feeds alerts through the decision core and starts runs with a launcher."""

    def __init__(
        self,
        launcher: Launcher,
        state_file: TriggerStateFile,
        *,
        cooldown: float = DEFAULT_COOLDOWN_SECONDS,
        clock: Any = time.time,
    ) -> None:
        if cooldown < 0:
            raise ConfigError(f"cooldown must be >= 0 seconds, got {cooldown}")
        self.launcher = launcher
        self.state_file = state_file
        self.cooldown = cooldown
        self.clock = clock
        self._lock = threading.Lock()

    def handle(self, alerts: Sequence[Alert]) -> TriggerOutcome:
        """Decide on these alerts and, if so decided, start a run.

        Returns:
            The decision (``failed`` when the launcher could not start the run).
        """
        with self._lock, self.state_file.locked():
            state = self._refreshed(self.state_file.load())
            now = self.clock()
            running = bool(state.last_run and state.last_run.get("state") == "running")
            decision = decide(alerts, state, now=now, cooldown=self.cooldown, in_flight=running)
            if not decision.triggered:
                log.info("retrain trigger: %s: %s", decision.result, decision.reason)
                return TriggerOutcome(decision)
            try:
                incidents = [a.incident for a in decision.incidents]
                run = self.launcher.launch(reason=decision.reason, incidents=incidents)
            except ConveyorError as exc:
                log.warning("retrain trigger: %s launch failed: %s", self.launcher.name, exc)
                failed = replace(decision, result="failed", reason=f"launch failed: {exc}")
                return TriggerOutcome(failed)
            run = {**run, "triggered_at": _iso(now), "reason": decision.reason}
            self.state_file.save(record_launch(state, decision, now=now, run=run))
            log.info("retrain trigger: started %s run %s", self.launcher.name, run.get("id"))
            return TriggerOutcome(decision, run)

    def snapshot(self) -> dict[str, Any]:
        """The current state, the last run brought up to date (for ``/healthz``)."""
        with self._lock, self.state_file.locked():
            state = self._refreshed(self.state_file.load())
        last = state.last_run
        return {
            "launcher": self.launcher.name,
            "cooldown_seconds": self.cooldown,
            "in_flight": bool(last and last.get("state") == "running"),
            "last_triggered_at": (
                _iso(state.last_triggered_at) if state.last_triggered_at is not None else None
            ),
            "incidents_remembered": len(state.seen),
            "last_run": last,
        }

    def _refreshed(self, state: TriggerState) -> TriggerState:
        """Ask the launcher about a run still marked running; save what changed."""
        last = state.last_run
        if not last or last.get("state") != "running":
            return state
        try:
            current = self.launcher.status(last)
        except ConveyorError as exc:  # unknown: keep it as it was; cooldown still applies
            log.warning("retrain trigger: status of run %s unknown: %s", last.get("id"), exc)
            return state
        if current == last:
            return state
        state = replace(state, last_run=current)
        self.state_file.save(state)
        return state
