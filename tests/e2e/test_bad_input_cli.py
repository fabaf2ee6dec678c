"""Bad input through the CLI: one clear line, the right exit code, nothing registered."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.e2e


def project(tmp_path: Path, csv: str, extra: str = "") -> str:
    (tmp_path / "data.csv").write_text(csv)
    config = tmp_path / "conveyor.yaml"
    config.write_text(f"name: bad\ndata:\n  source: data.csv\n  target: y\n{extra}")
    return str(config)


GOOD_ROWS = "".join(f"{i % 7},{'a' if i % 3 else 'b'},{i % 2}\n" for i in range(120))


@pytest.mark.parametrize(
    ("csv", "extra", "code", "message"),
    [
        ("x,z\n1,2\n", "", 1, "target column 'y' not found"),
        (
            "x,c,y\n" + "".join(f"{i % 5},{'ab'[i % 2]},1\n" for i in range(100)),
            "",
            1,
            "single value",
        ),
        ("x,c,e,y\n" + "".join(f"{i % 5},a,,{i % 2}\n" for i in range(100)), "", 1, "'e'"),
        ("x,c,y\n" + GOOD_ROWS, "splitt: {}\n", 2, "splitt: unknown key"),
        ("x,c,y\n" + GOOD_ROWS, "training: {metric: rmse}\n", 2, "rmse"),
        ("x,c,y\n" + GOOD_ROWS, "training: {models: [{type: nosuchmodel}]}\n", 1, "nosuchmodel"),
    ],
    ids=[
        "target-absent",
        "one-class",
        "all-null-column",
        "config-typo",
        "wrong-metric",
        "bad-model",
    ],
)
def test_bad_input_gets_one_clear_line(
    cli: Cli, tmp_path: Path, csv: str, extra: str, code: int, message: str
) -> None:
    config = project(tmp_path, csv, extra)
    done = cli("run", "-c", config)
    assert done.returncode == code, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert (
        not (tmp_path / ".conveyor" / "mlflow.db").exists()
        or "bad" not in cli("models", "list", "-c", config).stdout
    )


def test_missing_source_file(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "conveyor.yaml"
    config.write_text("name: bad\ndata: {source: nowhere.csv, target: y}\n")
    done = cli("run", "-c", str(config))
    assert done.returncode == 1
    assert "not found" in done.stderr and "nowhere.csv" in done.stderr
    runs = list((tmp_path / ".conveyor" / "runs").glob("*/record.json"))
    assert [json.loads(r.read_text())["status"] for r in runs] == ["failed"]


def test_unreadable_file(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "data.parquet").write_bytes(b"PAR1 this is not parquet")
    config = tmp_path / "conveyor.yaml"
    config.write_text("name: bad\ndata: {source: data.parquet, target: y}\n")
    done = cli("run", "-c", str(config))
    assert done.returncode == 1
    assert "data.parquet" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_config_and_step_without_run_id(cli: Cli, tmp_path: Path) -> None:
    missing = cli("run", "-c", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert "config file not found" in missing.stderr
    config = project(tmp_path, "x,c,y\n" + GOOD_ROWS)
    no_id = cli("run", "-c", config, "--step", "train")
    assert no_id.returncode == 2
    assert "--run-id" in no_id.stderr


def test_config_schema_and_show(cli: Cli, tmp_path: Path) -> None:
    schema = cli("config", "schema")
    assert schema.returncode == 0
    assert (
        "max_unseen_category_fraction"
        in json.loads(schema.stdout)["$defs"]["ValidationConfig"]["properties"]
    )
    config = project(tmp_path, "x,c,y\n" + GOOD_ROWS)
    shown = cli("config", "show", "-c", config)
    assert shown.returncode == 0, shown.stderr
    assert "task: binary" in shown.stdout
    assert "metric: roc_auc" in shown.stdout
    assert "strategy: stratified" in shown.stdout
    assert "type: lightgbm" in shown.stdout
