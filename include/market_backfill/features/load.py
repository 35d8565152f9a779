"""Planning a ``feature_backfill`` run and computing its chunks.

A run has two mapped stages over the same (series, month) chunks:

1. **rollup**: the chunk's buckets (by bucket start) of every requested higher timeframe,
   from the clean 1-minute bars into ``market_bars_ohlcv_agg`` (changed or newly complete
   buckets are rewritten, unchanged ones left alone);
2. **features**: per timeframe, the bars from the month's warm-up origin
   (:mod:`market_backfill.features.compute`) through the chunk's end, one pass, the rows
   inside the chunk written. Higher-timeframe bars come from ``market_bars_ohlcv_agg``;
   the warm-up part is checked against the 1-minute bars (their count must equal the
   buckets' ``bars``) and, when the stored history is short (never rolled up, or a month
   still being rolled up), rolled up in memory instead. Either way the values are the
   same bits.

Catch-up (no dates): per series from its oldest newest-feature row over the requested
timeframes (inclusive: the newest bucket may have been incomplete), aligned down to its
session's open, to the newest bar; plus the bars changed since (``bar_changes``) and a
horizon after them long enough for the recursive features to settle. Catch-up and
``force_recalc`` rewrite rows whose values differ; dates alone write only missing rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TypedDict

import numpy as np

from market_backfill.db.changes import (
    absorbed_change,
    changed_since,
    confirm_pending,
    note_pending,
)
from market_backfill.db.connection import Connection, Connector, run_transaction
from market_backfill.db.inserter import BatchInserter, Cadence, InsertStats
from market_backfill.db.tables import AGG_TABLE, FEATURE_PROGRESS_TABLE, FEATURES_TABLE
from market_backfill.features.columns import WARMUP_BARS, Features
from market_backfill.features.compute import (
    bar_features,
    month_start_ns,
    origin_index,
    session_open_ns,
)
from market_backfill.features.params import FeatureParams, parse_params
from market_backfill.features.rollup import Bars, rollup
from market_backfill.features.store import (
    AGG_BINARY,
    AGG_COLUMNS,
    AGG_UPSERT,
    FEATURE_BINARY,
    FEATURE_ROW_COLUMNS,
    FEATURES_MISSING_ONLY,
    FEATURES_REFRESH,
    agg_rows,
    bar_span,
    count_minutes,
    feature_rows,
    missing_features,
    newest_feature,
    nth_bar_before,
    read_bars,
)
from market_backfill.features.timeframes import NOMINAL_NS, bucket_ends
from market_backfill.names import MINUTE, Timeframe
from market_backfill.planning import Chunk, ChunkData, PlanRequest, Range, plan_ranges
from market_backfill.summary import ChunkHeader
from market_backfill.symbols import Series, Symbol, SymbolSettings, load_settings
from market_backfill.timeutil import from_ns, to_ns

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BUCKET_SPILL = timedelta(days=2)
"""A bucket starting before a chunk's end ends at most a session (about a day) later."""
CALENDAR_PER_BAR = 1.6
"""Calendar time per bar's nominal length, with weekends and holidays (a 1d bar: 1.6 days)."""
ROLLUP_SUFFIX = " agg"
"""The rollup stage's chunks are audited as ``<month> agg`` beside the feature chunks."""


class RollupSummary(TypedDict):
    """The rollup columns of the per-chunk summary."""

    bars: int  # 1-minute bars read
    agg_written: dict[str, int]  # rolled-up bars inserted or changed, per timeframe


class FeatureSummary(TypedDict):
    """The feature columns of the per-chunk summary."""

    bars_read: int  # bars of every timeframe read, warm-up included
    computed: dict[str, int]  # feature rows of the chunk computed, per timeframe
    written: dict[str, int]  # feature rows inserted or changed, per timeframe
    warmup_rolled: int  # warm-ups rolled up in memory (stored history short)


class RollupResult(ChunkHeader, RollupSummary, Cadence):
    """One rollup chunk's XCom."""


class FeatureResult(ChunkHeader, FeatureSummary, Cadence):
    """One feature chunk's XCom."""


