from __future__ import annotations

from market_backfill.airflow.connections import databento_credentials


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


def test_hook_connector_opens_a_new_connection_each_call(market_db):
    from market_backfill.airflow.connections import hook_connector

    connect = hook_connector()
    first, second = connect(), connect()
    try:
        assert first is not second
        with first.cursor() as cur:
            cur.execute("SELECT current_database()")
            assert cur.fetchone()[0] == market_db.dbname
    finally:
        first.close()
        second.close()
