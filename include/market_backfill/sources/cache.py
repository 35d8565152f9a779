"""Where Databento responses are kept: one data directory shared by every worker of a host.

``MARKET_BACKFILL_DATA_DIR`` (default ``$AIRFLOW_HOME/market_backfill_data``) holds the
response cache, keyed by request (dataset, symbols, window): a response is written once,
atomically (a temporary file renamed into place) under a file lock that holds across
processes, so sibling chunks on other workers, retries and later runs read it instead of
paying again. Several hosts share it only if it is on shared storage.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DATA_DIR_ENV = "MARKET_BACKFILL_DATA_DIR"


def data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``MARKET_BACKFILL_DATA_DIR``, else ``market_backfill_data`` in Airflow's home
    (``$AIRFLOW_HOME``, which Airflow itself defaults to ``~/airflow``)."""
    configured = environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured)
    home = environ.get("AIRFLOW_HOME") or "~/airflow"
    return Path(home).expanduser() / "market_backfill_data"


def response_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The folder of cached Databento responses inside the data directory."""
    return data_dir(environ) / "databento" / "responses"
