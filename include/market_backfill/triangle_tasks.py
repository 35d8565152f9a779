"""Task bodies of the ``triangle_backfill`` DAG (the DAG file only wires them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from market_backfill.chunk_tasks import (
    load_symbol_settings,
    plan_monthly,
    run_audited,
    summarize_run,
)
from market_backfill.db import MARKET_DB_CONN_ID, Connector
from market_backfill.planning import Chunk
from market_backfill.triangle_backfill import parse_params, plan_run, triangle_chunk

SUMMARY_COLUMNS = ("bars", "bad_bars", "triangles", "inserted", "batches", "commits", "retries")


def plan_chunks(
    params: Mapping[str, Any], context: Mapping[str, Any], conn_id: str = MARKET_DB_CONN_ID
) -> list[dict[str, str]]:
    """Validate the params and return the chunk list to map over."""
    return plan_monthly(plan_run, params, context, conn_id)


def run_chunk(
    chunk_data: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    dag_id: str,
    run_id: str,
    conn_id: str = MARKET_DB_CONN_ID,
) -> dict[str, Any]:
    """Compute and write one chunk's triangles; the return value is its XCom."""

    def work(chunk: Chunk, connect: Connector) -> dict[str, Any]:
        parsed = parse_params(params)
        return triangle_chunk(chunk, load_symbol_settings(connect, chunk.symbol), parsed, connect)

    return run_audited(chunk_data, work, dag_id=dag_id, run_id=run_id, conn_id=conn_id)


def summarize(
    planned: Any, *, dag_id: str, run_id: str, conn_id: str = MARKET_DB_CONN_ID
) -> dict[str, Any]:
    """Per-chunk table and totals into the log and ``backfill_runs``."""
    return summarize_run(planned, SUMMARY_COLUMNS, dag_id=dag_id, run_id=run_id, conn_id=conn_id)
