from __future__ import annotations

from datetime import UTC, datetime

from market_backfill.runtime import databento_credentials, make_source, run_end
from market_backfill.sources.databento_api import DatabentoSource
from market_backfill.sources.dbn_file import DbnFileSource


def test_credentials_from_the_connection(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATABENTO",
        '{"conn_type": "generic", "password": "db-KEY", "extra": {"gateway": "https://h:1"}}',
    )
    assert databento_credentials() == ("db-KEY", "https://h:1")


def test_credentials_fall_back_to_the_environment(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_DATABENTO", raising=False)
    monkeypatch.setenv("DATABENTO_API_KEY", "db-ENV")
    assert databento_credentials() == ("db-ENV", None)
    assert isinstance(make_source("databento", None), DatabentoSource)
    assert isinstance(make_source("dbn_file", "/x/*.dbn"), DbnFileSource)


def test_run_end_prefers_the_data_interval():
    t1, t2 = datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    assert run_end({"data_interval_end": t1, "logical_date": t2}) == t1
    assert run_end({"data_interval_end": None, "logical_date": t2}) == t2
    assert run_end({}) is None


def test_run_cache_dir_is_per_run_and_safe(monkeypatch, tmp_path):
    from market_backfill.runtime import drop_run_cache, run_cache_dir

    monkeypatch.setenv("MARKET_BACKFILL_CACHE", str(tmp_path))
    path = run_cache_dir("ohlcv_reingest", "manual__2025-12-01T00:00:00+00:00/../x")
    assert path.parent == tmp_path
    assert "/" not in path.name
    path.mkdir()
    drop_run_cache("ohlcv_reingest", "manual__2025-12-01T00:00:00+00:00/../x")
    assert not path.exists()