def horizon(tf: Timeframe) -> timedelta:
    """Calendar time holding :data:`WARMUP_BARS` bars of ``tf``, generously."""
    return timedelta(microseconds=WARMUP_BARS * NOMINAL_NS[tf] * CALENDAR_PER_BAR / 1000)


def session_floor(ts: datetime) -> datetime:
    """The open of the session holding ``ts`` (a bucket boundary of every timeframe)."""
    return from_ns(session_open_ns(to_ns(ts)))


def refreshes(parsed: FeatureParams, interval: Range | None) -> bool:
    """Whether a run overwrites rows whose values differ (catch-up, ``force_recalc``) or
    only inserts missing rows (dates or a data interval)."""
    return parsed.force_recalc or (parsed.window is None and interval is None)


# -- planning -----------------------------------------------------------------------------------


def rollup_variant(chunk: Mapping[str, str]) -> ChunkData:
    """The rollup stage's twin of a chunk: audited and labelled ``<month> agg``."""
    return ChunkData(
        symbol=chunk["symbol"],
        month=chunk["month"] + ROLLUP_SUFFIX,
        start=chunk["start"],
        end=chunk["end"],
        label=chunk["label"] + ROLLUP_SUFFIX,
    )


def plan_run(request: PlanRequest) -> list[ChunkData]:
    """Validate params and cut the work into chunks (both stages map over the same list)."""
    parsed = parse_params(request.params)
    cap = request.catch_up_end

    def ranges(
        conn: Connection, registry: Mapping[Symbol, SymbolSettings]
    ) -> dict[Symbol, list[Range]]:
        out: dict[Symbol, list[Range]] = {}
        for sym in parsed.symbols:
            series = registry[sym].series(parsed.roll_rule, parsed.rank)
            span = bar_span(conn, series)
            if span is None:
                log.info("%s: no bars stored; nothing to compute", series)
                continue
            first, last = span
            end = min(last + MINUTE, cap)
            if parsed.force_recalc:
                hi = parsed.window[1] if parsed.window else end
                if parsed.since < hi:
                    out[sym] = [(parsed.since, hi)]
                continue
            newest = [newest_feature(conn, series, tf) for tf in parsed.timeframes]
            start = session_floor(min(first if n is None else n for n in newest))
            out[sym] = [(start, end)] if start < end else []
            changed = _changed_range(conn, series, parsed, end)
            if changed is not None:
                out[sym].append(changed)
        return out

    # with force_recalc the range is since .. end, never the form's window
    window = None if parsed.force_recalc else parsed.window
    return plan_ranges(request, parsed.symbols, window, ranges)


def _changed_range(
    conn: Connection, series: Series, parsed: FeatureParams, end: datetime
) -> Range | None:
    """The bars of ``series`` changed since the requested timeframes last caught up, from
    their session's open to a :func:`horizon` after the last, cut at ``end``; the newest
    change is noted pending for each timeframe (absorbed when the run succeeds)."""
    absorbed = min(
        absorbed_change(conn, FEATURE_PROGRESS_TABLE, series, tf) for tf in parsed.timeframes
    )
    changed = changed_since(conn, series, absorbed)
    if changed is None:
        return None
    first, last, newest = changed
    for tf in parsed.timeframes:
        note_pending(conn, FEATURE_PROGRESS_TABLE, series, tf, newest)
    lo = session_floor(first)
    hi = min(end, last + MINUTE + horizon(parsed.timeframes[-1]))
    log.info("%s: bars changed %s .. %s: recomputing %s .. %s", series, first, last, lo, hi)
    return (lo, hi) if lo < hi else None


def absorb_changes(connect: Connector, parsed: FeatureParams) -> None:
    """After a successful catch-up run: the bar changes it covered are absorbed."""

    def work(conn: Connection) -> None:
        registry = load_settings(conn, parsed.symbols)
        for sym in parsed.symbols:
            series = registry[sym].series(parsed.roll_rule, parsed.rank)
            for tf in parsed.timeframes:
                confirm_pending(conn, FEATURE_PROGRESS_TABLE, series, tf)

    run_transaction(connect, work, what="feature progress")


