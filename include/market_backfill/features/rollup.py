"""Rolling 1-minute bars up into a higher timeframe (features.md section 1), vectorised.

Bars are int64 arrays ordered by ``ts`` (prices fixed-point 1e-9, exactly as stored), so
the aggregated prices are exact: open of the first bar, max high, min low, close of the
last, summed volume, and how many 1-minute bars the bucket holds.
"""

from __future__ import annotations

import numpy as np

from market_backfill.features.timeframes import bucket_ends, bucket_starts
from market_backfill.names import Timeframe

Bars = dict[str, np.ndarray]
"""Columnar bars: ``ts`` (UTC ns), ``open``, ``high``, ``low``, ``close`` (int64 fixed-point),
``volume`` (int64); higher-timeframe bars add ``bars`` (int64) and ``complete`` (bool)."""


def rollup(bars: Bars, tf: Timeframe, last_ts_ns: int) -> Bars:
    """The ``tf`` bars of ``bars`` (1-minute, ordered by ``ts``). A bucket is ``complete``
    when the series has a 1-minute bar at or after its end: ``last_ts_ns`` is the series'
    newest stored bar."""
    ts = bars["ts"]
    if len(ts) == 0:
        empty = np.empty(0, dtype=np.int64)
        return {
            **{k: empty for k in ("ts", "open", "high", "low", "close", "volume", "bars")},
            "complete": np.empty(0, dtype=bool),
        }
    keys = bucket_starts(ts, tf)
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    last = np.r_[first[1:], len(ts)] - 1
    starts = keys[first]
    return {
        "ts": starts,
        "open": bars["open"][first],
        "high": np.maximum.reduceat(bars["high"], first),
        "low": np.minimum.reduceat(bars["low"], first),
        "close": bars["close"][last],
        "volume": np.add.reduceat(bars["volume"], first),
        "bars": last - first + 1,
        "complete": bucket_ends(starts, tf) <= last_ts_ns,
    }
