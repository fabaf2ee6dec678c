"""Reading from a real PostgreSQL server: tables, queries, limits and clear errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pytest

from conveyor.config import DataConfig
from conveyor.data.cleaning import clean_table
from conveyor.data.sources import read_table, source_fingerprint
from conveyor.data.synthetic import make_demo_dataset
from conveyor.errors import DataError

if TYPE_CHECKING:
    from conftest import PostgresServer  # this folder's conftest, for annotations only

pytestmark = pytest.mark.integration


def _config(server: PostgresServer, **kwargs: object) -> DataConfig:
    values: dict[str, object] = {"source": server.url(), "target": "churned", **kwargs}
    return DataConfig.model_validate(values)


def test_table_is_read_whole(postgres: PostgresServer) -> None:
    df = read_table(_config(postgres, table="customers"))

    expected = make_demo_dataset(500, seed=7, messy=False)
    assert list(df.columns) == list(expected.columns)
    assert len(df) == 500
    assert sorted(df["customer_id"]) == sorted(expected["customer_id"])
    assert pd.api.types.is_datetime64_any_dtype(df["signup_date"])


@pytest.mark.parametrize("scheme", ["postgres", "postgresql+psycopg"])
def test_other_url_schemes_reach_the_same_server(postgres: PostgresServer, scheme: str) -> None:
    config = DataConfig(source=postgres.url(scheme=scheme), target="churned", table="customers")

    assert len(read_table(config)) == 500


def test_query_limits_what_is_read(postgres: PostgresServer) -> None:
    query = "SELECT age, plan, churned FROM customers WHERE plan = 'premium' ORDER BY age;"

    everything = read_table(_config(postgres, query=query))

    assert list(everything.columns) == ["age", "plan", "churned"]
    assert set(everything["plan"]) == {"premium"}
    assert 0 < len(everything) < 500


BY_ID = "SELECT * FROM customers ORDER BY customer_id"


def test_max_rows_samples_that_many_rows_of_a_table(postgres: PostgresServer) -> None:
    assert len(read_table(_config(postgres, table="customers", max_rows=12))) == 12


def test_max_rows_samples_the_whole_query_result_in_order(postgres: PostgresServer) -> None:
    everything = read_table(_config(postgres, query=BY_ID))
    sample = read_table(_config(postgres, query=BY_ID, max_rows=40))

    expected = everything[everything["customer_id"].isin(sample["customer_id"])]
    pd.testing.assert_frame_equal(sample, expected.reset_index(drop=True))


def test_max_rows_sample_reaches_the_end_of_the_result(postgres: PostgresServer) -> None:
    everything = read_table(_config(postgres, query=BY_ID))
    sample = read_table(_config(postgres, query=BY_ID, max_rows=40))

    last_tenth = set(everything["customer_id"].iloc[-50:])
    assert last_tenth & set(sample["customer_id"])  # a head of 40 rows would hold none


def test_max_rows_sample_is_the_same_on_every_read(postgres: PostgresServer) -> None:
    config = _config(postgres, query=BY_ID, max_rows=40)

    pd.testing.assert_frame_equal(read_table(config), read_table(config))


def test_max_rows_above_the_row_count_reads_everything(postgres: PostgresServer) -> None:
    everything = read_table(_config(postgres, query=BY_ID))

    pd.testing.assert_frame_equal(
        read_table(_config(postgres, query=BY_ID, max_rows=999)), everything
    )


def test_schema_table_cleans_to_numbers_dates_and_labels(postgres: PostgresServer) -> None:
    config = DataConfig(source=postgres.url(), target="tier", table="sales.accounts")

    clean, schema, report = clean_table(read_table(config), config)

    assert report.dropped == {"account_id": "id-like"}
    assert report.rows_without_target == 20  # the '?' tiers
    assert set(clean["tier"]) == {"gold", "silver"}
    assert clean["balance"].dtype == "float64"
    assert schema.numeric == ("balance", "closed")
    assert schema.datetime == ("opened",)


def test_missing_table_is_named_with_the_tables_there(postgres: PostgresServer) -> None:
    with pytest.raises(DataError) as info:
        read_table(_config(postgres, table="custmers"))

    message = str(info.value)
    assert message.startswith("table 'custmers' not found in database")
    assert "tables: customers" in message
    assert postgres.password not in message


def test_bad_query_is_reported_without_the_password(postgres: PostgresServer) -> None:
    with pytest.raises(
        DataError, match=r'query on .* failed: relation "nope" does not exist$'
    ) as info:
        read_table(_config(postgres, query="SELECT * FROM nope"))

    assert postgres.password not in str(info.value)
    assert "\n" not in str(info.value)


def test_wrong_port_is_a_clear_connection_error(postgres: PostgresServer, unused_port: int) -> None:
    config = DataConfig(source=postgres.url(port=unused_port), target="churned", table="customers")

    with pytest.raises(
        DataError, match=r"^cannot connect to database postgresql\+psycopg://"
    ) as info:
        read_table(config)

    assert postgres.password not in str(info.value)
    assert "***" in str(info.value)


def test_wrong_password_is_a_clear_connection_error(postgres: PostgresServer) -> None:
    source = postgres.url().replace(postgres.password, "not-the-password")
    config = DataConfig(source=source, target="churned", table="customers")

    with pytest.raises(DataError, match="password authentication failed") as info:
        read_table(config)

    assert "not-the-password" not in str(info.value)


def test_sql_sources_have_no_cheap_fingerprint(postgres: PostgresServer) -> None:
    assert source_fingerprint(_config(postgres, table="customers")) is None
