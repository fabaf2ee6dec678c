"""Validation, versioning and export in a worker process beside the run.

Real runs of the whole pipeline on a small demo table: the worker is a real process
running the real steps (Great Expectations, DVC, MLflow).
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from conveyor.config import ConveyorConfig
from conveyor.data.synthetic import write_demo_dataset
from conveyor.errors import DataValidationError, PipelineError
from conveyor.pipeline import side
from conveyor.pipeline.project import Project
from conveyor.pipeline.runner import PipelineRunner, StepEvent
from conveyor.pipeline.steps import STEPS, Step, step_named
from conveyor.settings import Settings

pytestmark = pytest.mark.integration

WORKER = "conveyor.pipeline.side"


def workers() -> list[psutil.Process]:
    """This process's side-step workers still alive."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if WORKER in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def demo_project(tmp_path: Path, **sections: Any) -> Project:
    data = write_demo_dataset(tmp_path / "data.csv", n_rows=1500, seed=3, messy=True)
    config = ConveyorConfig.model_validate(
        {
            "name": "side",
            "data": {"source": str(data), "target": "churned"},
            "training": {"models": [{"type": "logistic_regression"}]},
            "serving": {"onnx": {"enabled": False}},
            **sections,
        }
    )
    return Project.open(config, config_dir=tmp_path, settings=Settings())


def test_a_whole_run_completes_every_step(tmp_path: Path) -> None:
    record = PipelineRunner(demo_project(tmp_path)).run()
    statuses = {name: step["status"] for name, step in record["steps"].items()}
    assert statuses == dict.fromkeys((s.name for s in STEPS), "succeeded")


def test_the_worker_is_gone_after_the_run(tmp_path: Path) -> None:
    PipelineRunner(demo_project(tmp_path)).run()
    assert workers() == []


def test_a_failed_validation_beside_training_fails_the_run(tmp_path: Path) -> None:
    project = demo_project(tmp_path, validation={"max_null_fraction": 0.0})
    with pytest.raises(DataValidationError):
        PipelineRunner(project).run()


def failed_validation_record(tmp_path: Path) -> dict[str, Any]:
    """The record of a run whose validation fails (every value must be present)."""
    runner = PipelineRunner(demo_project(tmp_path, validation={"max_null_fraction": 0.0}))
    with pytest.raises(DataValidationError):
        runner.run()
    return runner.store.read_record(runner.last_run_id or "")


def test_a_failed_validation_beside_training_registers_nothing(tmp_path: Path) -> None:
    record = failed_validation_record(tmp_path)
    assert (record["steps"]["validate"]["status"], "register" in record["steps"]) == (
        "failed",
        False,
    )


def kill_worker_when(step: str) -> Any:
    def on_event(event: StepEvent) -> None:
        if event.kind == "start" and event.step.name == step:
            for worker in workers():
                worker.send_signal(signal.SIGKILL)

    return on_event


def test_a_killed_worker_fails_the_run_with_a_clear_error(tmp_path: Path) -> None:
    runner = PipelineRunner(demo_project(tmp_path), on_event=kill_worker_when("train"))
    with pytest.raises(PipelineError, match=r"worker process running step .* stopped"):
        runner.run()


def test_a_killed_worker_leaves_no_registered_version(tmp_path: Path) -> None:
    runner = PipelineRunner(demo_project(tmp_path), on_event=kill_worker_when("train"))
    with pytest.raises(PipelineError):
        runner.run()
    record = runner.store.read_record(runner.last_run_id or "")
    assert record["steps"].get("register", {}).get("status") != "succeeded"


def test_the_next_run_after_a_killed_worker_succeeds(tmp_path: Path) -> None:
    project = demo_project(tmp_path)
    with pytest.raises(PipelineError):
        PipelineRunner(project, on_event=kill_worker_when("train")).run()
    assert PipelineRunner(project).run()["status"] == "succeeded"


def test_a_small_source_starts_the_worker_before_ingest(tmp_path: Path) -> None:
    seen: list[int] = []

    def count_workers(event: StepEvent) -> None:
        if event.kind == "start" and event.step.name == "ingest":
            # Started already; its command line is the worker's once it has exec'd.
            deadline = time.monotonic() + 10
            while not workers() and time.monotonic() < deadline:
                time.sleep(0.05)
            seen.append(len(workers()))

    PipelineRunner(demo_project(tmp_path), on_event=count_workers).run()
    assert seen == [1]


def test_a_table_above_the_limit_has_its_side_steps_done_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(side, "BESIDE_MAX_CELLS", 0)
    events: list[tuple[str, str]] = []

    def note(event: StepEvent) -> None:
        events.append((event.kind, event.step.name))

    record = PipelineRunner(demo_project(tmp_path), on_event=note).run()
    assert record["status"] == "succeeded"
    train_starts = events.index(("start", "train"))
    assert {("done", "validate"), ("done", "version")} <= set(events[:train_starts])


def test_a_table_above_the_limit_stops_the_worker_holding_it_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(side, "BESIDE_MAX_CELLS", 0)
    at_split: list[psutil.Process] = []
    running_at_train: list[bool] = []

    def note_workers(event: StepEvent) -> None:
        if event.kind == "start" and event.step.name == "split":
            at_split.extend(workers())
        if event.kind == "start" and event.step.name == "train":
            running_at_train.extend(w.is_running() for w in at_split)

    PipelineRunner(demo_project(tmp_path), on_event=note_workers).run()
    assert running_at_train == [False]


