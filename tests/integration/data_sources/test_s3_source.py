"""Reading tables from s3:// through a real S3-compatible server (SeaweedFS)."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
from tests.s3_server import S3Server, free_ports

from conveyor.config import DataConfig
from conveyor.data import footprint
from conveyor.data.sources import read_table, source_fingerprint
from conveyor.errors import DataError

pytestmark = pytest.mark.integration

CSV = "id, age ,plan,joined\n1,42,basic,2021-03-15\n2, 37 ,premium,2021-04-01\n3,,basic,\n"


@dataclass(frozen=True)
class Bucket:
    """A fresh bucket on the server, written to with the server's own client."""

    server: S3Server
    name: str

    def put(self, key: str, body: bytes) -> str:
        """Upload ``body`` and return the object's s3:// URL."""
        self.server.client().put_object(Bucket=self.name, Key=key, Body=body)
        return f"s3://{self.name}/{key}"


def _forget_filesystems() -> None:
    """fsspec caches one S3 filesystem per set of options, credentials read once."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bucket]:
    """A bucket, with only AWS_ENDPOINT_URL and the key pair set, as a user would."""
    s3_server.point_env(monkeypatch)
    _forget_filesystems()
    yield Bucket(s3_server, s3_server.create_bucket("sources"))
    _forget_filesystems()


def _config(source: str, **kwargs: Any) -> DataConfig:
    return DataConfig(source=source, target="plan", **kwargs)


def test_s3_csv_is_read_with_stripped_headers(bucket: Bucket) -> None:
    df = read_table(_config(bucket.put("raw/customers.csv", CSV.encode())))
    assert list(df.columns) == ["id", "age", "plan", "joined"]
    assert df["plan"].tolist() == ["basic", "premium", "basic"]


def test_s3_parquet_is_sampled_to_max_rows_in_order(bucket: Bucket) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "plan": ["basic", "premium", "basic", None]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    url = bucket.put("raw/customers.parquet", buffer.getvalue())
    ids = read_table(_config(url, max_rows=3))["id"].tolist()
    assert len(ids) == 3
    assert ids == sorted(ids)
    assert set(ids) <= {1, 2, 3, 4}


def test_s3_csv_too_large_for_memory_is_refused(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(footprint, "available_memory", lambda: 10_000)
    rows = "".join(f"{i},{i % 90},basic,2021-03-15\n" for i in range(5_000))
    url = bucket.put("raw/big.csv", ("id,age,plan,joined\n" + rows).encode())
    with pytest.raises(DataError, match=f"data.source {url} does not fit in memory"):
        read_table(_config(url))


def test_s3_gzip_csv_is_decompressed(bucket: Bucket) -> None:
    url = bucket.put("raw/customers.csv.gz", gzip.compress(CSV.encode()))
    assert read_table(_config(url))["id"].tolist() == [1, 2, 3]


def test_s3_fingerprint_changes_when_the_object_changes(bucket: Bucket) -> None:
    url = bucket.put("raw/customers.csv", CSV.encode())
    first = source_fingerprint(_config(url))
    assert first == source_fingerprint(_config(url))
    bucket.put("raw/customers.csv", (CSV + "4,50,basic,2021-05-01\n").encode())
    assert source_fingerprint(_config(url)) != first
    assert len(read_table(_config(url))) == 4


def test_missing_s3_object_names_the_url(bucket: Bucket) -> None:
    url = f"s3://{bucket.name}/raw/nope.csv"
    with pytest.raises(DataError, match=r"^data source not found: s3://.*/raw/nope\.csv$"):
        read_table(_config(url))


def test_missing_bucket_names_the_url(bucket: Bucket) -> None:
    url = f"s3://{bucket.name}-gone/raw/customers.csv"
    with pytest.raises(DataError, match=r"^data source not found: s3://.*-gone/raw/"):
        source_fingerprint(_config(url))


def test_a_wrong_secret_is_refused_with_a_hint_at_the_credentials(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = bucket.put("raw/customers.csv", CSV.encode())
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(DataError, match="access denied") as err:
        read_table(_config(url))
    assert url in str(err.value)
    assert "AWS_SECRET_ACCESS_KEY" in str(err.value)
    assert "not-the-secret" not in str(err.value)


def test_the_s3_specific_endpoint_wins_over_the_general_one(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = bucket.put("raw/customers.csv", CSV.encode())
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", bucket.server.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_ports(1)[0]}")  # nobody there
    assert len(read_table(_config(url))) == 3
