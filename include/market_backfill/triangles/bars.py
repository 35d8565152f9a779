"""Reading a symbol's bars for the triangle engine and cleaning them (spec section 1)."""

from __future__ import annotations

import numpy as np
from psycopg import sql

from market_backfill.db.connection import Connection
from market_backfill.names import FIXED_SCALE
from market_backfill.symbols import Series, SymbolSettings
from market_backfill.timeutil import from_ns
from market_backfill.triangles.bias_kernel import legacy_good
from market_backfill.triangles.engine import TriangleSettings, segment_of

LEGACY_REASONS = {
    1: "OHLC_INTEGRITY",
    2: "PRICE_FLOOR",
    3: "DISCONTINUITY",
    4: "SMALL_RANGE_BIG_GAP",
    5: "FLAT_DISCONTINUITY",
}


def read_bars(
    conn: Connection, table: str, series: Series, lo_ns: int, hi_ns: int, *, legacy: bool
) -> dict[str, np.ndarray]:
    """Bars of ``series`` with stored ``ts`` in ``[lo, hi)`` as int64 arrays (prices
    fixed-point 1e-9, exactly as stored), ordered by ts. One indexed range scan. The
    legacy table holds one series per symbol and is read by symbol."""
    where = "symbol = %s" if legacy else "symbol = %s AND roll_rule = %s AND rank = %s"
    query = sql.SQL(
        "SELECT (extract(epoch FROM ts) * 1000000)::int8, (open * 1000000000)::int8, "
        "(high * 1000000000)::int8, (low * 1000000000)::int8, (close * 1000000000)::int8 "
        "FROM {} WHERE {} AND ts >= %s AND ts < %s ORDER BY ts"
    ).format(sql.Identifier(table), sql.SQL(where))
    key = series.key[:1] if legacy else series.key
    with conn.cursor() as cur:
        cur.execute(query, (*key, from_ns(lo_ns), from_ns(hi_ns)))
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
