"""Fill a config's inferred values (task, models, metric, split) from what ingest learned."""

from __future__ import annotations

from conveyor.config import ConveyorConfig
from conveyor.data.schema import Task

__all__ = ["resolve_config"]


def resolve_config(config: ConveyorConfig, *, inferred_task: Task) -> ConveyorConfig:
    """Return a copy of ``config`` with every ``auto``/empty value made explicit.

    Args:
        config: the user's config.
        inferred_task: the task implied by the target column.

    Returns:
        The config as the run will use it; written to the run record for reproducibility.

    Raises:
        ConfigError: the metric does not fit the task.
    """
    from conveyor.training.evaluate import default_metric, validate_metric
    from conveyor.training.models import default_model

    training = config.training
    task: Task = inferred_task if training.task == "auto" else training.task
    metric = training.metric or default_metric(task)
    validate_metric(metric, task)
    models = training.models or [default_model(task)]
    split = config.split
    strategy = split.strategy
    if strategy == "auto":
        strategy = (
            "time" if split.time_column else ("random" if task == "regression" else "stratified")
        )
    return config.model_copy(
        update={
            "training": training.model_copy(
                update={"task": task, "metric": metric, "models": models}
            ),
            "split": split.model_copy(update={"strategy": strategy}),
        }
    )
