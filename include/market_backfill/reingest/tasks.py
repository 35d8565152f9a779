"""Task bodies of the ``ohlcv_reingest`` DAG (the DAG file only wires them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from market_backfill.airflow.chunks import plan_monthly, run_audited, summarize_run
from market_backfill.airflow.connections import databento_credentials
from market_backfill.airflow.context import RunContext
from market_backfill.db.connection import Connector
from market_backfill.db.inserter import Cadence
from market_backfill.planning import Chunk, ChunkData
from market_backfill.reingest.load import ReingestResult, ReingestSummary, load_chunk, plan_run
from market_backfill.reingest.params import ReingestParams, parse_params
from market_backfill.sources import make_source
from market_backfill.sources.cache import drop_run_cache, run_cache_dir
from market_backfill.summary import columns_of
from market_backfill.symbols import settings_of

SUMMARY_COLUMNS = columns_of(ReingestSummary, Cadence)


def plan_chunks(run: RunContext) -> list[ChunkData]:
    """Validate the params and return the chunk list to map over."""
    return plan_monthly(plan_run, run)


def companion_symbols(parsed: ReingestParams) -> dict[str, list[str]]:
    """Continuous symbols per dataset that can share one Databento request: in date mode
    every symbol's chunk of a month has the same window (catch-up windows differ)."""
    if parsed.window is None:
        return {}
    out: dict[str, list[str]] = {}
    for sym in parsed.symbols:
        out.setdefault(sym.dataset, []).append(sym.continuous(parsed.roll_rule, parsed.rank))
    return out


def run_chunk(chunk_data: Mapping[str, Any], run: RunContext) -> ReingestResult:
    """Load one chunk and record it in ``backfill_runs``; the return value is its XCom."""

    def work(chunk: Chunk, connect: Connector) -> ReingestResult:
        parsed = parse_params(run.params)
        source = make_source(
            parsed.source,
            parsed.dbn_path,
            credentials=databento_credentials,
            cache_dir=run_cache_dir(run.dag_id, run.run_id),
            companions=companion_symbols(parsed),
        )
        return load_chunk(chunk, settings_of(connect, chunk.symbol), parsed, source, connect)

    return run_audited(chunk_data, work, run)


def summarize(planned: Sequence[ChunkData] | None, run: RunContext) -> dict[str, Any]:
    """Per-chunk table and totals; the run's Databento cache is dropped when all succeeded."""
    return summarize_run(
        planned, SUMMARY_COLUMNS, run, on_success=lambda: drop_run_cache(run.dag_id, run.run_id)
    )
