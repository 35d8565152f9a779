"""The ``triangle_backfill`` stage: bars -> triangle events in ``triangle_events_v1``.

A chunk (one symbol, one month cut to the range) reads its bars from the start of the
segment (anchor) containing its first minute, so its events are exactly those a single
run over the whole range gives; only events inside the chunk are written (insert-ignore,
so a re-run adds nothing; with ``purge`` the chunk's rows for the same settings are
deleted first and written again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from psycopg import sql

from market_backfill.bias_kernel import legacy_good
from market_backfill.db import Connector, run_transaction
from market_backfill.inserter import DEFAULT_BATCH_SIZE, BatchInserter, ConflictPolicy
from market_backfill.planning import (
    Chunk,
    ParamError,
    date_range,
    floor_minute,
    param_batch_size,
    param_symbols,
    plan,
    require_known,
    summarize_plan,
)
from market_backfill.reingest import CLEAN_TABLE
from market_backfill.symbols import (
    Symbol,
    SymbolSettings,
)
from market_backfill.timeutil import from_ns, to_ns
from market_backfill.triangle_engine import (
    LOGIC_VERSION,
    MINUTE_NS,
    TriangleSettings,
    run_engine,
    segment_of,
    segment_start,
)

log = logging.getLogger(__name__)

EVENTS_TABLE = "triangle_events_v1"
LEGACY_TABLE = "market_bars_ohlcv_1m"
SOURCE_TABLES = {"clean": CLEAN_TABLE, "legacy": LEGACY_TABLE}
CATCHUP_LOOKBACK = timedelta(days=7)
FIXED = 1_000_000_000
SETTING_COLUMNS = (
    "anchor",
    "warmup",
    "htf_aligned_only",
    "use_5m",
    "use_15m",
    "use_1h",
    "use_4h",
    "use_1d",
    "require_engulfing",
    "require_sweep_engulfing",
)
EVENT_COLUMNS = (
    "symbol",
    "ts",
    "direction",
    "bias_1m",
    "bias_5m",
    "bias_15m",
    "bias_1h",
    "bias_4h",
    "bias_1d",
    "htf_bullish",
    "htf_bearish",
    *SETTING_COLUMNS,
    "source_table",
    "logic_version",
)
EVENT_KINDS = {"ts": "ts_ns", "warmup": "int"}
EVENT_KEY = ("symbol", "ts", "direction", *SETTING_COLUMNS, "source_table", "logic_version")
LEGACY_REASONS = {
    1: "OHLC_INTEGRITY",
    2: "PRICE_FLOOR",
    3: "DISCONTINUITY",
    4: "SMALL_RANGE_BIG_GAP",
    5: "FLAT_DISCONTINUITY",
}


@dataclass(frozen=True)
class TriangleParams:
    """Validated ``triangle_backfill`` params."""

    symbols: tuple[Symbol, ...]
    window: tuple[datetime, datetime] | None
    settings: TriangleSettings
    source_table: str
    purge: bool
    batch_size: int = DEFAULT_BATCH_SIZE


def parse_params(params: Mapping[str, Any]) -> TriangleParams:
    """Validate the DAG params; raise :class:`ParamError` naming the first bad one."""
    symbols = param_symbols(params)
    window = date_range(params.get("start"), params.get("end"))
    source = params.get("source_table", "clean")
    if source not in SOURCE_TABLES:
        raise ParamError(f"param 'source_table' must be 'clean' or 'legacy', got {source!r}")
    if source == "legacy" and not params.get("allow_legacy"):
        raise ParamError(
            "param 'source_table' is 'legacy', which needs 'allow_legacy': true: the legacy "
            "table stamps bars with their CLOSE time and carries known corruption; prefer "
            "'clean'"
        )
    flags = {
        k: bool(params.get(k, False)) for k in SETTING_COLUMNS if k not in ("anchor", "warmup")
    }
    try:
        settings = TriangleSettings(
            anchor=params.get("anchor", "weekly"),
            anchor_at=params.get("anchor_at") or None,
            warmup=params.get("warmup", 5),
            **flags,
        )
    except ValueError as exc:
        name = "warmup" if "warmup" in str(exc) else "anchor"
        raise ParamError(f"param '{name}': {exc}") from None
    batch_size = param_batch_size(params, DEFAULT_BATCH_SIZE)
    return TriangleParams(symbols, window, settings, source, bool(params.get("purge")), batch_size)


def _settings_filter(p: TriangleParams) -> tuple[sql.Composable, list[Any]]:
    row = p.settings.as_row()
    cols = [*SETTING_COLUMNS, "source_table", "logic_version"]
    values = [row[c] for c in SETTING_COLUMNS] + [p.source_table, LOGIC_VERSION]
    cond = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in cols)
    return cond, values


def plan_run(
    connect: Connector,
    params: Mapping[str, Any],
    *,
    run_end: datetime | None,
    now: datetime | None = None,
    max_chunks: int = 1024,
) -> list[dict[str, str]]:
    """Validate params and cut the work into chunks.

    Catch-up mode (no dates): per symbol from its latest event for these settings (or
    ``CATCHUP_LOOKBACK`` before the end) up to the minute after its last stored bar,
    capped by the run's end; events are never repainted, so nothing written changes.
    """
    parsed = parse_params(params)
    now = floor_minute(now or datetime.now(UTC))
    table = SOURCE_TABLES[parsed.source_table]

    def work(conn: Any) -> dict[Symbol, tuple[datetime, datetime]]:
        require_known(conn, parsed.symbols)
        if parsed.window is not None:
            return dict.fromkeys(parsed.symbols, parsed.window)
        cond, values = _settings_filter(parsed)
        last_event = sql.SQL("SELECT max(ts) FROM {} WHERE symbol = %s AND {}").format(
            sql.Identifier(EVENTS_TABLE), cond
        )
        last_bar = sql.SQL("SELECT max(ts) FROM {} WHERE symbol = %s").format(sql.Identifier(table))
        cap = min(floor_minute(run_end) if run_end else now, now)
        ranges = {}
        with conn.cursor() as cur:
            for sym in parsed.symbols:
                cur.execute(last_bar, (sym.key,))
                bar = cur.fetchone()[0]
                if bar is None:
                    log.info("%s: no bars in %s; nothing to catch up", sym, table)
                    continue
                end = min(bar + timedelta(minutes=1), cap)
                cur.execute(last_event, [sym.key, *values])
                event = cur.fetchone()[0]
                start = event + timedelta(minutes=1) if event else end - CATCHUP_LOOKBACK
                ranges[sym] = (start, end)
        return ranges

    ranges = run_transaction(connect, work, what="plan")
    chunks = plan(ranges, max_chunks=max_chunks)
    log.info("plan: %s", summarize_plan(chunks))
    return chunks


# -- reading and cleaning bars ---------------------------------------------------------------


def read_bars(conn: Any, table: str, symbol: str, lo_ns: int, hi_ns: int) -> dict[str, np.ndarray]:
    """Bars of ``symbol`` with stored ``ts`` in ``[lo, hi)`` as int64 arrays (prices
    fixed-point 1e-9, exactly as stored), ordered by ts. One indexed range scan."""
    query = sql.SQL(
        "SELECT (extract(epoch FROM ts) * 1000000)::int8, (open * 1000000000)::int8, "
        "(high * 1000000000)::int8, (low * 1000000000)::int8, (close * 1000000000)::int8 "
        "FROM {} WHERE symbol = %s AND ts >= %s AND ts < %s ORDER BY ts"
    ).format(sql.Identifier(table))
    with conn.cursor() as cur:
        cur.execute(query, (symbol, from_ns(lo_ns), from_ns(hi_ns)))
        rows = cur.fetchall()
    arr = np.array(rows, dtype=np.int64).reshape(-1, 5)
    return {
        "ts": arr[:, 0] * 1000,
        "open": arr[:, 1],
        "high": arr[:, 2],
        "low": arr[:, 3],
        "close": arr[:, 4],
    }


def good_bars(
    bars: dict[str, np.ndarray],
    legacy: bool,
    settings: SymbolSettings,
    tri: TriangleSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """(good mask, reason code per bar): clean table: OHLC integrity and the price floor;
    legacy table: those plus the jump heuristics against the previous good bar's close in
    the same segment (triangle-signals.md section 1)."""
    o, h, low, c = (bars[k] for k in ("open", "high", "low", "close"))
    floor = settings.price_floor_fixed
    if legacy:
        seg = segment_of(bars["ts"], tri)
        new_seg = np.ones(len(seg), dtype=bool)
        new_seg[1:] = seg[1:] != seg[:-1]
        codes = legacy_good(
            o,
            h,
            low,
            c,
            new_seg,
            floor,
            int(settings.discontinuity * FIXED),
            int(settings.small_range * FIXED),
            int(settings.small_range_gap * FIXED),
            int(settings.flat_discontinuity * FIXED),
        )
    else:
        codes = np.zeros(len(o), dtype=np.int8)
        codes[(h < np.maximum(o, c)) | (low > np.minimum(o, c)) | (h < low)] = 1
        below = np.minimum(np.minimum(o, h), np.minimum(low, c)) < floor
        codes[(codes == 0) & below] = 2
    return codes == 0, codes


def reason_counts(codes: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(codes[codes > 0], return_counts=True)
    return {LEGACY_REASONS[int(v)]: int(n) for v, n in zip(values, counts, strict=True)}


# -- one chunk -------------------------------------------------------------------------------


def triangle_chunk(
    chunk: Chunk,
    symbol_settings: SymbolSettings,
    parsed: TriangleParams,
    connect: Connector,
) -> dict[str, Any]:
    """Compute and write one chunk's triangles; return its counts (the chunk's XCom)."""
    started = time.monotonic()
    tri = parsed.settings
    legacy = parsed.source_table == "legacy"
    table = SOURCE_TABLES[parsed.source_table]
    lo, hi = to_ns(chunk.start_dt), to_ns(chunk.end_dt)
    read_from = segment_start(lo, tri)
    shift = MINUTE_NS if legacy else 0  # legacy ts is the CLOSE time: open = ts - 1 minute
    bars = run_transaction(
        connect,
        lambda c: read_bars(c, table, symbol_settings.symbol.key, read_from + shift, hi + shift),
        what="read bars",
    )
    bars["ts"] = bars["ts"] - shift
    good, codes = good_bars(bars, legacy, symbol_settings, tri)
    in_chunk = bars["ts"] >= lo
    g = {k: v[good] for k, v in bars.items()}
    result = run_engine(g["ts"], g["open"], g["high"], g["low"], g["close"], tri)
    events = result.events(g["ts"])
    events = events[events["ts"] >= lo].reset_index(drop=True)
    computed_s = time.monotonic() - started
    rows = _event_rows(events, symbol_settings.symbol.key, parsed)
    if parsed.purge:
        deleted = run_transaction(connect, lambda c: _purge(c, chunk, parsed), what="purge")
        log.info("%s: purge removed %d events of these settings", chunk.label, deleted)
    with BatchInserter(
        connect,
        EVENTS_TABLE,
        EVENT_COLUMNS,
        ConflictPolicy(key=EVENT_KEY),
        kinds=EVENT_KINDS,
        batch_size=parsed.batch_size,
        backoff_s=2.0,
    ) as inserter:
        stats = inserter.insert(rows)
    counts = {
        "symbol": symbol_settings.symbol.key,
        "chunk": chunk.label,
        "start": chunk.start,
        "end": chunk.end,
        "source_table": parsed.source_table,
        "bars": int(in_chunk.sum()),
        "bad_bars": reason_counts(codes[in_chunk]),
        "preload_bars": int((~in_chunk).sum()),
        "triangles": len(events),
        "inserted": stats.written,
        "batches": stats.batches,
        "commits": stats.commits,
        "retries": stats.retries,
        "seconds": round(time.monotonic() - started, 3),
    }
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


def _event_rows(events: pd.DataFrame, symbol: str, parsed: TriangleParams) -> pd.DataFrame:
    rows = events.copy()
    rows.insert(0, "symbol", symbol)
    for key, value in parsed.settings.as_row().items():
        rows[key] = value
    rows["source_table"] = parsed.source_table
    rows["logic_version"] = LOGIC_VERSION
    rows["warmup"] = rows["warmup"].astype(np.int64)
    return rows[list(EVENT_COLUMNS)]


def _purge(conn: Any, chunk: Chunk, parsed: TriangleParams) -> int:
    cond, values = _settings_filter(parsed)
    query = sql.SQL("DELETE FROM {} WHERE symbol = %s AND ts >= %s AND ts < %s AND {}").format(
        sql.Identifier(EVENTS_TABLE), cond
    )
    with conn.cursor() as cur:
        cur.execute(query, [chunk.symbol, chunk.start_dt, chunk.end_dt, *values])
        return cur.rowcount


def stored_events(conn: Any, symbols: Sequence[str]) -> pd.DataFrame:
    """Every stored event of ``symbols`` (for reports and tests), ordered."""
    query = sql.SQL("SELECT {} FROM {} WHERE symbol = ANY(%s) ORDER BY symbol, ts, direction")
    query = query.format(
        sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS)), sql.Identifier(EVENTS_TABLE)
    )
    with conn.cursor() as cur:
        cur.execute(query, (list(symbols),))
        return pd.DataFrame(cur.fetchall(), columns=list(EVENT_COLUMNS))
