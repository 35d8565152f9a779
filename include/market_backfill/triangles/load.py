"""Planning a ``triangle_backfill`` run and computing one chunk.

A chunk (one symbol, one month cut to the range) reads its bars from the start of the
segment (anchor) containing its first minute, so its events are exactly those a single
run over the whole range gives; only events inside the chunk are written (insert-ignore,
so a re-run adds nothing; with ``purge`` the chunk's rows for the same settings are
deleted first, in their own transaction, and written again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TypedDict

from psycopg import sql

from market_backfill.db.changes import (
    absorbed_change,
    changed_since,
    confirm_pending,
    note_pending,
)
from market_backfill.db.connection import Connection, Connector, first_value, run_transaction
from market_backfill.db.inserter import Cadence, write_rows
from market_backfill.db.tables import EVENTS_TABLE, TRIANGLE_PROGRESS_TABLE
from market_backfill.names import CATCHUP_LOOKBACK, MINUTE, MINUTE_NS
from market_backfill.planning import Chunk, ChunkData, PlanRequest, Range, plan_ranges
from market_backfill.summary import ChunkHeader
from market_backfill.symbols import Series, Symbol, SymbolSettings, load_settings
from market_backfill.timeutil import from_ns, to_ns
from market_backfill.triangles.bars import good_bars, read_bars, reason_counts
from market_backfill.triangles.engine import (
    TriangleSettings,
    run_engine,
    segment_end,
    segment_start,
)
from market_backfill.triangles.params import TriangleParams, parse_params
from market_backfill.triangles.store import (
    EVENT_BINARY,
    EVENT_COLUMNS,
    EVENT_INSERT_IGNORE,
    event_rows,
    purge_range,
    settings_filter,
    settings_key,
)

log = logging.getLogger(__name__)


class TriangleSummary(TypedDict):
    """The per-chunk summary columns of ``triangle_backfill`` before the write's cadence."""

    bars: int  # bars inside the chunk
    bad_bars: dict[str, int]  # by hygiene reason
    triangles: int
    inserted: int


class TriangleResult(ChunkHeader, TriangleSummary, Cadence):
    """One chunk's XCom: the summary plus the source table and the preloaded bars."""

    source_table: str
    preload_bars: int


def plan_run(request: PlanRequest) -> list[ChunkData]:
    """Validate params and cut the work into chunks.

    Catch-up mode (no dates): per symbol from its latest event for these settings (or
    ``CATCHUP_LOOKBACK`` before the end) up to the minute after its last stored bar,
    capped by the run's end; events are never repainted, so nothing written changes.
    """
    parsed = parse_params(request.params)
    cap = request.catch_up_end
    table = parsed.table

    def catch_up(
        conn: Connection, registry: Mapping[Symbol, SymbolSettings]
    ) -> dict[Symbol, list[Range]]:
        where = "symbol = %s" if parsed.legacy else "symbol = %s AND roll_rule = %s AND rank = %s"
        # ORDER BY ts DESC LIMIT 1, not max(ts): one probe of the key's last entry
        # whatever the statistics say after a bulk load
        last_bar = sql.SQL("SELECT ts FROM {} WHERE {} ORDER BY ts DESC LIMIT 1").format(
            sql.Identifier(table), sql.SQL(where)
        )
        ranges: dict[Symbol, list[Range]] = {}
        with conn.cursor() as cur:
            for sym in parsed.symbols:
                series = registry[sym].series(parsed.roll_rule, parsed.rank)
                cur.execute(last_bar, series.key[:1] if parsed.legacy else series.key)
                bar = first_value(cur.fetchone())
                if bar is None:
                    log.info("%s: no bars in %s; nothing to catch up", series, table)
                    continue
                end = min(bar + MINUTE, cap)
                cond, values = settings_filter(parsed, series)
                cur.execute(
                    sql.SQL("SELECT ts FROM {} WHERE {} ORDER BY ts DESC LIMIT 1").format(
                        sql.Identifier(EVENTS_TABLE), cond
                    ),
                    values,
                )
                event = first_value(cur.fetchone())
                start = event + MINUTE if event else end - CATCHUP_LOOKBACK
                ranges[sym] = [(start, end)]
                if not parsed.legacy:  # bars changed since these settings last caught up
                    tri = symbol_triangles(parsed, registry[sym])
                    changed = _changed_range(conn, series, parsed, tri, end)
                    if changed is not None:
                        ranges[sym].append(changed)
        return ranges

    return plan_ranges(request, parsed.symbols, parsed.window, catch_up)


def symbol_triangles(parsed: TriangleParams, symbol: SymbolSettings) -> TriangleSettings:
    """The run's settings with the symbol's session anchor (where its segments start)."""
    return replace(parsed.settings, session_anchor=symbol.session_anchor)


