"""The export step's ONNX graph and reference profile are what registration stores.

One real run of the whole pipeline on a small, messy demo table (LightGBM, ONNX export
on): the export runs in the worker, registration reads its outputs from the run store
and logs them to a real MLflow store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conveyor.config import ConveyorConfig
from conveyor.data.synthetic import write_demo_dataset
from conveyor.pipeline.project import Project
from conveyor.pipeline.runner import PipelineRunner
from conveyor.registry.profiles import load_reference_profile
from conveyor.registry.store import ModelRegistry, ModelVersionInfo
from conveyor.settings import Settings

pytestmark = pytest.mark.integration


def exported_project(root: Path, **onnx: Any) -> Project:
    """A demo project training a small LightGBM model, with these ``serving.onnx`` settings."""
    data = write_demo_dataset(root / "data.csv", n_rows=1500, seed=4, messy=True)
    config = ConveyorConfig.model_validate(
        {
            "name": "exported",
            "data": {"source": str(data), "target": "churned"},
            "training": {
                "models": [{"type": "lightgbm", "params": {"n_estimators": 20, "n_jobs": 1}}]
            },
            "serving": {"onnx": onnx},
        }
    )
    return Project.open(config, config_dir=root, settings=Settings())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], ModelRegistry]:
    """A whole run's record and the registry it registered in."""
    project = exported_project(tmp_path_factory.mktemp("export"))
    record = PipelineRunner(project).run()
    assert record["status"] == "succeeded", record.get("error")
    return record, ModelRegistry(project.tracking_uri)


def registered(run: tuple[dict[str, Any], ModelRegistry]) -> ModelVersionInfo:
    record, registry = run
    return registry.get_version("exported", record["steps"]["register"]["summary"]["version"])


def export_output(run: tuple[dict[str, Any], ModelRegistry]) -> Path:
    return Path(run[0]["steps"]["export"]["outputs"])


def test_the_registered_version_carries_the_exports_onnx_status(
    run: tuple[dict[str, Any], ModelRegistry],
) -> None:
    status = run[0]["steps"]["export"]["summary"]["onnx"]["status"]
    assert (status, registered(run).tags["conveyor.onnx"]) == ("verified", "verified")


def test_the_registered_onnx_graph_is_the_exported_one(
    run: tuple[dict[str, Any], ModelRegistry],
) -> None:
    graph = (export_output(run) / "model.onnx").read_bytes()
    assert run[1].load_onnx(registered(run)) == graph


def test_the_registered_reference_profile_is_the_exported_one(
    run: tuple[dict[str, Any], ModelRegistry],
) -> None:
    profile = json.loads((export_output(run) / "profile.json").read_text(encoding="utf-8"))
    assert load_reference_profile(run[1], registered(run)) == profile


def test_new_onnx_settings_register_a_new_version(tmp_path: Path) -> None:
    PipelineRunner(exported_project(tmp_path, parity_rows=200)).run()
    record = PipelineRunner(exported_project(tmp_path, parity_rows=100)).run()
    statuses = {n: record["steps"][n]["status"] for n in ("train", "export", "register")}
    assert (statuses, record["steps"]["register"]["summary"]["version"]) == (
        {"train": "cached", "export": "succeeded", "register": "succeeded"},
        "2",
    )
