"""Runner logic with in-memory steps: cache reuse, failure records, resume, single steps."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor.config import ConveyorConfig
from conveyor.errors import DataError, PipelineError
from conveyor.pipeline.context import RunContext
from conveyor.pipeline.project import Project
from conveyor.pipeline.runner import PipelineRunner, StepEvent
from conveyor.pipeline.steps import Step
from conveyor.settings import Settings


class Counter:
    """Steps that count their executions and can be told to fail once."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.fail: dict[str, BaseException] = {}
        self.inputs = {"a": 1}

    def step(self, name: str, needs: tuple[str, ...] = ()) -> Step:
        def key(ctx: RunContext) -> list[Any]:
            return [self.inputs.get(name), *(ctx.keys[n] for n in needs)]

        def execute(ctx: RunContext, out: Path) -> dict[str, Any]:
            self.calls[name] = self.calls.get(name, 0) + 1
            if name in self.fail:
                raise self.fail.pop(name)
            upstream = [ctx.summary(n)["value"] for n in needs]
            (out / "value.txt").write_text(name)
            return {"value": sum(upstream) + 1}

        return Step(name, f"step {name}", needs, key, execute)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    config = ConveyorConfig.model_validate(
        {"name": "t", "data": {"source": "x.csv", "target": "y"}}
    )
    return Project.open(config, config_dir=tmp_path, settings=Settings())


@pytest.fixture
def counter() -> Counter:
    return Counter()


def runner_for(
    project: Project, counter: Counter, events: list[StepEvent] | None = None
) -> PipelineRunner:
    steps = (counter.step("a"), counter.step("b", ("a",)), counter.step("c", ("b",)))
    sink = events.append if events is not None else None
    return PipelineRunner(project, steps=steps, on_event=sink)


def test_second_run_reuses_every_step(project: Project, counter: Counter) -> None:
    first = runner_for(project, counter).run()
    events: list[StepEvent] = []
    second = runner_for(project, counter, events).run()
    assert first["status"] == second["status"] == "succeeded"
    assert counter.calls == {"a": 1, "b": 1, "c": 1}
    assert [e.kind for e in events] == ["cached"] * 3
    assert second["steps"]["c"]["summary"]["value"] == 3


def test_changed_input_reruns_downstream_only(project: Project, counter: Counter) -> None:
    runner_for(project, counter).run()
    counter.inputs["b"] = 2
    runner_for(project, counter).run()
    assert counter.calls == {"a": 1, "b": 2, "c": 2}


def test_force_ignores_cache(project: Project, counter: Counter) -> None:
    runner_for(project, counter).run()
    runner_for(project, counter).run(force=True)
    assert counter.calls == {"a": 2, "b": 2, "c": 2}


def test_failure_is_recorded_and_next_run_resumes(project: Project, counter: Counter) -> None:
    counter.fail["b"] = DataError("column 'x' is entirely missing")
    runner = runner_for(project, counter)
    with pytest.raises(DataError):
        runner.run()
    record = runner.store.read_record(str(runner.last_run_id))
    assert record["status"] == "failed"
    assert record["steps"]["b"]["status"] == "failed"
    assert "entirely missing" in record["error"]
    assert "c" not in record["steps"]
    runner_for(project, counter).run()
    assert counter.calls == {"a": 1, "b": 2, "c": 1}, "step a should come from cache"


def test_interrupt_is_recorded_as_interrupted(project: Project, counter: Counter) -> None:
    counter.fail["c"] = KeyboardInterrupt()
    runner = runner_for(project, counter)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    assert runner.store.read_record(str(runner.last_run_id))["status"] == "interrupted"


def converting_step() -> Step:
    """A step whose library turns the Ctrl-C it receives into an error of its own."""

    def execute(ctx: RunContext, out: Path) -> dict[str, Any]:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler raises here
        except KeyboardInterrupt:
            raise OSError(errno.EBADF, "Bad file descriptor") from None
        return {}

    return Step("convert", "a library converts Ctrl-C", (), lambda ctx: None, execute)


def test_an_interrupt_a_library_turned_into_an_error_is_recorded_as_interrupted(
    project: Project,
) -> None:
    runner = PipelineRunner(project, steps=(converting_step(),))
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    assert runner.store.read_record(str(runner.last_run_id))["status"] == "interrupted"


def test_an_error_without_an_interrupt_fails_the_run(project: Project, counter: Counter) -> None:
    counter.fail["c"] = OSError(errno.EBADF, "Bad file descriptor")
    runner = runner_for(project, counter)
    with pytest.raises(OSError):
        runner.run()
    assert runner.store.read_record(str(runner.last_run_id))["status"] == "failed"


def test_single_steps_build_up_a_run(project: Project, counter: Counter) -> None:
    runner = runner_for(project, counter)
    assert runner.run_step("a", run_id="r1")["status"] == "partial"
    with pytest.raises(PipelineError, match="step 'b' has no output in run r2"):
        runner.run_step("c", run_id="r2")
    runner.run_step("b", run_id="r1")
    record = runner.run_step("c", run_id="r1")
    assert record["status"] == "succeeded"
    assert record["steps"]["c"]["summary"]["value"] == 3


def test_unknown_step_name(project: Project, counter: Counter) -> None:
    with pytest.raises(PipelineError, match="unknown step 'trian'"):
        runner_for(project, counter).run_step("trian", run_id="r1")


@pytest.mark.parametrize("content", ["", '{"run_id": "x", "outpu', "[]"])
def test_an_unreadable_cache_entry_runs_the_step_again(
    project: Project, counter: Counter, content: str
) -> None:
    runner_for(project, counter).run()
    for entry in project.cache_dir.glob("b-*.json"):
        entry.write_text(content, encoding="utf-8")
    record = runner_for(project, counter).run()
    assert record["status"] == "succeeded"
    assert counter.calls == {"a": 1, "b": 2, "c": 1}


def test_an_unreadable_cached_summary_runs_the_step_again(
    project: Project, counter: Counter
) -> None:
    first = runner_for(project, counter).run()
    (Path(first["steps"]["b"]["outputs"]) / "_summary.json").write_text("", encoding="utf-8")
    assert runner_for(project, counter).run()["status"] == "succeeded"
    assert counter.calls == {"a": 1, "b": 2, "c": 1}


def test_a_step_added_to_a_run_with_an_unreadable_record_is_a_clear_error(
    project: Project, counter: Counter
) -> None:
    runner = runner_for(project, counter)
    runner.run_step("a", run_id="r1")
    (runner.store.run_dir("r1") / "record.json").write_text('{"run_id": "r1", "st')
    with pytest.raises(PipelineError, match=r"run record .*r1/record.json is unreadable"):
        runner.run_step("b", run_id="r1")
