"""Reading a symbol's bars for the triangle engine and cleaning them (spec section 1)."""

from __future__ import annotations

import numpy as np
from psycopg import sql

from market_backfill.db.connection import Connection, Connector
from market_backfill.db.copy_binary import read_ts_rows
from market_backfill.db.split_read import read_split
from market_backfill.names import FIXED_SCALE
from market_backfill.symbols import Series, SymbolSettings
from market_backfill.timeutil import from_ns
from market_backfill.triangles.engine import TriangleSettings, segment_of

LEGACY_REASONS = {
    1: "OHLC_INTEGRITY",
    2: "PRICE_FLOOR",
    3: "DISCONTINUITY",
    4: "SMALL_RANGE_BIG_GAP",
    5: "FLAT_DISCONTINUITY",
}


def read_bars(
    conn: Connection,
    table: str,
    series: Series,
    lo_ns: int,
    hi_ns: int,
    *,
    legacy: bool,
    connect: Connector | None = None,
) -> dict[str, np.ndarray]:
    """Bars of ``series`` with stored ``ts`` in ``[lo, hi)`` as int64 arrays (prices
    fixed-point 1e-9, exactly as stored), ordered by ts. One indexed range scan sent as
    one binary value, no Python object per row, put in order on the client (the query has
    no ``ORDER BY``: see :func:`read_ts_rows`); with ``connect``, a range of a week or more
    is read as two halves over two connections at once (:func:`read_split`). The clean
    table's prices are scaled by the server, so a clean-table task never loads numba (its
    import and start cost a task more than the casts: a few ms per month); the legacy
    table's, whose hygiene is compiled anyway, go as stored and are decoded by the numba
    kernel, which names a bar whose price cannot be read. The legacy table holds one
    series per symbol and is read by symbol. Runs in the caller's transaction (the first
    half of a split read in one of its own)."""
    key = series.key[:1] if legacy else series.key
    names = ("symbol",) if legacy else ("symbol", "roll_rule", "rank")
    where = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(n), sql.Literal(v))
        for n, v in zip(names, key, strict=True)
    )
    template = sql.SQL(
        "SELECT ts, open, high, low, close FROM {} WHERE {} AND ts >= {} AND ts < {}"
    )

    def read(reader: Connection, lo: int, hi: int) -> np.ndarray:
        query = template.format(
            sql.Identifier(table), where, sql.Literal(from_ns(lo)), sql.Literal(from_ns(hi))
        )
        with reader.cursor() as cur:
            return read_ts_rows(cur, query, 5, numeric=(1, 2, 3, 4), scale_on_server=not legacy)

    columns = np.ascontiguousarray(read_split(conn, connect, read, lo_ns, hi_ns).T)
    return {
        "ts": columns[0],
        "open": columns[1],
        "high": columns[2],
        "low": columns[3],
        "close": columns[4],
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
        from market_backfill.triangles.bias_kernel import legacy_good  # numba: when used

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
            int(settings.discontinuity * FIXED_SCALE),
            int(settings.small_range * FIXED_SCALE),
            int(settings.small_range_gap * FIXED_SCALE),
            int(settings.flat_discontinuity * FIXED_SCALE),
        )
    else:
        codes = np.zeros(len(o), dtype=np.int8)
        codes[(h < np.maximum(o, c)) | (low > np.minimum(o, c)) | (h < low)] = 1
        below = np.minimum(np.minimum(o, h), np.minimum(low, c)) < floor
        codes[(codes == 0) & below] = 2
    return codes == 0, codes


def reason_counts(codes: np.ndarray) -> dict[str, int]:
    """Bad bars by reason, from the codes of :func:`good_bars`."""
    values, counts = np.unique(codes[codes > 0], return_counts=True)
    return {LEGACY_REASONS[int(v)]: int(n) for v, n in zip(values, counts, strict=True)}
