"""Task bodies of the ``ohlcv_reingest`` DAG (the DAG file only wires them)."""

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
from market_backfill.reingest import ReingestParams, load_chunk, parse_params, plan_run

STOP_FILE = "RUN_WIDE_SOURCE_ERROR"
SUMMARY_COLUMNS = (
    "rows_in",
    "rows_valid",
    "rows_skipped",
    "rows_written",
    "batches",
    "commits",
    "retries",
)


def plan_chunks(
    params: Mapping[str, Any], context: Mapping[str, Any], conn_id: str = MARKET_DB_CONN_ID
) -> list[dict[str, str]]:
    """Validate the params and return the chunk list to map over."""
    return plan_monthly(plan_run, params, context, conn_id)


def companion_symbols(parsed: ReingestParams) -> dict[str, list[str]]:
    """Continuous symbols per dataset that can share one Databento request: in date mode
    every symbol's chunk of a month has the same window (catch-up windows differ)."""
    if parsed.window is None:
        return {}
    out: dict[str, list[str]] = {}
    for sym in parsed.symbols:
        out.setdefault(sym.dataset, []).append(sym.continuous(parsed.roll_rule, parsed.rank))
    return out


def run_chunk(
    chunk_data: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    dag_id: str,
    run_id: str,
    conn_id: str = MARKET_DB_CONN_ID,
) -> dict[str, Any]:
    """Load one chunk and record it in ``backfill_runs``; the return value is its XCom."""
    from market_backfill.runtime import make_source, run_cache_dir

    def work(chunk: Chunk, connect: Connector) -> dict[str, Any]:
        parsed = parse_params(params)
        settings = load_symbol_settings(connect, chunk.symbol)
        source = make_source(
            parsed.source,
            parsed.dbn_path,
            cache_dir=run_cache_dir(dag_id, run_id),
            companions=companion_symbols(parsed),
        )
        return load_chunk(chunk, settings, parsed, source, connect)

    return run_audited(chunk_data, work, dag_id=dag_id, run_id=run_id, conn_id=conn_id)


def summarize(
    planned: Any, *, dag_id: str, run_id: str, conn_id: str = MARKET_DB_CONN_ID
) -> dict[str, Any]:
    """Per-chunk table and totals; the run's Databento cache is dropped when all succeeded."""
    from market_backfill.runtime import drop_run_cache

    return summarize_run(
        planned,
        SUMMARY_COLUMNS,
        dag_id=dag_id,
        run_id=run_id,
        conn_id=conn_id,
        on_success=lambda: drop_run_cache(dag_id, run_id),
    )
