"""Where a DAG run keeps Databento responses, so sibling and retried chunks reuse them."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path


def run_cache_dir(dag_id: str, run_id: str) -> Path:
    """The run's folder under ``MARKET_BACKFILL_CACHE`` (else
    ``$AIRFLOW_HOME/cache/market_backfill``); ids are made safe as one path component."""
    root = os.environ.get("MARKET_BACKFILL_CACHE") or os.path.join(
        os.environ.get("AIRFLOW_HOME") or tempfile.gettempdir(), "cache", "market_backfill"
    )
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{dag_id}__{run_id}")
    return Path(root) / safe


def drop_run_cache(dag_id: str, run_id: str) -> None:
    """Remove a finished run's cached responses."""
    shutil.rmtree(run_cache_dir(dag_id, run_id), ignore_errors=True)
