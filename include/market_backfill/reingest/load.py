"""Planning an ``ohlcv_reingest`` run and loading one chunk.

A chunk (one symbol, one month cut to the range) is loaded as one idempotent unit:
fetch bars from the source, validate them (hygiene), upsert them into
``market_bars_ohlcv_1m_clean`` through the shared batch inserter (500-row committed
batches). Re-running a chunk gives the same table; only changed bars are rewritten.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TypedDict

from psycopg import sql

from market_backfill.db.connection import Connection, Connector
from market_backfill.db.copy_format import ColumnKind
from market_backfill.db.inserter import BatchInserter, Cadence, ConflictPolicy
from market_backfill.db.tables import CLEAN_TABLE
from market_backfill.names import BAR_COLUMNS, CATCHUP_LOOKBACK, MINUTE
from market_backfill.planning import Chunk, ChunkData, PlanRequest, Range, plan_ranges
from market_backfill.reingest.hygiene import validate_bars
from market_backfill.reingest.params import ReingestParams, parse_params
from market_backfill.sources import BarSource
from market_backfill.summary import ChunkHeader
from market_backfill.symbols import Symbol, SymbolSettings

log = logging.getLogger(__name__)

BAR_KINDS: dict[str, ColumnKind] = {
    "symbol": "text",
    "ts": "ts_ns",
    "open": "fixed9",
    "high": "fixed9",
    "low": "fixed9",
    "close": "fixed9",
    "volume": "int",
}
BAR_UPSERT = ConflictPolicy(
    key=("symbol", "ts"),
    update=("open", "high", "low", "close", "volume"),
    changed_only=True,
    touch=("updated_at",),
)


class ReingestSummary(TypedDict):
    """The per-chunk summary columns of ``ohlcv_reingest`` before the write's cadence."""

    rows_in: int
    rows_valid: int
    rows_skipped: dict[str, int]  # by hygiene reason; reasons with no skip left out
    rows_written: int  # inserted or changed


class ReingestResult(ChunkHeader, ReingestSummary, Cadence):
    """One chunk's XCom: the summary plus which chunk and which source."""

    source: str


def last_bar_times(conn: Connection, symbols: Sequence[Symbol]) -> dict[Symbol, datetime | None]:
    """The newest stored bar per symbol (one index-only probe each)."""
    out: dict[Symbol, datetime | None] = {}
    query = sql.SQL("SELECT max(ts) FROM {} WHERE symbol = %s").format(sql.Identifier(CLEAN_TABLE))
    with conn.cursor() as cur:
        for sym in symbols:
            cur.execute(query, (sym.key,))
            out[sym] = cur.fetchone()[0]
    return out


def plan_run(request: PlanRequest) -> list[ChunkData]:
    """Validate params and symbols, then cut the work into chunks.

    With dates: ``[start, end + 1 day)`` for every symbol. Catch-up mode (no dates): per
    symbol from the minute after its last stored bar (or ``CATCHUP_LOOKBACK`` before the
    end when nothing is stored) up to ``run_end`` (the run's data interval end; now for a
    manual run), never beyond now.
    """
    parsed = parse_params(request.params)
    end = request.catch_up_end

    def catch_up(conn: Connection) -> dict[Symbol, Range]:
        last = last_bar_times(conn, parsed.symbols)
        for sym in (s for s, ts in last.items() if ts is None):
            log.info("%s: no stored bars; catch-up starts %s before the end", sym, CATCHUP_LOOKBACK)
        return {s: (ts + MINUTE if ts else end - CATCHUP_LOOKBACK, end) for s, ts in last.items()}

    return plan_ranges(request, parsed.symbols, parsed.window, catch_up)


def load_chunk(
    chunk: Chunk,
    settings: SymbolSettings,
    parsed: ReingestParams,
    source: BarSource,
    connect: Connector,
) -> ReingestResult:
    """Fetch, validate and upsert one chunk; return its counts (the chunk's XCom).

    Transaction behaviour: every 500-row batch is committed on its own; a lost connection
    retries the batch; the upsert makes any re-run (task retry, cleared task) harmless.
    """
    started = time.monotonic()
    symbol = settings.symbol
    continuous = symbol.continuous(parsed.roll_rule, parsed.rank)
    raw = source.fetch(symbol.dataset, {continuous: symbol.key}, chunk.start_dt, chunk.end_dt)
    fetched_s = time.monotonic() - started
    checked = validate_bars(raw, settings.price_floor_fixed)
    skipped = {k: v for k, v in checked.skipped.items() if v}
    log.info(
        "%s: %d bars in, %d valid, skipped %s (source %s, %.2fs)",
        chunk.label,
        checked.rows_in,
        checked.rows_valid,
        skipped or "none",
        source.name,
        fetched_s,
    )
    with BatchInserter(
        connect,
        CLEAN_TABLE,
        BAR_COLUMNS,
        BAR_UPSERT,
        kinds=BAR_KINDS,
        batch_size=parsed.batch_size,
    ) as inserter:
        stats = inserter.insert(checked.bars)
    counts = ReingestResult(
        symbol=symbol.key,
        chunk=chunk.label,
        start=chunk.start,
        end=chunk.end,
        source=source.name,
        rows_in=checked.rows_in,
        rows_valid=checked.rows_valid,
        rows_skipped=skipped,
        rows_written=stats.written,
        **stats.cadence(),
        seconds=round(time.monotonic() - started, 3),
    )
    log.info(
        "%s: done: %d valid bars, %d written, %d batches, %d commits, %d retries in %.2fs",
        chunk.label,
        checked.rows_valid,
        stats.written,
        stats.batches,
        stats.commits,
        stats.retries,
        counts["seconds"],
    )
    return counts
