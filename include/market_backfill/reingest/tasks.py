"""Task bodies of the ``ohlcv_reingest`` DAG (the DAG file only wires them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from market_backfill.airflow.chunks import plan_monthly, run_audited, summarize_run
from market_backfill.airflow.connections import databento_credentials
from market_backfill.airflow.context import RunContext
from market_backfill.db.connection import Connector, run_transaction
from market_backfill.db.inserter import Cadence
from market_backfill.planning import Chunk, ChunkData
from market_backfill.reingest.load import ReingestResult, ReingestSummary, load_chunk, plan_run
from market_backfill.reingest.params import ReingestParams, parse_params
from market_backfill.sources import make_source
from market_backfill.sources.cache import drop_run_cache, run_cache_dir
from market_backfill.summary import columns_of
from market_backfill.symbols import Symbol, SymbolSettings, load_settings, parse_symbol

SUMMARY_COLUMNS = columns_of(ReingestSummary, Cadence)


def plan_chunks(run: RunContext) -> list[ChunkData]:
    """Validate the params and return the chunk list to map over."""
    return plan_monthly(plan_run, run)


def companion_symbols(
    parsed: ReingestParams, registry: Mapping[Symbol, SymbolSettings]
) -> dict[str, list[str]]:
    """Continuous symbols per dataset that share one Databento request: the run's series of
    every symbol (all chunks of a month have the same window when dates or the run's data
    interval set it; catch-up windows differ, so catch-up runs share nothing)."""
    out: dict[str, list[str]] = {}
    for sym in parsed.symbols:
        series = registry[sym].series(parsed.roll_rule, parsed.rank)
        out.setdefault(sym.dataset, []).append(series.continuous)
    return out


def run_chunk(chunk_data: Mapping[str, Any], run: RunContext) -> ReingestResult:
    """Load one chunk and record it in ``backfill_runs``; the return value is its XCom."""

    def work(chunk: Chunk, connect: Connector) -> ReingestResult:
        parsed = parse_params(run.params)
        registry = run_transaction(connect, lambda c: load_settings(c, parsed.symbols))
        same_window = parsed.window is not None or run.interval is not None
        source = make_source(
            parsed.source,
            parsed.dbn_path,
            credentials=databento_credentials,
            cache_dir=run_cache_dir(run.dag_id, run.run_id),
            companions=companion_symbols(parsed, registry) if same_window else {},
        )
        settings = registry[parse_symbol(chunk.symbol)]
        return load_chunk(chunk, settings, parsed, source, connect)

    return run_audited(chunk_data, work, run)


def summarize(planned: Sequence[ChunkData] | None, run: RunContext) -> dict[str, Any]:
    """Per-chunk table and totals; the run's Databento cache is dropped when all succeeded."""
    return summarize_run(
        planned, SUMMARY_COLUMNS, run, on_success=lambda: drop_run_cache(run.dag_id, run.run_id)
    )
