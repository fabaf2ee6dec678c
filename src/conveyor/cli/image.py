"""``conveyor image build``: bake one registered version into an immutable serving image.

Imports stay light at module level (typer only): ``conveyor --help`` must answer at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli.options import OptionalConfigOpt, StoreOpt

__all__ = ["image_app"]

image_app = typer.Typer(
    help="Container images of registered models (baked: no registry needed to serve).",
    no_args_is_help=True,
)


@image_app.command("build")
def build(
    model: Annotated[str, typer.Argument(help="NAME@ALIAS (e.g. churn@champion) or NAME/VERSION.")],
    *,
    tag: Annotated[str, typer.Option("--tag", "-t", help="Tag of the new image.")],
    config: OptionalConfigOpt = Path("conveyor.yaml"),
    tracking_uri: StoreOpt = None,
    base_image: Annotated[
        str | None,
        typer.Option(help="Serving image to build on (default: conveyor-serve:<version>)."),
    ] = None,
    engine: Annotated[
        str | None, typer.Option(help="podman or docker (default: the first installed).")
    ] = None,
) -> None:
    """Bake one model version into an image that serves it on port 8080, offline.

    The version's files, ONNX graph and reference profile are checked against its
    signature, copied in, and its lineage written into the image's labels. The image
    serves that version with no registry and never follows an alias: a new version
    means a new image.
    """
    from rich.console import Console

    from conveyor import __version__
    from conveyor.cli import _guarded
    from conveyor.cli.monitor import resolve_model_ref
    from conveyor.pipeline.model_image import build_model_image

    console = Console(highlight=False, stderr=True)
    registry, info = _guarded(resolve_model_ref, model, config, tracking_uri)
    built = _guarded(
        build_model_image,
        registry,
        info,
        tag=tag,
        base_image=base_image or f"localhost/conveyor-serve:{__version__}",
        engine=engine,
        on_stage=lambda text: console.print(f"[dim]{text}…[/]"),
    )
    print(f"{built.tag}: {built.name} version {built.version}")
