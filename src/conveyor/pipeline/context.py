"""What a step sees while it runs: the project, the run, earlier steps' outputs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from conveyor.config import ConveyorConfig
from conveyor.data.schema import TableSchema, Task
from conveyor.errors import PipelineError
from conveyor.pipeline.project import Project
from conveyor.pipeline.store import RunStore

__all__ = ["RunContext", "digest"]


def digest(*parts: Any) -> str:
    """Stable short sha256 of JSON-able parts (cache keys, content ids)."""
    payload = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


@dataclass
class RunContext:
    """State shared by the steps of one run.

    Attributes:
        project: the project being run.
        run_id: this run's id.
        store: the run store.
        outputs: step name -> folder holding that step's outputs (maybe an earlier run's).
        summaries: step name -> the JSON summary the step returned.
        keys: step name -> the cache key it ran (or was reused) under.
        memo: objects already in memory, so a whole run reads each output once.
    """

    project: Project
    run_id: str
    store: RunStore
    outputs: dict[str, Path] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)

    def output(self, step: str) -> Path:
        """Output folder of an earlier step.

        Raises:
            PipelineError: that step has not run in this run.
        """
        if step not in self.outputs:
            raise PipelineError(
                f"step {step!r} has no output in run {self.run_id}; run it first "
                f"(conveyor run --step {step} --run-id {self.run_id})"
            )
        return self.outputs[step]

    def summary(self, step: str) -> dict[str, Any]:
        """JSON summary of an earlier step."""
        self.output(step)
        return self.summaries[step]

    def frame(self, step: str, name: str) -> Any:
        """A DataFrame output of an earlier step (memoised)."""
        memo_key = f"{step}/{name}"
        if memo_key not in self.memo:
            self.memo[memo_key] = self.store.load_frame(self.output(step), name)
        return self.memo[memo_key]

    def forget(self, *, keep: Iterable[str]) -> None:
        """Drop from memory the outputs of every step but those in ``keep`` (they are
        read again from the run store if needed)."""
        kept = set(keep)
        for memo_key in [k for k in self.memo if k.split("/", 1)[0] not in kept]:
            del self.memo[memo_key]

    def model(self, step: str, name: str) -> Any:
        """A model output of an earlier step (memoised)."""
        memo_key = f"{step}/{name}"
        if memo_key not in self.memo:
            self.memo[memo_key] = self.store.load_model(self.output(step), name)
        return self.memo[memo_key]

    @property
    def schema(self) -> TableSchema:
        """The table schema ingest learned."""
        return TableSchema.from_dict(self.summary("ingest")["schema"])

    @property
    def task(self) -> Task:
        """The task the run trains for."""
        task: Task = self.config.training.task  # type: ignore[assignment]
        return task

    @cached_property
    def config(self) -> ConveyorConfig:
        """The resolved config (every inferred value explicit); needs ingest."""
        from conveyor.pipeline.resolve import resolve_config

        return resolve_config(self.project.config, inferred_task=self.summary("ingest")["task"])
