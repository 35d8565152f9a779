"""The project's Airflow connections: ``market_db`` (PostgreSQL) and ``databento``."""

from __future__ import annotations

import os
from typing import cast

from market_backfill.db.connection import Connection, Connector

MARKET_DB_CONN_ID = "market_db"
DATABENTO_CONN_ID = "databento"


def hook_connector(conn_id: str = MARKET_DB_CONN_ID) -> Connector:
    """A callable that opens a new connection through ``PostgresHook(postgres_conn_id=conn_id)``."""

    def connect() -> Connection:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return cast(Connection, PostgresHook(postgres_conn_id=conn_id).get_conn())

    return connect


def databento_credentials(conn_id: str = DATABENTO_CONN_ID) -> tuple[str, str | None]:
    """(key, gateway) from the Airflow connection ``databento`` (password = key, optional
    extra ``gateway``), else the key from ``DATABENTO_API_KEY``. Never logged."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - a missing connection raises provider-specific errors
        conn = None
    if conn is not None:
        extra = conn.extra_dejson or {}
        key = conn.password or os.environ.get("DATABENTO_API_KEY", "")
        return key, extra.get("gateway") or None
    return os.environ.get("DATABENTO_API_KEY", ""), None
