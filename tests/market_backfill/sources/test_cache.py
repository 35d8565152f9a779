from __future__ import annotations

from pathlib import Path

from market_backfill.sources.cache import data_dir, response_cache_dir


def test_the_data_directory_is_the_setting_else_under_airflow_home(tmp_path):
    assert data_dir({"MARKET_BACKFILL_DATA_DIR": str(tmp_path)}) == tmp_path
    assert data_dir({"AIRFLOW_HOME": "/opt/airflow"}) == Path("/opt/airflow/market_backfill_data")
    # Airflow's own default home when AIRFLOW_HOME is not set: a lasting, shared place
    assert data_dir({}) == Path.home() / "airflow" / "market_backfill_data"
    assert response_cache_dir({"MARKET_BACKFILL_DATA_DIR": str(tmp_path)}) == (
        tmp_path / "databento" / "responses"
    )
