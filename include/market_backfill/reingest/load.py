"""Planning an ``ohlcv_reingest`` run and loading one chunk.

A chunk (one symbol, one month cut to the range) is loaded as one idempotent unit:
fetch bars from the source, validate them (hygiene), upsert them into
``market_bars_ohlcv_1m_clean`` through the shared batch inserter (500-row committed
batches). Re-running a chunk gives the same table; only changed bars are rewritten.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict

import numpy as np
from psycopg import sql

from market_backfill.db.changes import confirm_write, log_write
from market_backfill.db.connection import Connection, Connector, first_value, run_transaction
from market_backfill.db.copy_binary import BinaryKind
from market_backfill.db.inserter import Cadence, ConflictPolicy, write_rows
from market_backfill.db.tables import CLEAN_TABLE
from market_backfill.names import BAR_COLUMNS, CATCHUP_LOOKBACK, MINUTE
from market_backfill.planning import Chunk, ChunkData, PlanRequest, Range, plan_ranges
from market_backfill.reingest.params import ReingestParams, parse_params
from market_backfill.sources import BarSource
from market_backfill.sources.dbn import BAR_FRAME_COLUMNS, Bars
from market_backfill.summary import ChunkHeader
from market_backfill.symbols import Series, Symbol, SymbolSettings
from market_backfill.timeutil import from_ns

log = logging.getLogger(__name__)

CLEAN_COLUMNS = ("symbol", "roll_rule", "rank", *BAR_COLUMNS[1:], "instrument_id")
"""What a chunk writes to the clean table: a bar frame plus its series."""
BAR_BINARY: dict[str, BinaryKind] = {
    "symbol": "text",
    "roll_rule": "text",
    "rank": "int2",
    "ts": "ts_ns",
    "open": "numeric9",
    "high": "numeric9",
    "low": "numeric9",
    "close": "numeric9",
    "volume": "int8",
    "instrument_id": "int8",
}
"""The clean table's columns as binary COPY kinds: prices go as exact numerics built from
the int64 fixed-point values, nothing is printed or parsed."""
BAR_UPSERT = ConflictPolicy(
    key=("symbol", "roll_rule", "rank", "ts"),
    update=("open", "high", "low", "close", "volume", "instrument_id"),
    changed_only=True,
    touch=("updated_at",),
)


def clean_rows(bars: Mapping[str, Any], series: Series) -> Bars:
    """A bar frame (with ``instrument_id``; or anything whose columns index by name) as
    rows of the clean table, numpy columns: the series added."""
    rows = {c: np.asarray(bars[c]) for c in BAR_FRAME_COLUMNS}
    n = len(rows["ts"])
    rows["roll_rule"] = np.full(n, series.roll_rule, dtype=object)
    rows["rank"] = np.full(n, series.rank, dtype=np.int16)
    return rows


def _log_write(connect: Connector, series: Series, rows: Bars) -> int | None:
    """Log the range about to be written (committed before the write), for the stages
    derived from the bars; None when there is nothing to write."""
    ts = rows["ts"]
    if not len(ts):
        return None
    first, last = from_ns(int(ts.min())), from_ns(int(ts.max()))
    return run_transaction(connect, lambda c: log_write(c, series, first, last), what="log")


class ReingestSummary(TypedDict):
    """The per-chunk summary columns of ``ohlcv_reingest`` before the write's cadence."""

    rows_in: int
    rows_valid: int
    rows_skipped: dict[str, int]  # by hygiene reason; reasons with no skip left out
    rows_written: int  # inserted or changed


class ReingestResult(ChunkHeader, ReingestSummary, Cadence):
    """One chunk's XCom: the summary plus which chunk, series and source."""

    source: str
    series: str  # the continuous symbol loaded, e.g. NQ.v.0


def last_bar_times(conn: Connection, series: Sequence[Series]) -> dict[Series, datetime | None]:
    """The newest stored bar per series: one probe of the primary key's last entry each
    (``ORDER BY ts DESC LIMIT 1``, not ``max(ts)``, whose plan may read every entry of the
    series while the table's statistics lag behind a bulk load)."""
    out: dict[Series, datetime | None] = {}
    query = sql.SQL(
        "SELECT ts FROM {} WHERE symbol = %s AND roll_rule = %s AND rank = %s "
        "ORDER BY ts DESC LIMIT 1"
    ).format(sql.Identifier(CLEAN_TABLE))
    with conn.cursor() as cur:
        for one in series:
            cur.execute(query, one.key)
            out[one] = first_value(cur.fetchone())
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

    def catch_up(
        conn: Connection, registry: Mapping[Symbol, SymbolSettings]
    ) -> dict[Symbol, Range]:
        series = [registry[s].series(parsed.roll_rule, parsed.rank) for s in parsed.symbols]
        last = last_bar_times(conn, series)
        for one in (s for s, ts in last.items() if ts is None):
            log.info("%s: no stored bars; catch-up starts %s before the end", one, CATCHUP_LOOKBACK)
        return {
            s.symbol: (ts + MINUTE if ts else end - CATCHUP_LOOKBACK, end) for s, ts in last.items()
        }

    return plan_ranges(request, parsed.symbols, parsed.window, catch_up)


def load_chunk(
    chunk: Chunk,
    settings: SymbolSettings,
    parsed: ReingestParams,
    source: BarSource,
    connect: Connector,
) -> ReingestResult:
    """Fetch, validate and upsert one chunk; return its counts (the chunk's XCom).

    Transaction behaviour: every 500-row batch is committed on its own, over
    ``parsed.writers`` connections at once (the hygiene's rows are unique and in key
    order); a lost connection retries the batch; the upsert makes any re-run (task retry,
    cleared task) harmless.
    """
    from market_backfill.reingest.hygiene import validate_bars

    started = time.monotonic()
    symbol = settings.symbol
    series = settings.series(parsed.roll_rule, parsed.rank)
    raw = source.fetch(
        symbol.dataset, {series.continuous: symbol.key}, chunk.start_dt, chunk.end_dt
    )
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
    rows = clean_rows(checked.bars, series)
    change_id = _log_write(connect, series, rows)
    stats = write_rows(
        connect,
        CLEAN_TABLE,
        CLEAN_COLUMNS,
        BAR_UPSERT,
        rows,
        binary=BAR_BINARY,
        batch_size=parsed.batch_size,
        writers=parsed.writers,
    )
    if change_id is not None:
        run_transaction(connect, lambda c: confirm_write(c, change_id, stats.written))
    counts = ReingestResult(
        symbol=symbol.key,
        chunk=chunk.label,
        start=chunk.start,
        end=chunk.end,
        source=source.name,
        series=series.continuous,
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
