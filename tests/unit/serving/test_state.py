"""The serving state's concurrency budget (shadow copies included) and request ids."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from starlette.requests import Request

from conveyor.serving.inputs import RequestError
from conveyor.serving.settings import ServingSettings
from conveyor.serving.slot import ModelSlot, Prediction, schema_from_pipeline
from conveyor.serving.state import ServingState

FRAME = pd.DataFrame(
    {"age": [20.0, 30.0, 40.0, 50.0], "job": pd.Series(["a", "b", "a", "b"], dtype="str")}
)
RAW = {"age": [35.0], "job": ["a"]}


def slot(version: str) -> ModelSlot:
    pre = ColumnTransformer([("num", "passthrough", ["age"]), ("cat", OneHotEncoder(), ["job"])])
    pipeline = Pipeline([("pre", pre), ("model", LogisticRegression())])
    pipeline.fit(FRAME, ["no", "yes", "no", "yes"])
    schema = schema_from_pipeline(pipeline)
    return ModelSlot(pipeline, "m", version, "run", schema, classes=("no", "yes"))


def state_with(*, max_concurrency: int, monitoring: bool = False) -> ServingState:
    settings = ServingSettings(
        model_uri="models:/m@champion",
        tracking_uri="sqlite:///unused.db",
        max_concurrency=max_concurrency,
        monitoring=monitoring,
    )
    return ServingState(settings=settings, slot=slot("1"), challenger=slot("2"), ready=True)


def sample(state: ServingState, name: str, **labels: str) -> float | None:
    value = state.metrics.registry.get_sample_value(name, labels)
    return None if value is None else float(value)


async def settled(state: ServingState, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while state.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def test_a_shadow_copy_takes_a_place_of_the_budget_until_it_is_scored() -> None:
    state = state_with(max_concurrency=1)

    async def scenario() -> None:
        state.shadow(RAW, Prediction(["no"]))
        assert state.in_flight == 1  # the copy holds the only place...
        with pytest.raises(RequestError, match="server busy") as busy:
            async with state.admission():
                pass
        assert busy.value.status == 503  # ...so a request finds none
        await settled(state)

    asyncio.run(scenario())
    assert state.in_flight == 0
    assert sample(state, "conveyor_routed_requests_total", variant="shadow", version="2") == 1
    outcomes = ("same", "different")
    rows = [sample(state, "conveyor_shadow_rows_total", version="2", outcome=o) for o in outcomes]
    assert sum(r or 0.0 for r in rows) == 1


def test_a_shadow_copy_without_a_free_place_is_dropped_and_counted() -> None:
    state = state_with(max_concurrency=1)

    async def scenario() -> None:
        async with state.admission():  # a request holds the only place
            state.shadow(RAW, Prediction(["no"]))
            assert state.in_flight == 1

    asyncio.run(scenario())
    assert sample(state, "conveyor_shadow_dropped_total", version="2") == 1
    assert sample(state, "conveyor_routed_requests_total", variant="shadow", version="2") is None
    assert state.in_flight == 0


def request(request_id: str) -> Request:
    scope: dict[str, Any] = {"type": "http", "headers": [], "state": {"request_id": request_id}}
    return Request(scope)


def test_a_callers_id_already_remembered_gets_a_new_id_and_replaces_nothing() -> None:
    state = state_with(max_concurrency=4, monitoring=True)
    primary = state.require_slot()
    first, second = request("client-id"), request("client-id")
    state.remember(first, primary, Prediction(["no"]))
    state.remember(second, primary, Prediction(["yes", "no"]))
    issued = second.state.request_id
    assert first.state.request_id == "client-id"
    assert issued != "client-id" and len(issued) == 32 and int(issued, 16) >= 0
    kept = state.feedback.peek("client-id")
    assert kept is not None and kept.predictions == ["no"]
    again = state.feedback.peek(issued)
    assert again is not None and again.predictions == ["yes", "no"]


def test_predicted_classes_are_counted_per_label_over_single_and_multi_row_batches() -> None:
    from conveyor.serving.inputs import Batch

    state = state_with(max_concurrency=4, monitoring=True)
    primary = state.require_slot()
    monitor = state.monitor(primary)
    assert monitor is not None
    one = Batch({"age": [35.0], "job": ["a"]}, 1)
    three = Batch({"age": [35.0, 36.0, 37.0], "job": ["a", "b", "a"]}, 3)
    monitor.observe(one, Prediction(["yes"]))
    monitor.observe(one, Prediction(["no"]))
    monitor.observe(three, Prediction(["yes", "no", "yes"]))
    counted = {
        label: sample(
            state, "conveyor_predicted_class_total", model="m", version="1", **{"class": label}
        )
        for label in ("no", "yes")
    }
    assert counted == {"no": 2, "yes": 3}