def _add(total: InsertStats, part: InsertStats) -> None:
    total.rows += part.rows
    total.written += part.written
    total.batches += part.batches
    total.commits += part.commits
    total.retries += part.retries


# -- stage 1: rollup ----------------------------------------------------------------------------


def rollup_chunk(
    chunk: Chunk, symbol_settings: SymbolSettings, parsed: FeatureParams, connect: Connector
) -> RollupResult:
    """Roll the chunk's buckets (those starting inside it) of every requested higher
    timeframe up from the 1-minute bars and write them.

    Transaction behaviour: the bars are read in one transaction; the buckets are written in
    committed batches (upsert of what differs; over ``parsed.writers`` connections at once,
    the rows unique and in key order), so a re-run writes nothing new."""
    started = time.monotonic()
    series = symbol_settings.series(parsed.roll_rule, parsed.rank)
    lo, hi = chunk.start_dt, chunk.end_dt

    def read(conn: Connection) -> tuple[tuple[datetime, datetime] | None, Bars]:
        bars = read_bars(conn, series, "1m", lo, hi + BUCKET_SPILL, connect)
        return bar_span(conn, series), bars

    span, bars = run_transaction(connect, read, what="read bars")
    last_ns = to_ns(span[1]) if span else 0
    total, written = InsertStats(), {}
    with BatchInserter(
        connect,
        AGG_TABLE,
        AGG_COLUMNS,
        AGG_UPSERT,
        binary=AGG_BINARY,
        batch_size=parsed.batch_size,
        writers=parsed.writers,
    ) as inserter:
        for tf in parsed.agg_timeframes:
            agg = rollup(bars, tf, last_ns)
            # the chunk's buckets: those starting inside it (one starting before holds
            # bars before ``lo``: the previous chunk's)
            keep = (agg["ts"] >= to_ns(lo)) & (agg["ts"] < to_ns(hi))
            stats = inserter.insert(agg_rows(series, tf, {k: v[keep] for k, v in agg.items()}))
            written[tf] = stats.written
            _add(total, stats)
    result = RollupResult(
        symbol=symbol_settings.symbol.key,
        chunk=chunk.label,
        start=chunk.start,
        end=chunk.end,
        bars=int((bars["ts"] < to_ns(hi)).sum()),
        agg_written=written,
        **total.cadence(),
        seconds=round(time.monotonic() - started, 3),
    )
    log.info(
        "%s: %d bars rolled up, written %s, %d batches, %d commits, %d retries in %.2fs",
        chunk.label,
        result["bars"],
        written,
        total.batches,
        total.commits,
        total.retries,
        result["seconds"],
    )
    return result


# -- stage 2: features --------------------------------------------------------------------------


def _stored_warmup(
    conn: Connection,
    series: Series,
    tf: Timeframe,
    month: datetime,
    lo: datetime,
    hi: datetime,
    connect: Connector,
) -> Bars | None:
    """The ``tf`` bars from the month's origin to ``hi`` as stored, or None when the stored
    buckets before ``lo`` do not hold every 1-minute bar of their span (a long range read
    over two connections, :func:`read_bars`)."""
    nth = nth_bar_before(conn, series, tf, month, WARMUP_BARS)
    session = session_floor(month)
    origin = EPOCH if nth is None else min(nth, session)
    bars = read_bars(conn, series, tf, origin, hi, connect)
    if tf == "1m":
        return bars
    before = bars["ts"] < to_ns(lo)
    if before.any():
        last = int(bars["ts"][before][-1])
        span_end = from_ns(int(bucket_ends(np.array([last]), tf)[0]))
        expected = int(bars["bars"][before].sum())
    else:
        span_end, expected = lo, 0
    counted = count_minutes(conn, series, None if nth is None else origin, span_end)
    return bars if counted == expected else None