def _changed_range(
    conn: Connection, series: Series, parsed: TriangleParams, tri: TriangleSettings, end: datetime
) -> Range | None:
    """The segments holding bars of ``series`` changed since these settings last caught
    up, cut at ``end``. In the plan's transaction their events of these settings are
    deleted (the chunks write them again from the bars as stored now) and the newest
    change is noted as pending: absorbed when the run succeeds (:func:`absorb_changes`),
    else found again by the next catch-up."""
    key = settings_key(parsed)
    changed = changed_since(
        conn, series, absorbed_change(conn, TRIANGLE_PROGRESS_TABLE, series, key)
    )
    if changed is None:
        return None
    first, last, newest = changed
    note_pending(conn, TRIANGLE_PROGRESS_TABLE, series, key, newest)
    lo = from_ns(segment_start(to_ns(first), tri))
    seg_end = segment_end(to_ns(last), tri)
    hi = end if seg_end is None else min(end, from_ns(seg_end))
    if lo >= hi:
        return None
    deleted = purge_range(conn, series, parsed, lo, hi)
    log.info(
        "%s: bars changed %s .. %s: recomputing %s .. %s (%d events removed)",
        series,
        first,
        last,
        lo,
        hi,
        deleted,
    )
    return lo, hi


def absorb_changes(connect: Connector, parsed: TriangleParams) -> None:
    """After a successful catch-up run: the bar changes it covered are absorbed."""
    key = settings_key(parsed)

    def work(conn: Connection) -> None:
        registry = load_settings(conn, parsed.symbols)
        for sym in parsed.symbols:
            confirm_pending(
                conn,
                TRIANGLE_PROGRESS_TABLE,
                registry[sym].series(parsed.roll_rule, parsed.rank),
                key,
            )

    run_transaction(connect, work, what="triangle progress")


def triangle_chunk(
    chunk: Chunk,
    symbol_settings: SymbolSettings,
    parsed: TriangleParams,
    connect: Connector,
) -> TriangleResult:
    """Compute and write one chunk's triangles; return its counts (the chunk's XCom).

    Transaction behaviour: the bars are read in one transaction; ``purge`` deletes in
    another; the events are written in committed batches (insert-ignore; over
    ``parsed.writers`` connections at once, the rows unique and in key order), so a
    re-run after any failure writes what is missing and nothing twice."""
    started = time.monotonic()
    tri = symbol_triangles(parsed, symbol_settings)
    legacy, table = parsed.legacy, parsed.table
    series = symbol_settings.series(parsed.roll_rule, parsed.rank)
    lo, hi = to_ns(chunk.start_dt), to_ns(chunk.end_dt)
    read_from = segment_start(lo, tri)
    shift = MINUTE_NS if legacy else 0  # legacy ts is the CLOSE time: open = ts - 1 minute
    bars = run_transaction(
        connect,
        lambda c: read_bars(
            c, table, series, read_from + shift, hi + shift, legacy=legacy, connect=connect
        ),
        what="read bars",
    )
    bars["ts"] = bars["ts"] - shift
    good, codes = good_bars(bars, legacy, symbol_settings, tri)
    in_chunk = bars["ts"] >= lo
    g = {k: v[good] for k, v in bars.items()}
    result = run_engine(g["ts"], g["open"], g["high"], g["low"], g["close"], tri)
    events = result.event_columns(g["ts"])
    keep = events["ts"] >= lo
    events = {name: values[keep] for name, values in events.items()}
    computed_s = time.monotonic() - started
    rows = event_rows(events, series, parsed)
    if parsed.purge:
        deleted = run_transaction(
            connect,
            lambda c: purge_range(c, series, parsed, chunk.start_dt, chunk.end_dt),
            what="purge",
        )
        log.info("%s: purge removed %d events of these settings", chunk.label, deleted)
    stats = write_rows(
        connect,
        EVENTS_TABLE,
        EVENT_COLUMNS,
        EVENT_INSERT_IGNORE,
        rows,
        binary=EVENT_BINARY,
        batch_size=parsed.batch_size,
        writers=parsed.writers,
    )
    counts = TriangleResult(
        symbol=symbol_settings.symbol.key,
        chunk=chunk.label,
        start=chunk.start,
        end=chunk.end,
        source_table=parsed.source_table,
        bars=int(in_chunk.sum()),
        bad_bars=reason_counts(codes[in_chunk]),
        preload_bars=int((~in_chunk).sum()),
        triangles=int(keep.sum()),
        inserted=stats.written,
        **stats.cadence(),
        seconds=round(time.monotonic() - started, 3),
    )
    log.info(
        "%s: %d bars (+%d preload), bad %s, %d triangles, %d inserted, %d batches, %d commits, "
        "%d retries; engine %.2fs, total %.2fs",
        chunk.label,
        counts["bars"],
        counts["preload_bars"],
        counts["bad_bars"] or "none",
        counts["triangles"],
        stats.written,
        stats.batches,
        stats.commits,
        stats.retries,
        computed_s,
        counts["seconds"],
    )
    return counts
