"""Drift end to end with the project's alert rules: a real server watching a profiled model,
a real Prometheus scraping it; drifted traffic makes the FeatureDrift alert pending for
exactly the drifted feature, and clean traffic raises nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pandas as pd
import pytest
from tests.integration.monitoring.prometheus_stack import Prometheus, prometheus
from tests.integration.serving.conftest import (
    FEATURES,
    launch,
    make_table,
    register_conveyor_model,
)

from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

DRIFT_MODEL = "drift-alert-test"
PENDING = 'ALERTS{alertname="ConveyorFeatureDrift", alertstate="pending"}'


@dataclass(frozen=True)
class Watched:
    server: str
    prometheus: Prometheus


def register_profiled(registry: ModelRegistry) -> None:
    table = make_table(n=3000, seed=71)
    register_conveyor_model(
        registry, table, name=DRIFT_MODEL, key="d-1", profile=True, n_estimators=10
    )


def send(url: str, frame: pd.DataFrame) -> None:
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for start in range(0, len(frame), 500):
            part = frame.iloc[start : start + 500]
            payload = {"dataframe_split": {"columns": FEATURES, "data": part.values.tolist()}}
            assert client.post("/invocations", json=payload).status_code == 200


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    folder = tmp_path_factory.mktemp("prometheus-drift")
    registry = ModelRegistry(f"sqlite:///{folder / 'mlflow.db'}")
    register_profiled(registry)
    options = ("--poll-interval", "0", "--drain-seconds", "0", "--drift-interval", "0.5")
    uri = f"models:/{DRIFT_MODEL}@champion"
    with launch(registry.tracking_uri, uri, folder, *options) as (_, server, _):
        target = server.removeprefix("http://")
        with prometheus(folder / "prometheus", {"conveyor-serve": [target]}) as prom:
            prom.wait_for('up{job="conveyor-serve"} == 1')
            yield Watched(server, prom)


def test_clean_traffic_raises_no_drift_alert(watched: Watched) -> None:
    send(watched.server, make_table(n=1000, seed=72)[FEATURES])
    watched.prometheus.wait_for("conveyor_drift_window_rows >= 1000")
    watched.prometheus.wait_for("conveyor_feature_drifted")  # evaluated and scraped
    assert watched.prometheus.series("conveyor_feature_drifted == 1") == []
    # The alert rules saw those samples: their group was evaluated after this moment.
    seen = datetime.now(UTC)
    watched.prometheus.wait_for_evaluation("conveyor-drift", after=seen)
    assert watched.prometheus.series(PENDING) == []


def test_drifted_traffic_makes_the_drift_alert_pending_for_that_feature_only(
    watched: Watched,
) -> None:
    drifted = make_table(n=5000, seed=73)[FEATURES]
    drifted["age"] = drifted["age"] + 25.0
    send(watched.server, drifted)
    pending = watched.prometheus.wait_for(PENDING)
    assert {s["metric"]["feature"] for s in pending} == {"age"}
    assert pending[0]["metric"]["retrain"] == "true"
    assert pending[0]["metric"]["model"] == DRIFT_MODEL
    psi = watched.prometheus.series('conveyor_feature_drift{feature="age",statistic="psi"}')
    assert float(psi[0]["value"][1]) > 0.25
