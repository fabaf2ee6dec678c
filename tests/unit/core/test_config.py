"""Pipeline config: validation messages, defaults, schema, path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from conveyor.config import ConveyorConfig, config_hash, load_config
from conveyor.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conveyor.yaml"
    path.write_text(text)
    return path


def test_smallest_config_gets_every_default(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "name: adult\ndata: {source: a.csv, target: class}\n"))
    assert cfg.data.source == str(tmp_path / "a.csv")
    assert cfg.training.task == "auto"
    assert cfg.split.test_size == 0.2
    assert cfg.validation.max_unseen_category_fraction == 0.05
    assert cfg.promotion.auto_promote is True


def test_typo_names_the_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\ndata: {source: a.csv, target: y, tagret: z}\n")
    with pytest.raises(ConfigError, match=r"data\.tagret: unknown key"):
        load_config(path)


def test_bad_value_names_path_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\ndata: {source: a.csv, target: y}\nsplit: {test_size: 1.5}\n")
    with pytest.raises(ConfigError, match=r"split\.test_size: .*\(got 1\.5\)"):
        load_config(path)


def test_missing_required_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.target: Field required"):
        load_config(write(tmp_path, "name: a\ndata: {source: a.csv}\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
        ("name: 'bad name!'\ndata: {source: a, target: b}\n", "name: String should match"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_url_sources_are_left_alone(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "name: a\ndata: {source: 's3://b/k.csv', target: y}\n"))
    assert cfg.data.source == "s3://b/k.csv"


def test_table_and_query_are_exclusive() -> None:
    with pytest.raises(ValueError, match=r"either data\.table or data\.query"):
        ConveyorConfig.model_validate(
            {
                "name": "a",
                "data": {"source": "postgresql://x/y", "target": "t", "table": "a", "query": "b"},
            }
        )


def test_schema_lists_sections() -> None:
    schema = ConveyorConfig.model_json_schema()
    assert {"data", "validation", "versioning", "split", "training", "promotion"} <= set(
        schema["properties"]
    )


def test_config_hash_changes_with_content() -> None:
    base = {"name": "a", "data": {"source": "a.csv", "target": "y"}}
    other = {"name": "a", "data": {"source": "a.csv", "target": "z"}}
    a, b = ConveyorConfig.model_validate(base), ConveyorConfig.model_validate(other)
    assert config_hash(a) == config_hash(ConveyorConfig.model_validate(base))
    assert config_hash(a) != config_hash(b)


def test_example_config_is_valid() -> None:
    root = Path(__file__).resolve().parents[3]
    config = load_config(root / "conveyor.example.yaml")
    assert next(m.type for m in config.training.models) == "lightgbm"


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _keys(annotation, f"{prefix}{name}.")
    return keys


def test_every_config_key_is_documented() -> None:
    root = Path(__file__).resolve().parents[3]
    docs = (root / "docs" / "configuration.md").read_text()
    missing = [k for k in _keys(ConveyorConfig) if f"`{k}`" not in docs]
    assert not missing, f"docs/configuration.md does not document: {missing}"


def test_a_yaml_error_names_the_place_but_quotes_nothing_of_the_file(tmp_path: Path) -> None:
    secret = "root:x:0:0:S3cretLine:/root:/bin/bash"
    path = write(tmp_path, f"{secret}\n: [\n")
    with pytest.raises(ConfigError, match=r"not valid YAML: .* at line \d+, column \d+") as caught:
        load_config(path)
    assert "S3cretLine" not in str(caught.value)
