"""The model under test: the demo project built once, with two registered versions.

``conveyor demo`` + ``conveyor run``, then new rows from another seed + ``conveyor run``
again (as the e2e tests do), so the registry holds two versions to swap between. Every
server is fed the same rows, taken from the first run's held-out split, without missing
values (the JSON forms of the peers disagree on how to send them).

The peers are handed the champion's fitted pipeline as ``conveyor serve`` runs it: every
step's ``n_jobs`` set to 1 (:func:`served_pipeline`), saved as an MLflow model folder with
the registered version's signature for ``mlflow models serve`` and with joblib for MLServer.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.serving.targets import BIN

__all__ = [
    "DemoModel",
    "PeerModels",
    "build_demo",
    "mlflow_body",
    "peer_models",
    "served_pipeline",
    "v2_pandas_body",
]

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

    @property
    def uri(self) -> str:
        """The champion version's model URI."""
        return f"models:/{self.name}/{self.champion}"

    def registry(self) -> Any:
        """A ``ModelRegistry`` on the project's store."""
        from conveyor.registry.store import ModelRegistry

        return ModelRegistry(self.tracking_uri)


@dataclass(frozen=True)
class PeerModels:
    """The champion's pipeline as the peers load it.

    Attributes:
        mlflow_folder: an MLflow model folder (sklearn flavor, the registered version's
            signature and code).
        joblib_file: the pipeline saved with joblib (MLServer's mlserver-sklearn).
        code_folder: the registered version's code folder (``conveyor_cleaning``, the
            pipeline's first step), for MLServer's ``PYTHONPATH``.
        n_jobs: each pipeline step's ``n_jobs`` as registered (all set to 1 in the copies).
    """

    mlflow_folder: Path
    joblib_file: Path
    code_folder: Path
    n_jobs: dict[str, Any]


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


def served_pipeline(model: DemoModel) -> tuple[Any, dict[str, Any]]:
    """The champion's fitted pipeline with every step's ``n_jobs`` at 1, as ``conveyor
    serve`` runs it (same predictions; one estimator thread per process).

    Returns:
        The pipeline, and each step's ``n_jobs`` as it was registered.
    """
    pipeline = model.registry().load_pipeline(model.uri)
    steps = getattr(pipeline, "steps", None) or [("model", pipeline)]
    registered: dict[str, Any] = {}
    for name, step in steps:
        if "n_jobs" in (step.get_params(deep=False) if hasattr(step, "get_params") else {}):
            registered[str(name)] = step.get_params(deep=False)["n_jobs"]
            step.set_params(n_jobs=1)
    return pipeline, registered


def peer_models(model: DemoModel, folder: Path) -> PeerModels:
    """Save :func:`served_pipeline` for ``mlflow models serve`` and for MLServer in
    ``folder`` (made once per benchmark run, before any measurement).

    The registered version's files give the signature and the code folder
    (``conveyor_cleaning``, the pipeline's first step) that the copies keep.
    """
    import joblib
    import mlflow.sklearn
    from mlflow.models import Model

    from conveyor.registry.model_loading import download_artifacts

    registered = download_artifacts(model.tracking_uri, model.uri, folder / "registered")
    code_folder = registered / "code"
    code = sorted(str(p) for p in code_folder.iterdir()) if code_folder.is_dir() else None
    pipeline, n_jobs = served_pipeline(model)
    mlflow_folder = folder / "mlflow-model"
    mlflow.sklearn.save_model(
        pipeline,
        str(mlflow_folder),
        serialization_format="cloudpickle",
        signature=Model.load(str(registered)).signature,
        code_paths=code,
        pip_requirements=[],  # --env-manager local: nothing is installed from them
    )
    joblib_file = folder / "mlserver-model" / "model.joblib"
    joblib_file.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, joblib_file)
    return PeerModels(mlflow_folder, joblib_file, code_folder, n_jobs)


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
