"""Command-line options several commands share (typer only: ``--help`` stays instant)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["DEFAULT_CONFIG", "ConfigOpt", "OptionalConfigOpt", "RuntimeOpt", "StoreOpt"]

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="Pipeline config (YAML).", show_default=True)
]
"""``-c``: the project's pipeline config."""
DEFAULT_CONFIG = Path("conveyor.yaml")

OptionalConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="Pipeline config (YAML), if any.")
]
"""``-c``: a project config that may be absent (the model and store can be named instead)."""

StoreOpt = Annotated[
    str | None, typer.Option(help="MLflow tracking URI (default: the project's store).")
]
"""``--tracking-uri`` for commands that read a registered model."""

RuntimeOpt = Annotated[
    str,
    typer.Option(
        help="auto: ONNX Runtime when the version has a parity-verified ONNX model, else "
        "the pipeline; onnx: require it; pyfunc: always the pipeline."
    ),
]
"""``--runtime`` of the commands that score with a registered model."""
