"""Run store: records, outputs, and a cache that trusts only complete outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conveyor.errors import PipelineError
from conveyor.pipeline.store import RunStore, new_run_id


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs", tmp_path / "cache")


def test_record_round_trip_and_unknown_run(store: RunStore) -> None:
    store.write_record("r1", {"run_id": "r1", "status": "running"})
    assert store.read_record("r1")["status"] == "running"
    with pytest.raises(PipelineError, match=r"unknown run id .r2.*r1"):
        store.read_record("r2")


def test_frames_and_json_round_trip(store: RunStore) -> None:
    folder = store.step_dir("r1", "ingest")
    frame = pd.DataFrame({"a": [1.0, None], "b": ["x", None]})
    store.save_frame(folder, "data", frame)
    pd.testing.assert_frame_equal(store.load_frame(folder, "data"), frame)
    store.save_json(folder, "report", {"ok": True})
    assert store.load_json(folder, "report") == {"ok": True}
    with pytest.raises(PipelineError, match="missing step output"):
        store.load_frame(folder, "absent")


def test_cache_ignores_incomplete_outputs(store: RunStore) -> None:
    folder = store.step_dir("r1", "train")
    assert store.cache_lookup("train", "k1") is None
    store.cache_store("train", ["k1", "k2"], folder, "r1")
    assert store.cache_lookup("train", "k1") == folder
    assert store.cache_lookup("train", "k2") == folder
    (folder / ".complete").unlink()
    assert store.cache_lookup("train", "k1") is None


def test_run_ids_sort_newest_first(store: RunStore) -> None:
    for run_id in ("20260101T000000-aaaaaa", "20260102T000000-bbbbbb"):
        store.write_record(run_id, {})
    assert store.run_ids()[0].startswith("20260102")
    assert len(new_run_id()) == len("20260101T000000-aaaaaa")


@pytest.mark.parametrize(
    "content",
    [
        "",
        '{"run_id": "r1", "outp',
        "not json at all",
        "[1, 2]",
        '{"run_id": "r1"}',
        '{"run_id": "r1", "outputs": null}',
    ],
    ids=["empty", "truncated", "not-json", "not-an-object", "no-outputs", "null-outputs"],
)
def test_an_unreadable_cache_entry_is_a_miss(store: RunStore, content: str) -> None:
    folder = store.step_dir("r1", "train")
    store.cache_store("train", ["k1"], folder, "r1")
    (store.cache_dir / "train-k1.json").write_text(content, encoding="utf-8")
    assert store.cache_lookup("train", "k1") is None


@pytest.mark.parametrize("content", ["", '{"run_id": "r1", "sta', "[]"])
def test_an_unreadable_run_record_is_a_clear_error(store: RunStore, content: str) -> None:
    store.write_record("r1", {"run_id": "r1"})
    path = store.run_dir("r1") / "record.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PipelineError, match=f"run record {path} is unreadable"):
        store.read_record("r1")


def test_bytes_round_trip(store: RunStore) -> None:
    folder = store.step_dir("r1", "export")
    store.save_bytes(folder, "model.onnx", b"\x08\x07graph")
    assert store.load_bytes(folder, "model.onnx") == b"\x08\x07graph"


def test_missing_bytes_name_the_step_output(store: RunStore) -> None:
    with pytest.raises(PipelineError, match=r"missing step output .*model.onnx"):
        store.load_bytes(store.step_dir("r1", "export"), "model.onnx")


def test_an_unreadable_step_output_is_a_clear_error(store: RunStore) -> None:
    folder = store.step_dir("r1", "evaluate")
    (folder / "evaluation.json").write_text('{"metrics": {', encoding="utf-8")
    with pytest.raises(PipelineError, match=r"step output .*evaluation.json is unreadable"):
        store.load_json(folder, "evaluation")


def test_a_record_write_leaves_no_temporary_files(store: RunStore) -> None:
    store.write_record("r1", {"status": "running"})
    store.write_record("r1", {"status": "succeeded"})
    assert [p.name for p in store.run_dir("r1").iterdir()] == ["record.json"]
