"""Registration is idempotent; aliases move exactly as documented; errors say what is wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from conveyor.errors import PromotionError, RegistryError
from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

FEATURES = ["age", "hours", "job"]


def register(registry: ModelRegistry, name: str, run_id: str, key: str) -> str:
    tags = {"conveyor.data_digest": "md5:0123456789abcdef", "conveyor.parent_champion": ""}
    return registry.register(name=name, run_id=run_id, key=key, tags=tags).version


def aliases(registry: ModelRegistry, name: str) -> dict[str, str | None]:
    (summary,) = [m for m in registry.list_models() if m["name"] == name]
    return {k: summary[k] for k in ("champion", "challenger", "previous")}


def test_registering_twice_with_the_same_key_makes_one_version(
    registry: ModelRegistry, lightgbm_run: str
) -> None:
    first = registry.register(name="idem", run_id=lightgbm_run, key="k-1", tags={"a": "1"})
    again = registry.register(name="idem", run_id=lightgbm_run, key="k-1", tags={"a": "1"})
    assert again == first
    assert [v.version for v in registry.list_versions("idem")] == ["1"]
    assert first.tags["conveyor.key"] == "k-1"
    assert first.tags["a"] == "1"
    assert first.tags["conveyor.serialization"] == "skops"
    assert first.run_id == lightgbm_run
    assert first.source.startswith("models:/m-")
    assert registry.find_version("idem", key="k-1") == first
    assert registry.find_version("idem", key="other") is None
    assert registry.find_version("no-such-model", key="k-1") is None


def test_registered_version_loads_by_number_and_alias(
    registry: ModelRegistry, lightgbm_run: str, lightgbm_pipeline: Pipeline, table: pd.DataFrame
) -> None:
    version = register(registry, "loadable", lightgbm_run, "k")
    registry.promote("loadable", version)
    expected = lightgbm_pipeline.predict_proba(table[FEATURES])
    for uri in (f"models:/loadable/{version}", "models:/loadable@champion"):
        np.testing.assert_array_equal(
            registry.load_pipeline(uri).predict_proba(table[FEATURES]), expected
        )


def test_promote_challenger_and_rollback_move_aliases_as_documented(
    registry: ModelRegistry, lightgbm_run: str
) -> None:
    name = "aliases"
    v1, v2, v3 = (register(registry, name, lightgbm_run, f"k{i}") for i in (1, 2, 3))

    registry.promote(name, v1)
    assert aliases(registry, name) == {"champion": v1, "challenger": None, "previous": None}

    info = registry.mark_challenger(name, v2, reason="roc_auc 0.80 < floor 0.85")
    assert info.aliases == ("challenger",)
    assert info.tags["conveyor.gate_reason"] == "roc_auc 0.80 < floor 0.85"
    assert aliases(registry, name) == {"champion": v1, "challenger": v2, "previous": None}

    promoted = registry.promote(name, v2)
    assert promoted.aliases == ("champion",)
    assert aliases(registry, name) == {"champion": v2, "challenger": None, "previous": v1}

    registry.mark_challenger(name, v3, reason="not better")
    registry.promote(name, v2)  # already champion: nothing moves
    assert aliases(registry, name) == {"champion": v2, "challenger": v3, "previous": v1}

    rolled = registry.rollback(name)
    assert rolled.version == v1
    assert aliases(registry, name) == {"champion": v1, "challenger": v3, "previous": v2}
    assert "conveyor.rolled_back_at" in registry.get_version(name, v2).tags

    registry.rollback(name)  # a second rollback undoes the first
    assert aliases(registry, name) == {"champion": v2, "challenger": v3, "previous": v1}

    registry.mark_challenger(name, v2, reason="re-run")  # the champion cannot challenge itself
    assert aliases(registry, name) == {"champion": v2, "challenger": v3, "previous": v1}
    assert registry.get_alias(name, "champion") == registry.get_version(name, v2)


def test_rollback_without_previous_is_refused(registry: ModelRegistry, lightgbm_run: str) -> None:
    version = register(registry, "lonely", lightgbm_run, "k")
    with pytest.raises(PromotionError, match="'lonely' has no 'previous' version"):
        registry.rollback("lonely")
    registry.promote("lonely", version)
    with pytest.raises(PromotionError, match="no 'previous'"):
        registry.rollback("lonely")
    assert aliases(registry, "lonely")["champion"] == version


def test_list_models_summarises_each_model(registry: ModelRegistry, lightgbm_run: str) -> None:
    for key in ("a", "b"):
        register(registry, "summary", lightgbm_run, key)
    registry.promote("summary", "2")
    (summary,) = [m for m in registry.list_models() if m["name"] == "summary"]
    assert summary == {
        "name": "summary",
        "latest": "2",
        "champion": "2",
        "challenger": None,
        "previous": None,
        "versions": 2,
    }


def test_lineage_gathers_run_data_tags_and_files(
    registry: ModelRegistry, lightgbm_run: str
) -> None:
    version = register(registry, "traced", lightgbm_run, "k")
    lineage = registry.lineage("traced", version)
    assert lineage["version"]["version"] == version
    assert lineage["run"]["run_id"] == lightgbm_run
    assert lineage["run"]["status"] == "FINISHED"
    assert lineage["params"]["seed"] == "42"
    assert lineage["metrics"] == {"roc_auc": 0.91, "accuracy": 0.85}
    assert lineage["lineage"]["conveyor.data_digest"] == "md5:0123456789abcdef"
    assert lineage["lineage"]["conveyor.serialization"] == "skops"
    assert lineage["datasets"] == [
        {
            "name": "adult-income",
            "digest": "md5:0123456789abcdef",
            "source": "/data/adult.csv",
            "source_type": "local",
            "context": "training",
        }
    ]
    assert lineage["artifacts"] == ["plots/roc_curve.png", "reports/metrics.json"]
    assert lineage["model_uri"].startswith("models:/m-")


def test_unknown_names_and_versions_get_one_clear_line(
    registry: ModelRegistry, lightgbm_run: str
) -> None:
    register(registry, "known", lightgbm_run, "k")
    with pytest.raises(PromotionError, match=r"no registered model named 'nope' \(known: .*known"):
        registry.get_version("nope", "1")
    with pytest.raises(PromotionError, match=r"model 'known' has no version '7' \(versions: 1\)"):
        registry.get_version("known", "7")
    with pytest.raises(PromotionError, match="no registered model named 'nope'"):
        registry.promote("nope", "1")
    with pytest.raises(PromotionError, match="has no version '9'"):
        registry.promote("known", "9")
    with pytest.raises(PromotionError, match="no registered model named 'nope'"):
        registry.list_versions("nope")
    assert registry.get_alias("nope", "champion") is None
    assert registry.get_alias("known", "champion") is None
    with pytest.raises(RegistryError, match="model 'known' has no alias 'champion'"):
        registry.load_pipeline("models:/known@champion")
    with pytest.raises(RegistryError, match="no registered model named 'nope'"):
        registry.load_pipeline("models:/nope@champion")
    with pytest.raises(RegistryError, match="no MLflow run with id 'feedface'"):
        registry.run_metrics("feedface")
    with pytest.raises(RegistryError, match="no MLflow run with id 'feedface'"):
        registry.register(name="known", run_id="feedface", key="k2", tags={})


def test_set_version_tags(registry: ModelRegistry, lightgbm_run: str) -> None:
    version = register(registry, "tagged", lightgbm_run, "k")
    registry.set_version_tags("tagged", version, {"conveyor.validated": "true"})
    assert registry.get_version("tagged", version).tags["conveyor.validated"] == "true"
