"""Trading minutes of a symbol's calendar (pandas_market_calendars), vectorised.

A session contributes every minute from its open to its close, close excluded, so the
daily maintenance break, weekends, holidays and early closes contain no trading minute.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from market_backfill.names import MINUTE_NS
from market_backfill.timeutil import to_ns


@cache
def get_calendar(name: str) -> Any:
    import pandas_market_calendars as mcal

    return mcal.get_calendar(name)


def sessions(name: str, start: datetime, end: datetime) -> np.ndarray:
    """Sessions overlapping ``[start, end)`` as an (n, 2) int64 array of [open, close) in ns."""
    cal = get_calendar(name)
    sched = cal.schedule(
        (start - timedelta(days=2)).date().isoformat(), (end + timedelta(days=2)).date().isoformat()
    )
    if sched.empty:
        return np.empty((0, 2), dtype=np.int64)
    opens = _ns(sched["market_open"])
    closes = _ns(sched["market_close"])
    lo, hi = to_ns(start), to_ns(end)
    opens, closes = np.maximum(opens, lo), np.minimum(closes, hi)
    keep = opens < closes
    return np.stack([opens[keep], closes[keep]], axis=1)


def trading_minutes(name: str, start: datetime, end: datetime) -> np.ndarray:
    """Open times (int64 ns, UTC) of every trading minute in ``[start, end)``."""
    sess = sessions(name, start, end)
    if len(sess) == 0:
        return np.empty(0, dtype=np.int64)
    first = (sess[:, 0] + MINUTE_NS - 1) // MINUTE_NS * MINUTE_NS
    counts = np.maximum((sess[:, 1] - first + MINUTE_NS - 1) // MINUTE_NS, 0)
    total = int(counts.sum())
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(first, counts) + offsets * MINUTE_NS


def _ns(series: pd.Series) -> np.ndarray:
    return pd.to_datetime(series, utc=True).dt.as_unit("ns").astype("int64").to_numpy()
