"""Glue between Airflow task context and the library: connections, run ends, sources.

Imported only inside tasks (never at DAG parse time).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from market_backfill.sources import BarSource, PermanentSourceError

log = logging.getLogger(__name__)

DATABENTO_CONN_ID = "databento"


def databento_credentials(conn_id: str = DATABENTO_CONN_ID) -> tuple[str, str | None]:
    """(key, gateway) from the Airflow connection ``databento`` (password = key, optional
    extra ``gateway``), else the key from ``DATABENTO_API_KEY``."""
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


def run_cache_dir(dag_id: str, run_id: str) -> Path:
    """Where one DAG run keeps Databento responses (``MARKET_BACKFILL_CACHE`` or
    ``$AIRFLOW_HOME/cache/market_backfill``), so sibling and retried chunks reuse them."""
    root = os.environ.get("MARKET_BACKFILL_CACHE") or os.path.join(
        os.environ.get("AIRFLOW_HOME") or tempfile.gettempdir(), "cache", "market_backfill"
    )
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{dag_id}__{run_id}")
    return Path(root) / safe


def drop_run_cache(dag_id: str, run_id: str) -> None:
    """Remove a finished run's cached responses."""
    shutil.rmtree(run_cache_dir(dag_id, run_id), ignore_errors=True)


def make_source(
    source: str,
    dbn_path: str | None,
    *,
    cache_dir: Path | None = None,
    companions: Mapping[str, Sequence[str]] | None = None,
) -> BarSource:
    """The bar source a run's params ask for."""
    if source == "dbn_file":
        from market_backfill.sources.dbn_file import DbnFileSource

        return DbnFileSource(dbn_path or "")
    if source == "databento":
        from market_backfill.sources.databento_api import DatabentoSource

        key, gateway = databento_credentials()
        if gateway:
            log.info("Databento gateway from connection: %s", gateway)
        return DatabentoSource(key, gateway, cache_dir=cache_dir, companions=companions)
    raise PermanentSourceError(f"unknown source {source!r}")


def run_end(context: Mapping[str, Any]) -> datetime | None:
    """End of the run's data: data interval end (scheduled runs), else the logical date,
    else None (manual and asset-triggered runs in Airflow 3 carry neither)."""
    for key in ("data_interval_end", "logical_date"):
        value = context.get(key)
        if value is not None:
            return value
    return None


def max_map_length() -> int:
    from airflow.sdk import conf

    return conf.getint("core", "max_map_length", fallback=1024)
