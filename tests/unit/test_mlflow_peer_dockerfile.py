"""The image benchmark's peer: MLflow's generated Dockerfile moved onto the shared base."""

from __future__ import annotations

import pytest
from benchmarks.mlflow_peer import PRELUDE, dockerfile_on

GENERATED = """# Build an image that can serve mlflow models.
FROM python:3.11.7-slim

RUN apt-get -y update && apt-get install -y --no-install-recommends nginx
FROM_NOT_A_STAGE=1
RUN pip install mlflow==3.17.2
"""


def test_the_first_from_names_the_shared_base_followed_by_the_prelude() -> None:
    patched = dockerfile_on("localhost/base:1", GENERATED)
    assert f"FROM localhost/base:1\n{PRELUDE}\nRUN apt-get" in patched


def test_everything_after_the_from_line_is_mlflows() -> None:
    patched = dockerfile_on("localhost/base:1", GENERATED)
    assert patched.split(PRELUDE, 1)[1] == GENERATED.split("slim\n", 1)[1]


def test_a_template_without_from_is_refused() -> None:
    with pytest.raises(ValueError, match="no FROM line"):
        dockerfile_on("localhost/base:1", "RUN true\n")
