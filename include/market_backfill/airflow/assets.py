"""The Assets the DAGs produce and consume (parse-time, light)."""

from __future__ import annotations

from airflow.sdk import Asset

from market_backfill.db.tables import CLEAN_TABLE, EVENTS_TABLE, FEATURES_TABLE

CLEAN_BARS = Asset(name=CLEAN_TABLE, uri=f"x-market-backfill://market_db/{CLEAN_TABLE}")
TRIANGLES = Asset(name=EVENTS_TABLE, uri=f"x-market-backfill://market_db/{EVENTS_TABLE}")
FEATURES = Asset(name=FEATURES_TABLE, uri=f"x-market-backfill://market_db/{FEATURES_TABLE}")