def onnx_runtime_loaded(process: psutil.Process) -> bool:
    """Whether ONNX Runtime's native library is mapped into ``process``."""
    try:
        return any("onnxruntime" in m.path for m in process.memory_maps())
    except psutil.Error:
        return False


def runtime_loaded_while_training(tmp_path: Path) -> bool:
    """A whole run with ONNX on whose training waits (up to 30 s) for a worker with ONNX
    Runtime loaded; returns whether one was seen before training ended."""
    seen: list[bool] = []

    def train_waiting(ctx: Any, out: Path) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while not any(onnx_runtime_loaded(w) for w in workers()):
            if time.monotonic() > deadline:
                seen.append(False)
                break
            time.sleep(0.1)
        else:
            seen.append(True)
        return step_named("train").execute(ctx, out)

    steps = tuple(
        dataclasses.replace(s, execute=train_waiting) if s.name == "train" else s for s in STEPS
    )
    project = demo_project(tmp_path, serving={"onnx": {"enabled": True}})
    assert PipelineRunner(project, steps=steps).run()["status"] == "succeeded"
    return seen == [True]


def test_the_worker_loads_the_exports_libraries_while_training_runs(tmp_path: Path) -> None:
    assert runtime_loaded_while_training(tmp_path)


def test_on_a_table_above_the_limit_a_fresh_worker_loads_them_while_training_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(side, "BESIDE_MAX_CELLS", 0)
    assert runtime_loaded_while_training(tmp_path)


def steps_running_at_evaluation(tmp_path: Path) -> tuple[list[str], int]:
    """A whole run's steps still running, and the workers alive, when evaluation starts."""
    seen: list[tuple[list[str], int]] = []
    runner = PipelineRunner(demo_project(tmp_path))

    def note(event: StepEvent) -> None:
        if event.kind == "start" and event.step.name == "evaluate":
            steps = runner.store.read_record(runner.last_run_id or "")["steps"]
            running = [name for name, step in steps.items() if step["status"] == "running"]
            deadline = time.monotonic() + 10  # a worker just started may not have exec'd yet
            while running and not workers() and time.monotonic() < deadline:
                time.sleep(0.05)
            seen.append((running, len(workers())))

    runner.on_event = note
    assert runner.run()["status"] == "succeeded"
    return seen[0]


def test_the_export_runs_beside_evaluation(tmp_path: Path) -> None:
    running, _ = steps_running_at_evaluation(tmp_path)
    assert "export" in running


def test_a_table_above_the_limit_exports_in_a_fresh_worker_beside_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(side, "BESIDE_MAX_CELLS", 0)
    assert steps_running_at_evaluation(tmp_path) == (["export"], 1)


def test_a_failed_validation_on_a_table_above_the_limit_fails_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(side, "BESIDE_MAX_CELLS", 0)
    record = failed_validation_record(tmp_path)
    assert (record["steps"]["validate"]["status"], "train" in record["steps"]) == (
        "failed",
        False,
    )


def with_register_prepare(prepare: Any) -> tuple[Step, ...]:
    """The pipeline, with ``prepare`` as registration's preparation."""
    return tuple(
        dataclasses.replace(s, prepare=prepare) if s.name == "register" else s for s in STEPS
    )


def run_holding_the_worker(tmp_path: Path, prepare: Any) -> tuple[dict[str, Any], int]:
    """A whole run whose worker is stopped when training starts, so its steps are still
    running when registration comes up; registration's preparation calls ``prepare``
    (with the run's steps as recorded then) and lets the worker go on (a timer does,
    should it not be called). Returns the run record and how many workers were held."""
    held: list[psutil.Process] = []

    def resume() -> None:
        for worker in held:
            worker.resume()

    def hold_worker(event: StepEvent) -> None:
        if event.kind == "start" and event.step.name == "train":
            held.extend(workers())
            for worker in held:
                worker.suspend()

    runner = PipelineRunner(demo_project(tmp_path), on_event=hold_worker)

    def preparation(ctx: Any) -> None:
        prepare(runner.store.read_record(ctx.run_id)["steps"])
        resume()

    runner.steps = with_register_prepare(preparation)
    safety = threading.Timer(60, resume)
    safety.start()
    try:
        record = runner.run()
    finally:
        safety.cancel()
    return record, len(held)


def test_registration_prepares_while_validation_runs_beside(tmp_path: Path) -> None:
    beside_then: list[bool] = []

    def prepare(steps: dict[str, Any]) -> None:
        beside_then.append(any(steps[n]["status"] == "running" for n in ("validate", "version")))

    _, held = run_holding_the_worker(tmp_path, prepare)
    assert (held, beside_then) == (1, [True])


def test_registrations_time_includes_its_preparation(tmp_path: Path) -> None:
    def prepare(steps: dict[str, Any]) -> None:
        time.sleep(2.0)

    record, _ = run_holding_the_worker(tmp_path, prepare)
    assert record["steps"]["register"]["seconds"] >= 2.0


def test_a_failing_preparation_leaves_registration_to_run(tmp_path: Path) -> None:
    def prepare(ctx: Any) -> None:
        raise RuntimeError("no imports today")

    runner = PipelineRunner(demo_project(tmp_path), steps=with_register_prepare(prepare))
    assert runner.run()["steps"]["register"]["status"] == "succeeded"
