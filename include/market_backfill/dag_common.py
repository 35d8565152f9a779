"""Parse-time helpers for the DAG files: Assets, shared params, default task args.

Imported when DAG files are parsed, so it imports nothing heavy and touches no service.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param

SYMBOL_PATTERN = r"^[A-Z0-9]{2,16}\.[A-Z0-9]{2,16}:[A-Z0-9]{1,12}$"

CLEAN_BARS = Asset(
    name="market_bars_ohlcv_1m_clean",
    uri="x-market-backfill://market_db/market_bars_ohlcv_1m_clean",
)
TRIANGLES = Asset(
    name="triangle_events_v1",
    uri="x-market-backfill://market_db/triangle_events_v1",
)

DEFAULT_ARGS: dict[str, Any] = {
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}


def range_params(catch_up: str) -> dict[str, Param]:
    """``symbols``, ``start``, ``end`` with the trigger form's validation and pickers."""
    return {
        "symbols": Param(
            ["GLBX.MDP3:NQ"],
            type="array",
            minItems=1,
            items={"type": "string", "pattern": SYMBOL_PATTERN},
            title="Symbols",
            description="Registry symbols DATASET:ROOT, e.g. GLBX.MDP3:NQ",
        ),
        "start": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Start date (UTC)",
            description=f"First day, inclusive. Empty with End empty: {catch_up}.",
        ),
        "end": Param(
            None,
            type=["null", "string"],
            format="date",
            title="End date (UTC)",
            description="Last day, inclusive.",
        ),
    }


def batch_size_param() -> Param:
    return Param(
        500,
        type="integer",
        minimum=1,
        maximum=100000,
        title="Rows per committed batch",
        description="Rows per committed transaction (the shared inserter's batch).",
    )


def flag(title: str, description: str) -> Param:
    return Param(False, type="boolean", title=title, description=description)
