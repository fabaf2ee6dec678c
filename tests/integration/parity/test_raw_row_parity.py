"""One raw row, one answer: every scoring path agrees on messy raw tables.

Each table is trained by the real ``conveyor run`` (embedded MLflow store, DVC, GX) and
its raw rows, as a user's ``pandas.read_csv`` reads them and as a client sends them in
JSON, are scored by: the pipeline loaded from the registry, MLflow's own pyfunc loader,
the server's pipeline runtime and its ONNX Runtime fast path (the server's code, in
process). Labels must be equal row for row, probabilities within the ONNX tolerance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.messy_tables import FEATURES, messy_table, scoring_rows, write_project

from conveyor.registry.store import ModelRegistry
from conveyor.serving.inputs import RequestError, coerce_columns
from conveyor.serving.slot import ModelSlot, load_version

pytestmark = pytest.mark.integration

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
TOLERANCE = 1e-4  # serving.onnx.tolerance's default


@dataclass(frozen=True)
class Trained:
    """A project trained by ``conveyor run`` on a messy table."""

    name: str
    registry: ModelRegistry
    tracking_uri: str
    table: pd.DataFrame
    rows: pd.DataFrame

    def slot(self, runtime: str) -> ModelSlot:
        info = self.registry.get_alias(self.name, "champion")
        assert info is not None
        return load_version(self.registry, info, runtime=runtime)  # type: ignore[arg-type]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    return {**env, "COLUMNS": "200"}


def train(folder: Path, table: pd.DataFrame, name: str) -> Trained:
    config = write_project(folder, table, name=name)
    done = subprocess.run(
        [CONVEYOR, "run", "-c", str(config)],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    uri = f"sqlite:///{folder / '.conveyor' / 'mlflow.db'}"
    return Trained(name, ModelRegistry(uri), uri, table, scoring_rows(table))


@pytest.fixture(scope="module", params=[False, True], ids=["integer-columns", "null-rows"])
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    with_null_rows = bool(request.param)
    table = messy_table(1200, seed=11 if with_null_rows else 10, with_null_rows=with_null_rows)
    folder = tmp_path_factory.mktemp("parity")
    return train(folder, table, name=f"parity-{'nulls' if with_null_rows else 'ints'}")


def as_client_sends(rows: pd.DataFrame) -> dict[str, list[Any]]:
    """The rows as JSON columns: integers as ints, text as text, missing as null."""
    records = json.loads(rows.to_json(orient="records"))
    return {name: [r[name] for r in records] for name in rows.columns}


def served(slot: ModelSlot, rows: pd.DataFrame) -> tuple[list[Any], np.ndarray]:
    batch = coerce_columns(slot.schema, as_client_sends(rows), max_rows=10_000)
    answer = slot.predict_batch(batch, probabilities=True)
    assert answer.probabilities is not None
    return answer.predictions, np.asarray(answer.probabilities)


def offline(trained: Trained, rows: pd.DataFrame) -> tuple[list[Any], np.ndarray]:
    info = trained.registry.get_alias(trained.name, "champion")
    assert info is not None
    pipeline = trained.registry.load_pipeline(info.uri)
    return pipeline.predict(rows).tolist(), pipeline.predict_proba(rows)


def test_the_table_keeps_its_mess(trained: Trained) -> None:
    raw = trained.rows
    assert (raw["hours per week"] == "?").any() or raw["hours per week"].isna().any()
    assert raw["work class"].str.startswith(" ").any()
    assert (raw["capital.gain"].str.contains(",")).any()
    nulls = trained.name.endswith("nulls")
    assert (raw["age"].dtype.kind == "f") == nulls  # integers unless some rows are null


def test_served_pipeline_runtime_equals_the_registered_pipeline(trained: Trained) -> None:
    labels, proba = served(trained.slot("pyfunc"), trained.rows)
    want_labels, want_proba = offline(trained, trained.rows)
    assert labels == want_labels
    np.testing.assert_allclose(proba, want_proba, atol=1e-12)


def test_served_onnx_runtime_equals_the_registered_pipeline(trained: Trained) -> None:
    slot = trained.slot("onnx")
    assert slot.runtime == "onnx"
    labels, proba = served(slot, trained.rows)
    want_labels, want_proba = offline(trained, trained.rows)
    np.testing.assert_allclose(proba, want_proba, atol=TOLERANCE)
    gap = np.abs(want_proba[:, 0] - want_proba[:, 1])
    differ = [i for i, (a, b) in enumerate(zip(labels, want_labels, strict=True)) if a != b]
    assert all(gap[i] < TOLERANCE for i in differ)


def test_mlflow_pyfunc_on_the_raw_frame_equals_the_registered_pipeline(trained: Trained) -> None:
    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(trained.tracking_uri)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{trained.name}@champion")
        got = list(model.predict(trained.rows[FEATURES]))
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    assert got == offline(trained, trained.rows)[0]


def test_the_signature_declares_the_raw_tables_own_types(trained: Trained) -> None:
    import mlflow

    mlflow.set_tracking_uri(trained.tracking_uri)
    try:
        info = mlflow.models.get_model_info(f"models:/{trained.name}@champion")
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    declared = {c.name: str(c.type) for c in info.signature.inputs.inputs}
    integer = "double" if trained.rows["age"].dtype.kind == "f" else "long"
    assert declared["age"].endswith(integer)
    assert declared["hours per week"].endswith("string")  # "?" makes it text in the raw table


def test_a_marker_and_a_null_get_the_same_answer(trained: Trained) -> None:
    slot = trained.slot("onnx")
    rows = trained.rows.head(20).copy()
    marked, nulled = rows.copy(), rows.copy()
    marked["work class"], nulled["work class"] = "?", None
    marked["hours per week"], nulled["hours per week"] = " ? ", None
    assert served(slot, marked)[0] == served(slot, nulled)[0]
    np.testing.assert_array_equal(served(slot, marked)[1], served(slot, nulled)[1])


def test_dropped_columns_are_accepted_and_unknown_ones_named(trained: Trained) -> None:
    slot = trained.slot("onnx")
    with_id = trained.rows.head(5)  # carries "row id" (dropped as ID-like) and the target
    assert "row id" in with_id.columns
    served(slot, with_id)
    typo = with_id.rename(columns={"region": "regoin"})
    with pytest.raises(RequestError, match="'regoin'"):
        served(slot, typo)


def test_text_that_is_no_number_is_refused_with_the_column_and_row(trained: Trained) -> None:
    slot = trained.slot("pyfunc")
    rows = trained.rows.head(3).copy()
    rows["capital.gain"] = rows["capital.gain"].astype(object)
    rows.loc[2, "capital.gain"] = "lots"
    with pytest.raises(RequestError, match=r"'capital\.gain' row 2: expected a number"):
        served(slot, rows)


def test_traffic_drawn_from_the_training_table_shows_no_drift(trained: Trained) -> None:
    from conveyor.monitoring.drift import analyze
    from conveyor.monitoring.window import DriftWindow

    slot = trained.slot("onnx")
    assert slot.profile is not None
    window = DriftWindow(slot.profile, size=1000)
    sample = trained.table.sample(n=1000, random_state=3)
    for start in range(0, len(sample), 50):
        batch = coerce_columns(
            slot.schema, as_client_sends(sample.iloc[start : start + 50]), max_rows=50
        )
        window.add_columns(batch.columns)
    report = analyze(slot.profile, window.snapshot().columns)
    assert report.drifted_features == []


def predict_cli(trained: Trained, source: Path, output: Path, *options: str) -> Any:
    argv = [CONVEYOR, "predict", "--model", f"{trained.name}@champion", "-i", str(source)]
    argv += ["-o", str(output), "--tracking-uri", trained.tracking_uri, *options]
    done = subprocess.run(
        argv,
        cwd=source.parent,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_batch_scoring_equals_the_registered_pipeline(
    trained: Trained, tmp_path: Path, suffix: str
) -> None:
    source = tmp_path / f"rows{suffix}"
    rows = trained.rows
    if suffix == ".csv":
        rows.to_csv(source, index=False)
    else:
        rows.to_parquet(source)
    output = tmp_path / "answers.parquet"
    predict_cli(trained, source, output, "--probabilities", "--chunk-rows", "7")
    answers = pd.read_parquet(output)
    labels, proba = offline(trained, rows)
    assert answers["prediction"].tolist() == labels
    columns = [c for c in answers.columns if c.startswith("probability_")]
    np.testing.assert_allclose(answers[columns].to_numpy(), proba, atol=TOLERANCE)


def test_batch_scoring_counts_bad_rows_and_scores_the_rest(
    trained: Trained, tmp_path: Path
) -> None:
    rows = trained.rows.copy()
    rows["capital.gain"] = rows["capital.gain"].astype(object)
    rows.loc[[3, 50], "capital.gain"] = "lots"
    source = tmp_path / "rows.csv"
    rows.to_csv(source, index=False)
    output, rejects = tmp_path / "answers.csv", tmp_path / "rejects.csv"
    options = ("--id-column", "row id", "--rejects", str(rejects), "--chunk-rows", "40")
    predict_cli(trained, source, output, *options)
    bad = pd.read_csv(rejects)
    assert bad["row"].tolist() == [3, 50]
    assert len(pd.read_csv(output)) == len(rows) - 2


def test_a_real_server_sees_no_drift_in_raw_traffic_from_the_training_table(
    trained: Trained, tmp_path: Path
) -> None:
    import httpx
    from tests.integration.serving.conftest import launch

    sample = trained.table.sample(n=1000, random_state=4)
    options = ("--poll-interval", "0", "--drain-seconds", "0", "--drift-interval", "0.5")
    uri = f"models:/{trained.name}@champion"
    with launch(trained.tracking_uri, uri, tmp_path, *options) as (_, url, _):
        for start in range(0, len(sample), 100):
            records = json.loads(sample.iloc[start : start + 100].to_json(orient="records"))
            answer = httpx.post(
                f"{url}/invocations", json={"dataframe_records": records}, timeout=30
            )
            assert answer.status_code == 200, answer.text[:300]
        deadline = time.monotonic() + 60  # a margin for a loaded machine
        drift: dict[str, Any] = {}
        while time.monotonic() < deadline and drift.get("rows", 0) < len(sample):
            time.sleep(0.5)
            (version,) = httpx.get(f"{url}/monitoring", timeout=10).json()["versions"]
            drift = version.get("drift") or {}
    assert drift.get("rows") == len(sample), drift
    assert drift["drifted_features"] == []


def test_offline_drift_report_sees_no_drift_in_a_raw_sample_of_the_training_table(
    trained: Trained, tmp_path: Path
) -> None:
    batch = tmp_path / "batch.csv"
    trained.table.sample(n=800, random_state=5).to_csv(batch, index=False)
    argv = [CONVEYOR, "monitor", "drift", "--model", f"{trained.name}@champion"]
    argv += ["--data", str(batch), "--out", str(tmp_path / "drift")]
    argv += ["--tracking-uri", trained.tracking_uri, "-c", str(tmp_path / "none.yaml")]
    done = subprocess.run(
        argv, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "drift" / "drift.json").read_text())
    assert report["drifted_features"] == []