def _rolled_warmup(
    conn: Connection,
    series: Series,
    tf: Timeframe,
    month: datetime,
    hi: datetime,
    connect: Connector,
) -> Bars:
    """The ``tf`` bars from the month's origin to ``hi``, rolled up in memory from the
    1-minute bars (from a :func:`horizon` before the month, or the series' first bar;
    read over two connections, :func:`read_bars`)."""
    span = bar_span(conn, series)
    last_ns = to_ns(span[1]) if span else 0
    start = session_floor(month - horizon(tf))
    while True:
        minutes = read_bars(conn, series, "1m", start, hi + BUCKET_SPILL, connect)
        agg = rollup(minutes, tf, last_ns)
        agg = {k: v[agg["ts"] < to_ns(hi)] for k, v in agg.items()}
        enough = int((agg["ts"] < to_ns(month)).sum()) > WARMUP_BARS
        if enough or span is None or start <= span[0]:
            break
        start = EPOCH  # a thin history: from the first bar
    origin = origin_index(agg["ts"], to_ns(month))
    return {k: v[origin:] for k, v in agg.items()}


def feature_chunk(
    chunk: Chunk,
    symbol_settings: SymbolSettings,
    parsed: FeatureParams,
    connect: Connector,
    *,
    refresh: bool,
) -> FeatureResult:
    """Compute and write one chunk's features, timeframe by timeframe.

    Without ``refresh`` a timeframe whose chunk rows all exist is skipped (an anti-join
    count) and only missing rows are inserted; with it rows whose values differ are
    overwritten. Transaction behaviour: each timeframe's bars are read in one transaction;
    rows are written in committed batches (over ``parsed.writers`` connections at once, the
    rows unique and in key order), so a re-run after a failure completes the chunk and
    writes nothing twice."""
    started = time.monotonic()
    series = symbol_settings.series(parsed.roll_rule, parsed.rank)
    lo, hi = chunk.start_dt, chunk.end_dt
    lo_ns, hi_ns = to_ns(lo), to_ns(hi)
    month = from_ns(month_start_ns(lo))
    policy = FEATURES_REFRESH if refresh else FEATURES_MISSING_ONLY
    total, computed, written = InsertStats(), {}, {}
    read_rows = rolled = 0
    with BatchInserter(
        connect,
        FEATURES_TABLE,
        FEATURE_ROW_COLUMNS,
        policy,
        batch_size=parsed.batch_size,
        binary=FEATURE_BINARY,
        writers=parsed.writers,
    ) as inserter:
        for tf in parsed.timeframes:
            if not refresh:
                missing = run_transaction(
                    connect,
                    lambda c, tf=tf: missing_features(c, series, tf, lo, hi),
                    what="anti-join",
                )
                if missing == 0:
                    computed[tf] = written[tf] = 0
                    continue

            def bars_of(conn: Connection, tf: Timeframe = tf) -> tuple[Bars, bool]:
                stored = _stored_warmup(conn, series, tf, month, lo, hi, connect)
                if stored is not None:
                    return stored, False
                return _rolled_warmup(conn, series, tf, month, hi, connect), True

            bars, was_rolled = run_transaction(connect, bars_of, what=f"read {tf} bars")
            rolled += was_rolled
            read_rows += len(bars["ts"])
            features = bar_features(bars)
            keep = (bars["ts"] >= lo_ns) & (bars["ts"] < hi_ns)
            rows = feature_rows(
                series, tf, bars["ts"][keep], Features(*(f[keep] for f in features))
            )
            stats = inserter.insert(rows)
            inserter.close()  # its connection back to the task's connector for the next read
            computed[tf], written[tf] = int(keep.sum()), stats.written
            _add(total, stats)
    result = FeatureResult(
        symbol=symbol_settings.symbol.key,
        chunk=chunk.label,
        start=chunk.start,
        end=chunk.end,
        bars_read=read_rows,
        computed=computed,
        written=written,
        warmup_rolled=rolled,
        **total.cadence(),
        seconds=round(time.monotonic() - started, 3),
    )
    log.info(
        "%s: %d bars read, computed %s, written %s, %d warm-ups rolled in memory, %d batches, "
        "%d commits, %d retries in %.2fs",
        chunk.label,
        read_rows,
        computed,
        written,
        rolled,
        total.batches,
        total.commits,
        total.retries,
        result["seconds"],
    )
    return result
