"""Monitoring inside a real server: drift windows against the training profile, the
prediction distribution, and ground truth through POST /feedback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.integration.serving.conftest import (
    FEATURES,
    TARGET,
    launch,
    make_table,
    metric_value,
    register_conveyor_model,
)

from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

WATCHED = "watched-test"


@pytest.fixture(scope="module")
def watched(
    store: tuple[ModelRegistry, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, str, str]:
    """A model registered with its training profile, served with fast drift evaluation."""
    registry, _ = store
    table = make_table(n=3000, seed=61)
    pipeline, version = register_conveyor_model(
        registry, table, name=WATCHED, key="watched-1", profile=True
    )
    folder = tmp_path_factory.mktemp("watched-server")
    return pipeline, version, str(folder)


@pytest.fixture(scope="module")
def server(store: tuple[ModelRegistry, str], watched: tuple[Any, str, str]) -> Iterator[str]:
    registry, _ = store
    options = ("--poll-interval", "0", "--drain-seconds", "0", "--drift-interval", "0.5")
    uri = f"models:/{WATCHED}@champion"
    with launch(registry.tracking_uri, uri, Path(watched[2]), *options) as (_, url, _):
        yield url


def send(url: str, frame: pd.DataFrame, *, request_id: str | None = None) -> httpx.Response:
    payload = {"dataframe_split": {"columns": FEATURES, "data": frame.values.tolist()}}
    headers = {"X-Request-Id": request_id} if request_id else {}
    answer = httpx.post(f"{url}/invocations", json=payload, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer


def drift_of(url: str, feature: str, *, default: float | None = None) -> float:
    return metric_value(url, "conveyor_feature_drifted", feature=feature, default=default)


def wait_for(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError("condition not reached in time")


def test_clean_traffic_raises_no_drift_and_the_distribution_is_counted(
    server: str, watched: tuple[Any, str, str]
) -> None:
    _, version, _ = watched
    clean = make_table(n=600, seed=62)[FEATURES]
    for start in range(0, 600, 100):
        send(server, clean.iloc[start : start + 100])
    # the evaluation that publishes the window's rows publishes its drift gauges first
    wait_for(lambda: metric_value(server, "conveyor_drift_window_rows", default=0.0) >= 600)
    assert all(drift_of(server, f) == 0 for f in FEATURES)
    assert metric_value(server, "conveyor_drift_detected", version=version) == 0
    classes = sum(
        metric_value(server, "conveyor_predicted_class_total", **{"class": c})
        for c in ("<=50K", ">50K")
    )
    assert classes == 600
    summary = httpx.get(f"{server}/monitoring", timeout=10).json()
    (only,) = summary["versions"]
    assert only["drift_watched"] and only["drift"]["drift_detected"] is False


def test_drifted_traffic_raises_exactly_the_drifted_features(server: str) -> None:
    drifted = make_table(n=4000, seed=63)[FEATURES]
    drifted["age"] = drifted["age"] + 25.0  # about two standard deviations
    for start in range(0, 4000, 500):
        send(server, drifted.iloc[start : start + 500])
    wait_for(lambda: drift_of(server, "age", default=0.0) == 1)
    assert drift_of(server, "hours") == 0 and drift_of(server, "job") == 0
    assert metric_value(server, "conveyor_feature_drift", feature="age", statistic="psi") > 0.25
    assert 0 < metric_value(server, "conveyor_drift_window_bytes") < 2_000_000


def test_feedback_feeds_online_metrics_and_refuses_bad_labels(
    server: str, watched: tuple[Any, str, str]
) -> None:
    pipeline, version, _ = watched
    rows = make_table(n=300, seed=64)
    answer = send(server, rows[FEATURES], request_id="fb-1")
    assert answer.headers["x-request-id"] == "fb-1"
    truth = rows[TARGET].tolist()
    wrong_count = httpx.post(
        f"{server}/feedback",
        json={"feedback": [{"request_id": "fb-1", "labels": truth[:10]}]},
        timeout=30,
    )
    assert wrong_count.status_code == 422
    assert "feedback.0: request 'fb-1': 10 labels for 300 predicted rows" in wrong_count.text
    unknown_class = httpx.post(
        f"{server}/feedback",
        json={"feedback": [{"request_id": "fb-1", "labels": ["maybe"] * 300}]},
        timeout=30,
    )
    assert unknown_class.status_code == 422 and "unknown class 'maybe'" in unknown_class.text
    body = {
        "feedback": [{"request_id": "fb-1", "labels": truth}, {"request_id": "nope", "labels": [1]}]
    }
    done = httpx.post(f"{server}/feedback", json=body, timeout=30)
    assert done.status_code == 200, done.text
    assert done.json() == {"matched": ["fb-1"], "unknown": ["nope"]}
    expected = float(np.mean(pipeline.predict(rows[FEATURES]) == rows[TARGET].to_numpy()))
    accuracy = metric_value(server, "conveyor_online_metric", version=version, metric="accuracy")
    assert accuracy == pytest.approx(expected)
    assert metric_value(server, "conveyor_online_labelled_rows", version=version) == 300
    again = httpx.post(f"{server}/feedback", json=body, timeout=30).json()
    assert again == {"matched": [], "unknown": ["fb-1", "nope"]}  # labels count once
    invalid = httpx.post(f"{server}/feedback", json={"feedback": []}, timeout=30)
    assert invalid.status_code == 422 and "feedback" in invalid.text
