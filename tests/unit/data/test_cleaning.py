"""Cleaning real-world mess: headers, spaces, markers, types, IDs, targets and clear errors."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.config import DataConfig
from conveyor.data.cleaning import CleaningReport, clean_table
from conveyor.data.schema import TableSchema
from conveyor.errors import DataError

N = 40


def _config(**kwargs: Any) -> DataConfig:
    return DataConfig(**{"source": "table.csv", "target": "y", **kwargs})


def _clean(df: pd.DataFrame, **kwargs: Any) -> tuple[pd.DataFrame, TableSchema, CleaningReport]:
    return clean_table(df, _config(**kwargs))


def _base(n: int = N) -> dict[str, Any]:
    """A feature and a target that survive cleaning, to add the column under test to."""
    rng = np.random.default_rng(0)
    return {
        "x": rng.normal(size=n),
        "y": pd.Series(np.where(np.arange(n) % 3 == 0, "yes", "no"), dtype="str"),
    }


def _text(values: list[Any]) -> pd.Series:
    return pd.Series(values, dtype="str")


# --- mess handled by default --------------------------------------------------------------


def test_header_spaces_are_stripped_and_reported() -> None:
    df = pd.DataFrame({" x ": [1.0, 2.0, 3.0], "y": ["a", "b", "a"]})
    df.attrs["renamed_columns"] = {"Plan ": "Plan"}  # what read_table stripped earlier

    clean, schema, report = _clean(df)

    assert list(clean.columns) == ["x", "y"]
    assert schema.numeric == ("x",)
    assert report.renamed_columns == {"Plan ": "Plan", " x ": "x"}


def test_headers_that_collide_after_stripping_are_an_error() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0], "x ": [3.0, 4.0], "y": ["a", "b"]})

    with pytest.raises(DataError, match="duplicate column name 'x'"):
        _clean(df)


def test_string_values_are_stripped() -> None:
    plan = _text([" basic", "premium ", "  basic  ", "premium"] * (N // 4))
    clean, schema, _ = _clean(pd.DataFrame({**_base(), "plan": plan}))

    assert schema.categorical == ("plan",)
    assert set(clean["plan"]) == {"basic", "premium"}


def test_missing_markers_become_nan_and_are_counted() -> None:
    region = _text(["north", " ? ", "NA", "", "south", "null", "-"] + ["east"] * (N - 7))
    clean, _, report = _clean(pd.DataFrame({**_base(), "region": region}))

    assert clean["region"].isna().sum() == 5
    assert report.missing_markers == {"region": 5}
    assert set(clean["region"].dropna()) == {"north", "south", "east"}


def test_configured_markers_replace_the_defaults_and_apply_to_numbers() -> None:
    df = pd.DataFrame(
        {
            **_base(),
            "score": [-999.0, 1.0, 2.0, 3.0] * (N // 4),
            "plan": _text(["unknown", "NA", "basic", "premium"] * (N // 4)),
        }
    )

    clean, _, report = _clean(df, na_values=["unknown", "-999"])

    assert clean["score"].isna().sum() == N // 4
    assert clean["plan"].isna().sum() == N // 4
    assert "NA" in set(clean["plan"])  # not a marker any more
    assert report.missing_markers == {"score": N // 4, "plan": N // 4}


def test_numbers_stored_as_text_become_numbers() -> None:
    amount = _text(["  42 ", "3.5", "1,234", "-7", "?"] * (N // 5))
    clean, schema, report = _clean(pd.DataFrame({**_base(), "amount": amount}))

    assert clean["amount"].dtype == np.float64
    assert clean["amount"].iloc[:5].tolist()[:4] == [42.0, 3.5, 1234.0, -7.0]
    assert clean["amount"].isna().sum() == N // 5
    assert "amount" in schema.numeric
    assert report.coerced_numeric == ("amount",)


def test_nearly_numeric_text_is_numeric_with_the_odd_value_missing() -> None:
    values = [str(i) for i in range(199)] + ["n/a?"]
    df = pd.DataFrame({**_base(200), "amount": _text(values)})

    clean, schema, _ = _clean(df)

    assert "amount" in schema.numeric
    assert clean["amount"].isna().sum() == 1


def test_mostly_text_stays_categorical() -> None:
    values = ["1", "2", "3"] * 10 + ["red", "blue"] * 5
    clean, schema, report = _clean(pd.DataFrame({**_base(), "mixed": _text(values)}))

    assert schema.categorical == ("mixed",)
    assert report.coerced_numeric == ()
    assert clean["mixed"].dtype == "str"


def test_codes_with_leading_zeros_stay_categorical() -> None:
    zips = _text(["01234", "02139", "10001", "94105"] * (N // 4))
    clean, schema, _ = _clean(pd.DataFrame({**_base(), "zip": zips}))

    assert schema.categorical == ("zip",)
    assert clean["zip"].iloc[0] == "01234"


def test_date_columns_are_inferred_from_values() -> None:
    days = pd.date_range("2021-01-01", periods=N, freq="D")
    df = pd.DataFrame(
        {
            **_base(),
            "iso": _text([f" {d:%Y-%m-%d} " for d in days]),
            "us": _text([f"{d:%m/%d/%Y}" for d in days]),
        }
    )

    clean, schema, report = _clean(df)

    assert schema.datetime == ("iso", "us")
    assert report.parsed_datetime == ("iso", "us")
    assert pd.api.types.is_datetime64_any_dtype(clean["iso"])
    assert clean["us"].iloc[31] == pd.Timestamp("2021-02-01")
    assert schema.features == ("x",)  # dates are not features


def test_configured_datetime_columns_are_parsed() -> None:
    stamps = _text(["20210315", "20210401", "?"] * 10 + ["20211231"] * (N - 30))
    clean, schema, _ = _clean(pd.DataFrame({**_base(), "day": stamps}), datetime_columns=["day"])

    assert schema.datetime == ("day",)
    assert clean["day"].iloc[0] == pd.Timestamp("2021-03-15")
    assert clean["day"].isna().sum() == 10


def test_forced_datetime_that_does_not_parse_names_the_column() -> None:
    df = pd.DataFrame({**_base(), "plan": _text(["basic", "premium"] * (N // 2))})

    with pytest.raises(DataError, match="column 'plan' is forced date/time"):
        _clean(df, datetime_columns=["plan"])


def test_forced_categorical_turns_number_codes_into_labels() -> None:
    codes = [1, 2, 3, np.nan] * (N // 4)
    clean, schema, _ = _clean(
        pd.DataFrame({**_base(), "store": codes}), categorical_columns=["store"]
    )

    assert schema.categorical == ("store",)
    assert clean["store"].iloc[:4].tolist()[:3] == ["1", "2", "3"]
    assert clean["store"].isna().sum() == N // 4


def test_forced_numeric_parses_text_and_rejects_words() -> None:
    df = pd.DataFrame({**_base(), "level": _text(["1", "2", "3", "4"] * (N // 4))})
    _, schema, _ = _clean(df, numeric_columns=["level"])
    assert schema.numeric == ("x", "level")

    df = pd.DataFrame({**_base(), "level": _text(["1", "2", "high", "4"] * (N // 4))})
    with pytest.raises(DataError, match=r"column 'level' is forced numeric.*'high'"):
        _clean(df, numeric_columns=["level"])


def test_a_column_cannot_be_forced_twice() -> None:
    df = pd.DataFrame({**_base(), "z": [1.0] * N})

    with pytest.raises(DataError, match="column 'z' is forced both numeric and categorical"):
        _clean(df, numeric_columns=["z"], categorical_columns=["z"])


def test_sql_style_objects_become_numbers_and_dates() -> None:
    df = pd.DataFrame(
        {
            **_base(),
            "balance": pd.Series(
                [Decimal("10.50"), None, Decimal("3")] * 13 + [None], dtype=object
            ),
            "opened": pd.Series([dt.date(2020, 1, i % 28 + 1) for i in range(N)], dtype=object),
            "active": pd.Series([True, False] * (N // 2), dtype=object),
        }
    )

    clean, schema, _ = _clean(df)

    assert schema.numeric == ("x", "balance", "active")
    assert clean["balance"].iloc[:3].tolist()[0] == 10.5
    assert clean["active"].tolist()[:2] == [1.0, 0.0]
    assert schema.datetime == ("opened",)


# --- dropping -----------------------------------------------------------------------------


def test_id_like_and_constant_columns_are_dropped() -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            **_base(),
            "customer_id": _text([f"C{i:05d}" for i in range(N)]),
            "row": np.arange(N),
            "accountId": rng.permutation(N) * 7 + 1000,
            "country": _text(["NL"] * N),
            "income": rng.normal(50_000, 1_000, N),  # unique per row, but a real feature
        }
    )

    clean, schema, report = _clean(df)

    assert report.dropped == {
        "customer_id": "id-like",
        "row": "id-like",
        "accountId": "id-like",
        "country": "constant",
    }
    assert schema.dropped == report.dropped
    assert list(clean.columns) == ["x", "y", "income"]


def test_sequence_with_gaps_left_by_unlabelled_rows_is_still_id_like() -> None:
    base = _base()
    labels = base["y"].to_numpy(dtype=object)
    labels[5] = None
    df = pd.DataFrame({**base, "y": _text(list(labels)), "seq": np.arange(N)})

    _, _, report = _clean(df)

    assert report.dropped == {"seq": "id-like"}


def test_id_and_constant_columns_are_kept_when_asked() -> None:
    df = pd.DataFrame({**_base(), "row": np.arange(N), "country": _text(["NL"] * N)})

    _, schema, report = _clean(df, drop_id_columns=False)

    assert schema.features == ("x", "row", "country")
    assert report.dropped == {}


def test_forced_numeric_columns_are_never_id_like() -> None:
    df = pd.DataFrame({**_base(), "day_index": np.arange(N)})

    clean, schema, report = _clean(df, numeric_columns=["day_index"])

    assert report.dropped == {}
    assert "day_index" in schema.numeric
    assert clean["day_index"].tolist() == [float(i) for i in range(N)]


def test_the_target_is_never_dropped() -> None:
    df = pd.DataFrame({"x": np.arange(N) % 5, "y": np.arange(N)})

    clean, schema, _ = _clean(df)

    assert schema.target == "y"
    assert clean["y"].tolist() == list(range(N))


def test_configured_columns_are_dropped_first() -> None:
    df = pd.DataFrame(
        {**_base(), "notes": _text(["all missing?"] * N), "x2": [1.0, 2.0] * (N // 2)}
    )

    _, schema, report = _clean(df, drop_columns=["notes"])

    assert report.dropped == {"notes": "configured"}
    assert schema.features == ("x", "x2")


def test_unknown_configured_column_is_named_with_a_suggestion() -> None:
    with pytest.raises(
        DataError, match=r"data.drop_columns: unknown column 'xx'.*did you mean 'x'"
    ):
        _clean(pd.DataFrame(_base()), drop_columns=["xx"])


# --- target ---------------------------------------------------------------------------------


def test_rows_without_target_are_dropped_and_counted() -> None:
    base = _base()
    labels = list(base["y"])
    labels[1], labels[2], labels[3] = None, " ? ", "  "
    df = pd.DataFrame({**base, "y": _text(labels)})

    clean, _, report = _clean(df)

    assert (report.rows_in, report.rows_out, report.rows_without_target) == (N, N - 3, 3)
    assert len(clean) == N - 3
    assert clean.index.tolist() == list(range(N - 3))
    assert report.missing_markers["y"] == 2


def test_target_strings_are_stripped_and_numbers_in_text_become_numbers() -> None:
    df = pd.DataFrame({"x": np.arange(N) % 7, "y": _text([" yes", "no "] * (N // 2))})
    clean, _, _ = _clean(df)
    assert set(clean["y"]) == {"yes", "no"}

    df = pd.DataFrame({"x": np.arange(N) % 7, "y": _text([" 12 ", "7"] * (N // 2))})
    clean, _, _ = _clean(df)
    assert clean["y"].dtype == np.int64
    assert clean["y"].iloc[0] == 12


def test_absent_target_suggests_close_matches() -> None:
    df = pd.DataFrame({"age": [1.0], "Churned": ["yes"], "plan": ["a"]})

    with pytest.raises(DataError) as info:
        clean_table(df, _config(target="churned"))

    message = str(info.value)
    assert message.startswith("target column 'churned' not found; did you mean 'Churned'?")
    assert "columns: age, Churned, plan" in message


def test_entirely_missing_target_is_an_error() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": _text(["?", "NA", None])})

    with pytest.raises(DataError, match=r"target column 'y' is entirely missing \(all 3 values"):
        _clean(df)


# --- other errors ----------------------------------------------------------------------------


def test_entirely_missing_feature_is_an_error_naming_the_fix() -> None:
    df = pd.DataFrame({**_base(), "notes": _text(["?", "", "NA", None] * (N // 4))})

    with pytest.raises(DataError) as info:
        _clean(df)

    assert str(info.value) == (
        f"column 'notes' is entirely missing (all {N} values null); drop it with data.drop_columns"
    )


def test_no_feature_left_is_an_error_listing_what_was_dropped() -> None:
    df = pd.DataFrame({"id": np.arange(N), "y": _base()["y"]})

    with pytest.raises(DataError, match=r"no feature columns left after cleaning \(dropped: id"):
        _clean(df)


def test_empty_table_is_an_error() -> None:
    with pytest.raises(DataError, match="no rows"):
        _clean(pd.DataFrame({"x": [], "y": []}))


# --- output contract ---------------------------------------------------------------------------


def test_output_types_fit_sklearn_preprocessing_without_warnings() -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    df = pd.DataFrame(
        {
            **_base(),
            "n": _text(["1", "?", "3", "4"] * (N // 4)),
            "c": _text(["a", "b", " ", "a"] * (N // 4)),
            "i": np.arange(N) % 4,
        }
    )
    clean, schema, _ = _clean(df)
    assert [str(clean[c].dtype) for c in schema.features] == [
        "float64",
        "float64",
        "float64",
        "str",
    ]

    transform = make_column_transformer(
        (SimpleImputer(), list(schema.numeric)),
        (
            make_pipeline(
                SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
            ),
            list(schema.categorical),
        ),
        sparse_threshold=0,
    )
    matrix = transform.fit_transform(clean[list(schema.features)])  # warnings are errors here

    assert matrix.shape == (N, 3 + 2)
    assert not np.isnan(matrix).any()


def test_report_is_json_friendly() -> None:
    df = pd.DataFrame({" x": [1.0, 2.0, 3.0], "z": ["1", "2", "?"], "y": ["a", "b", "a"]})

    _, _, report = _clean(df)

    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["renamed_columns"] == {" x": "x"}
    assert payload["coerced_numeric"] == ["z"]
    assert payload["missing_markers"] == {"z": 1}
