"""Three ``conveyor serve`` replicas behind a real HAProxy, driven by deploy/rollout/rollout.py.

One deployment per module. The scenarios run once each, in order, on it (a good rollout
under load, a bad one, its undo, a replica killed under load); the tests then check one
outcome each from what the scenario recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.integration.faults.conftest import clean_env, free_port
from tests.integration.serving.conftest import FEATURES, make_table, register_conveyor_model
from tests.traffic import Sample, Traffic

from conveyor.registry.store import ModelRegistry

ROOT = Path(__file__).resolve().parents[3]
ROLLOUT = [sys.executable, str(ROOT / "deploy" / "rollout" / "rollout.py")]
MODEL = "rollout-test"
STEADY_S = 4.0  # traffic before the action, and after it
READY_TIMEOUT_S = 120.0


@dataclass
class Fleet:
    """A deployment's folder, HAProxy's port and the store its replicas read."""

    folder: Path
    port: int
    tracking_uri: str
    versions: dict[str, str] = field(default_factory=dict)  # "good", "next", "bad"

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        command = [*ROLLOUT, args[0], "--dir", str(self.folder), *args[1:]]
        return subprocess.run(
            command, env=clean_env(), capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip

    def up(self, replicas: int = 3) -> subprocess.CompletedProcess[str]:
        """``up`` with ``replicas`` of version "good"."""
        return self.run(
            "up", "--model-uri", self.uri("good"), "--replicas", str(replicas),
            "--port", str(self.port), "--ready-timeout", str(READY_TIMEOUT_S),
            "--", "--tracking-uri", self.tracking_uri,
        )  # fmt: skip

    def status(self) -> dict[str, Any]:
        result = self.run("status", "--json")
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    def uri(self, which: str) -> str:
        return f"models:/{MODEL}/{self.versions[which]}"


@dataclass(frozen=True)
class Outcome:
    """What a scenario recorded: the action's result and the traffic around it."""

    result: Any
    before: list[Sample]  # the requests that started before the action
    during: list[Sample]  # ... while it ran
    after: list[Sample]  # ... once it had finished
    seconds: float  # how long the action took
    status: dict[str, Any]  # `rollout.py status --json` once it had finished

    @property
    def samples(self) -> list[Sample]:
        return self.before + self.during + self.after


def corrupt(registry_folder: Path, model_id: str) -> None:
    """Overwrite the registered model file: the signature check refuses to load it."""
    (model_file,) = registry_folder.glob(f"mlartifacts/**/models/{model_id}/artifacts/model.skops")
    model_file.write_bytes(b"not a model")


def make_store(folder: Path) -> tuple[str, dict[str, str]]:
    """An embedded store in ``folder`` holding versions "good" and "next" of a model (ONNX
    export and training profile, as the register step stores them) and a version "bad"
    whose files were corrupted after registration (it never loads): the store's URI and
    the versions."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    versions = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name in ("CONVEYOR_SIGNING_KEY", "MLFLOW_TRACKING_URI"):
            patch.delenv(name, raising=False)
        registry = ModelRegistry(uri)
        for which, seed, trees in (("good", 1, 20), ("next", 2, 40), ("bad", 3, 10)):
            _, versions[which] = register_conveyor_model(
                registry, make_table(n=600, seed=seed), name=MODEL, key=which,
                n_estimators=trees, onnx=True, profile=True,
            )  # fmt: skip
    source = str(MlflowClient(uri).get_model_version(MODEL, versions["bad"]).source)
    corrupt(folder, source.removeprefix("models:/"))
    return uri, versions


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Three replicas of version "good" behind HAProxy."""
    uri, versions = make_store(tmp_path_factory.mktemp("rollout-store"))
    fleet = Fleet(tmp_path_factory.mktemp("rollout") / "deployment", free_port(), uri, versions)
    result = fleet.up()
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield fleet
    finally:
        fleet.run("down")


def under_load(
    fleet: Fleet, action: Callable[[], Any], *, steady_s: float = STEADY_S, rate: float = 20.0
) -> Outcome:
    """Steady traffic through HAProxy (4 clients, ``rate`` requests/s each) for
    ``steady_s``, then ``action()``, then ``steady_s`` more."""
    rows = make_table(n=5, seed=9)[FEATURES].to_dict(orient="records")
    with Traffic("127.0.0.1", fleet.port, rows, clients=4, rate=rate) as traffic:
        time.sleep(steady_s)
        started = time.monotonic()
        result = action()
        finished = time.monotonic()
        time.sleep(steady_s)
    return Outcome(
        result=result,
        before=traffic.between(0.0, started),
        during=traffic.between(started, finished),
        after=traffic.between(finished, float("inf")),
        seconds=finished - started,
        status=fleet.status(),
    )


def scenario(fleet: Fleet, *args: str, **load: float) -> Outcome:
    """``rollout.py ARGS`` under load."""
    return under_load(fleet, lambda: fleet.run(*args), **load)
