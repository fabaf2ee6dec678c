"""Labels of a baked model image, and the container engine it is built with."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.errors import ConfigError
from conveyor.pipeline.model_image import container_engine, image_labels

RECORD: dict[str, Any] = {
    "version": {
        "name": "churn",
        "version": "3",
        "run_id": "r-1",
        "aliases": ["champion", "previous"],
        "tags": {"conveyor.model_digest": "md", "conveyor.signature": "sig", "other": "x"},
    },
    "lineage": {"lineage": {"conveyor.data_md5": "d41d", "conveyor.long": "x" * 600}},
    "exported_from": "http://mlflow:5000",
    "exported_at": "2026-12-05T10:00:00+00:00",
}


def labels() -> dict[str, str]:
    return image_labels(RECORD, tag="registry.local/churn-model:3", base_image="serve:0.1.0")


def test_title_is_the_tag_repository_name() -> None:
    assert labels()["org.opencontainers.image.title"] == "churn-model"


def test_model_name_version_and_run_are_labels() -> None:
    found = labels()
    assert (found["io.conveyor.model.name"], found["io.conveyor.model.version"]) == ("churn", "3")
    assert found["io.conveyor.model.run-id"] == "r-1"


def test_signed_digest_and_signature_are_labels() -> None:
    found = labels()
    assert (found["io.conveyor.model.model_digest"], found["io.conveyor.model.signature"]) == (
        "md",
        "sig",
    )


def test_lineage_tags_become_labels() -> None:
    assert labels()["io.conveyor.model.lineage.data_md5"] == "d41d"


def test_overlong_lineage_values_are_left_out() -> None:
    assert "io.conveyor.model.lineage.long" not in labels()


def test_base_image_is_recorded() -> None:
    assert labels()["org.opencontainers.image.base.name"] == "serve:0.1.0"


def test_a_missing_engine_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="no-such-engine is not installed"):
        container_engine("no-such-engine")
