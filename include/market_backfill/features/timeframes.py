"""Timeframes, their buckets and the trading session of a bar (features.md section 1).

Pure and vectorised: every function takes int64 nanoseconds since the epoch (UTC) and
returns int64 arrays. Sessions are New York based: a bar belongs to
``trade_date = date(ts in New York + 6 hours)``; that session opens at 18:00 New York on
the day before. ``4h`` buckets count 4 hours of elapsed time from the session open (18:00,
22:00, 02:00, 06:00, 10:00, 14:00 New York on a session without a clock change; CME's
weekday sessions never hold one, DST changes fall in the weekend close).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from market_backfill.names import DAY_NS, MINUTE_NS, TIMEFRAMES, Timeframe
from market_backfill.timeutil import to_ns
from market_backfill.zones import local_to_utc, utc_offsets_ns

AGG_TIMEFRAMES: tuple[Timeframe, ...] = TIMEFRAMES[1:]
"""The timeframes rolled up into ``market_bars_ohlcv_agg`` (``1m`` is the clean bars)."""

HOUR_NS = 60 * MINUTE_NS
CLOCK_NS: dict[str, int] = {
    "1m": MINUTE_NS,
    "5m": 5 * MINUTE_NS,
    "15m": 15 * MINUTE_NS,
    "1h": HOUR_NS,
}
FOUR_HOURS_NS = 4 * HOUR_NS
SESSION_SHIFT_NS = 6 * HOUR_NS  # New York wall time + 6 h: the session's trade date
NEW_YORK = "America/New_York"
NOMINAL_NS: dict[str, int] = {**CLOCK_NS, "4h": FOUR_HOURS_NS, "1d": DAY_NS}
"""A bar's nominal length (a ``1d`` bar is a session, about a day)."""


def _wall_ns(ts_ns: np.ndarray) -> np.ndarray:
    """New York wall-clock time of each instant, as nanoseconds of a naive clock."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    return ts + utc_offsets_ns(ts, NEW_YORK)


def trade_days(ts_ns: np.ndarray) -> np.ndarray:
    """Each bar's session: its trade date as days since 1970-01-01 (int64)."""
    return (_wall_ns(ts_ns) + SESSION_SHIFT_NS) // DAY_NS


def session_open_of_day(days: np.ndarray) -> np.ndarray:
    """The open instant (UTC ns) of the sessions with these trade dates: 18:00 New York on
    the day before (18:00 is never skipped nor repeated by a clock change)."""
    days = np.asarray(days, dtype=np.int64)
    unique, inverse = np.unique(days, return_inverse=True)
    zone, epoch = ZoneInfo(NEW_YORK), datetime(1970, 1, 1)
    opens = [  # one per session, not per bar
        to_ns(local_to_utc(epoch + timedelta(days=int(day) - 1, hours=18), zone)) for day in unique
    ]
    return np.array(opens, dtype=np.int64)[inverse.reshape(days.shape)]


def session_opens(ts_ns: np.ndarray) -> np.ndarray:
    """The open instant (UTC ns) of each bar's session."""
    return session_open_of_day(trade_days(ts_ns))


def bucket_starts(ts_ns: np.ndarray, tf: Timeframe) -> np.ndarray:
    """The start (UTC ns) of the ``tf`` bucket holding each 1-minute bar open ``ts``."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    if tf in CLOCK_NS:
        return ts - ts % CLOCK_NS[tf]
    opens = session_opens(ts)
    if tf == "1d":
        return opens
    if tf == "4h":
        return opens + (ts - opens) // FOUR_HOURS_NS * FOUR_HOURS_NS
    raise ValueError(f"unknown timeframe {tf!r}")


def bucket_ends(starts_ns: np.ndarray, tf: Timeframe) -> np.ndarray:
    """Where each ``tf`` bucket ends: its start plus its length; a ``1d`` bucket (a
    session) ends at the next session's open."""
    starts = np.asarray(starts_ns, dtype=np.int64)
    if tf in CLOCK_NS:
        return starts + CLOCK_NS[tf]
    if tf == "4h":
        return starts + FOUR_HOURS_NS
    if tf == "1d":
        return session_open_of_day(trade_days(starts) + 1)
    raise ValueError(f"unknown timeframe {tf!r}")


def session_ids(ts_ns: np.ndarray) -> np.ndarray:
    """A session key per bar (its trade date), for ``vwap_session``."""
    return trade_days(ts_ns)
