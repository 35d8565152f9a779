"""From bars to feature rows for one series, timeframe and chunk (features.md section 3).

A chunk computes from a fixed origin that depends only on its month and the stored bars:
the :data:`~market_backfill.features.kernel.WARMUP_BARS`-th bar before the month's first
instant, or the session open of that instant when it is earlier (``vwap_session`` sums
from the session's first bar), or the series' first bar when fewer bars precede. So any
chunk of a month, whole or cut by catch-up, gives the same bits for the same bar, and
those equal the single pass to about 1e-13.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from market_backfill.features.columns import WARMUP_BARS, Features
from market_backfill.features.kernel import compute_features
from market_backfill.features.rollup import Bars
from market_backfill.features.timeframes import session_ids, session_opens
from market_backfill.names import FIXED_SCALE
from market_backfill.planning import month_floor
from market_backfill.timeutil import to_ns


def month_start_ns(ts: datetime) -> int:
    """The first instant (UTC ns) of the calendar month holding ``ts``."""
    return to_ns(month_floor(ts))


def session_open_ns(ts_ns: int) -> int:
    """The open (UTC ns) of the session holding the instant ``ts_ns``."""
    return int(session_opens(np.array([ts_ns], dtype=np.int64))[0])


def origin_index(ts_ns: np.ndarray, month_ns: int) -> int:
    """Index of the first bar a chunk of the month starting at ``month_ns`` computes from."""
    before = int(np.searchsorted(ts_ns, month_ns))
    session = int(np.searchsorted(ts_ns, session_open_ns(month_ns)))
    return min(max(0, before - WARMUP_BARS), session)


def bar_features(bars: Bars) -> Features:
    """The features of ``bars`` (one series and timeframe, int64 fixed-point prices,
    ordered), as one pass from the first bar given."""
    scale = float(FIXED_SCALE)
    return compute_features(
        bars["high"] / scale,
        bars["low"] / scale,
        bars["close"] / scale,
        bars["volume"].astype(np.float64),
        session_ids(bars["ts"]),
    )
