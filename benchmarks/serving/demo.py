"""The model under test: the demo project built once, with two registered versions.

``conveyor demo`` + ``conveyor run``, then new rows from another seed + ``conveyor run``
again (as the e2e tests do), so the registry holds two versions to swap between. Every
server is fed the same rows, taken from the first run's held-out split, without missing
values (the JSON forms of the peers disagree on how to send them).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.serving.targets import BIN

__all__ = ["DemoModel", "build_demo", "mlflow_body", "v2_pandas_body"]

DEMO_ROWS = 6000
SECOND_SEED = 7


@dataclass(frozen=True)
class DemoModel:
    """The served model and the rows requests carry.

    Attributes:
        config: the project's ``conveyor.yaml``.
        tracking_uri: its embedded MLflow store.
        name: registered model name.
        champion: the version ``champion`` points at.
        versions: every registered version.
        rows: held-out feature rows (DataFrame), no missing values, at least 1,000.
    """

    config: Path
    tracking_uri: str
    name: str
    champion: str
    versions: tuple[str, ...]
    rows: Any

    def registry(self) -> Any:
        """A ``ModelRegistry`` on the project's store."""
        from conveyor.registry.store import ModelRegistry

        return ModelRegistry(self.tracking_uri)


def _cli(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [str(BIN / "conveyor"), *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"conveyor {' '.join(args)} failed: {done.stdout[-800:]}{done.stderr}")
    return done.stdout


def build_demo(directory: Path) -> DemoModel:
    """Build the demo project in ``directory`` (reused when it already has two versions).

    Returns:
        The champion version, the store and the request rows.
    """
    config = directory / "conveyor.yaml"
    if not (directory / ".conveyor" / "mlflow.db").exists():
        print(f"building the demo project in {directory} (two `conveyor run`s, ~1 min)")
        _cli("demo", "--dir", str(directory), "--rows", str(DEMO_ROWS), cwd=directory.parent)
        _cli("run", "-c", str(config), cwd=directory)
        _cli(
            "demo",
            "--dir",
            str(directory),
            "--rows",
            str(DEMO_ROWS),
            "--seed",
            str(SECOND_SEED),
            cwd=directory.parent,
        )
        _cli("run", "-c", str(config), cwd=directory)
    return _load(directory, config)


def _load(directory: Path, config: Path) -> DemoModel:
    import pandas as pd

    from conveyor.registry.store import ModelRegistry

    tracking_uri = f"sqlite:///{directory / '.conveyor' / 'mlflow.db'}"
    registry = ModelRegistry(tracking_uri)
    name = registry.list_models()[0]["name"]
    champion = registry.get_alias(name, "champion")
    if champion is None:
        raise RuntimeError(f"model {name!r} has no champion in {tracking_uri}")
    versions = tuple(v.version for v in registry.list_versions(name))
    pipeline = registry.load_pipeline(champion.uri)
    columns = [str(c) for c in pipeline.feature_names_in_]
    tests = sorted((directory / ".conveyor" / "runs").glob("*/split/test.parquet"))
    rows = pd.read_parquet(tests[0])[columns].dropna().reset_index(drop=True)
    while len(rows) < 1000:
        rows = pd.concat([rows, rows], ignore_index=True)
    return DemoModel(config, tracking_uri, name, champion.version, versions, rows)


def _plain(frame: Any) -> list[list[Any]]:
    """Rows as JSON-ready lists (numpy scalars to Python)."""
    return json.loads(frame.to_json(orient="values"))  # type: ignore[no-any-return]


def mlflow_body(rows: Any) -> str:
    """MLflow scoring protocol body (``dataframe_split``), also accepted by Conveyor."""
    split = {"columns": [str(c) for c in rows.columns], "data": _plain(rows)}
    return json.dumps({"dataframe_split": split})


def v2_pandas_body(rows: Any) -> str:
    """Open Inference Protocol v2 body with MLServer's pandas codec (``content_type: pd``)."""
    import pandas as pd

    inputs = []
    for column in rows.columns:
        values = rows[column]
        entry: dict[str, Any] = {"name": str(column), "shape": [len(values)]}
        if pd.api.types.is_numeric_dtype(values):
            entry |= {"datatype": "FP64", "data": [float(v) for v in values]}
        else:
            entry |= {"datatype": "BYTES", "data": [str(v) for v in values]}
            entry["parameters"] = {"content_type": "str"}
        inputs.append(entry)
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs})
