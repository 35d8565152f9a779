"""Trading minutes of a symbol's calendar, right for the whole history, vectorised.

Holidays and early closes come from pandas_market_calendars. Its CME calendars model
only today's regular hours, though, so a calendar with a dated session history
(:data:`SESSION_HISTORY`) has each regular trade date re-cut to the hours of its era. A
session contributes every minute from its open to its close, close excluded, so
maintenance breaks, halts, weekends, holidays and early closes hold no trading minute.

A calendar year's periods are computed once per host and kept
(:mod:`market_backfill.calendar_cache`): a task whose years are cached imports neither
pandas nor pandas_market_calendars.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from market_backfill.calendar_cache import cache_key, load_year, store_year
from market_backfill.minute_runs import minutes_of
from market_backfill.names import MINUTE_NS
from market_backfill.timeutil import from_ns, to_ns

if TYPE_CHECKING:  # pandas: only where a year's periods are computed
    import pandas as pd

CHICAGO = "America/Chicago"


@dataclass(frozen=True)
class Era:
    """The regular hours (US Central) of a CME product's trade dates from ``first_day``.

    A trade date opens at 17:00 the evening before (as the underlying calendar says) and
    ends at ``close``; ``halt`` is a pause inside it; ``pre_session`` is an hour of the
    previous afternoon that already counted for this trade date."""

    first_day: date
    close: time
    halt: tuple[time, time] | None = None
    pre_session: tuple[time, time] | None = None


# CME Globex equity index futures (ES, NQ, YM, RTY and the rest of the group).
CME_EQUITY_ERAS = (
    # Until trade date 2012-11-16 a trade date ended at 15:15 CT; Monday to Thursday the
    # market reopened at 15:30 CT for the NEXT trade date, paused 16:30-17:00 CT for
    # maintenance and went on from 17:00 CT. Source: CME, "Equity Index Later Close for
    # CME Globex Trading Day, Daily Price Limits" (Nov 2012: trade dates "will begin at
    # 17:00 CT vs. the current 15:30 CT on Monday-Thursday"); CME education note
    # eq-trading-hours.pdf.
    Era(date(2010, 1, 1), close=time(15, 15), pre_session=(time(15, 30), time(16, 30))),
    # Effective Sunday 2012-11-18 for trade date Monday 2012-11-19: the trade date ends at
    # 16:15 CT, with a 15-minute halt 15:15-15:30 CT (same notice).
    Era(date(2012, 11, 19), close=time(16, 15), halt=(time(15, 15), time(15, 30))),
    # From Monday 2015-09-21 the CME Globex close moved 15 minutes earlier, to 16:00 CT,
    # the 15:15-15:30 CT halt unchanged (CME Globex trading-hours change of 2015-09-21).
    Era(date(2015, 9, 21), close=time(16, 0), halt=(time(15, 15), time(15, 30))),
    # The 15:15-15:30 CT market pause was eliminated effective trade date 2021-06-28:
    # continuous trading 17:00-16:00 CT. Source: CME Globex Notices, 2021-06-21
    # (cmegroup.com/notices/electronic-trading/2021/06/20210621.html).
    Era(date(2021, 6, 28), close=time(16, 0)),
)

SESSION_HISTORY: dict[str, tuple[Era, ...]] = {"CME Globex Equity": CME_EQUITY_ERAS}
"""Calendars (registry ``calendar`` names) with a dated session history."""


@cache
def get_calendar(name: str) -> Any:
    import pandas_market_calendars as mcal

    return mcal.get_calendar(name)


SPAN_MARGIN = timedelta(days=2)
"""Longer than any trading period: a period overlapping a range opens at most this much
before it."""


def sessions(name: str, start: datetime, end: datetime) -> np.ndarray:
    """Trading periods overlapping ``[start, end)``, cut to it: an (n, 2) int64 array of
    [open, close) in ns, sorted (a trade date may hold several). From each calendar
    year's periods (:func:`year_periods`)."""
    lo, hi = to_ns(start), to_ns(end)
    if lo >= hi:
        return np.empty((0, 2), dtype=np.int64)
    years = year_periods(name, (start - SPAN_MARGIN).year, from_ns(hi - 1).year)
    return cut_periods(np.concatenate(years), lo, hi)


def cut_periods(periods: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The sorted [open, close) ns ``periods`` overlapping ``[lo, hi)``, cut to it."""
    opens, closes = np.maximum(periods[:, 0], lo), np.minimum(periods[:, 1], hi)
    keep = opens < closes
    return np.stack([opens[keep], closes[keep]], axis=1)


def calendar_version(name: str) -> str:
    """Calendar ``name`` and the sessions-cache key of what its periods depend on (the
    calendar libraries' versions, its session history): equal versions, equal minutes."""
    return f"{name}@{cache_key(name, _history(name))}"


def _history(name: str) -> str:
    """The text form of ``name``'s dated session history the sessions cache keys on."""
    return repr(SESSION_HISTORY.get(name))


def year_periods(name: str, first: int, last: int) -> list[np.ndarray]:
    """The trading periods of calendar ``name`` opening in each year ``first`` ..
    ``last`` (UTC), sorted, uncut: from the sessions cache; the years it lacks are
    computed together (:func:`computed_years`) and kept there."""
    history = _history(name)
    found = {y: load_year(name, history, y) for y in range(first, last + 1)}
    missing = [y for y, periods in found.items() if periods is None]
    computed = computed_years(name, missing[0], missing[-1]) if missing else {}
    for y in missing:
        store_year(name, history, y, computed[y])
    return [computed[y] if periods is None else periods for y, periods in found.items()]


def computed_years(name: str, first: int, last: int) -> dict[int, np.ndarray]:
    """The periods of ``name`` opening in each year ``first`` .. ``last``, from one
    pandas_market_calendars schedule of those years and :data:`SPAN_MARGIN` either side
    (a trade date's periods depend on the trade date before it)."""
    lo, hi = datetime(first, 1, 1, tzinfo=UTC), datetime(last + 1, 1, 1, tzinfo=UTC)
    cal = get_calendar(name)
    sched = cal.schedule(
        (lo - SPAN_MARGIN).date().isoformat(), (hi + SPAN_MARGIN).date().isoformat()
    )
    if sched.empty:
        periods = np.empty((0, 2), dtype=np.int64)
    elif name in SESSION_HISTORY:
        periods = _historical_periods(sched, SESSION_HISTORY[name])
    else:
        periods = _calendar_periods(sched)
    starts = [to_ns(datetime(y, 1, 1, tzinfo=UTC)) for y in range(first, last + 2)]
    cuts = np.searchsorted(periods[:, 0], starts, side="left")  # periods are sorted
    return {
        y: np.ascontiguousarray(periods[cuts[i] : cuts[i + 1]])
        for i, y in enumerate(range(first, last + 1))
    }


def _historical_periods(sched: pd.DataFrame, eras: tuple[Era, ...]) -> np.ndarray:
    """Re-cut each regular trade date of ``sched`` (open 17:00 the evening before, close
    at the calendar's regular 16:00 CT) to its era's hours; holidays and early closes
    stay as the calendar has them. Vectorised per era."""
    opens, closes = _ns(sched["market_open"]), _ns(sched["market_close"])
    close_local = _local_index(sched["market_close"])
    open_local = _local_index(sched["market_open"])
    regular = np.asarray((close_local.hour == 16) & (close_local.minute == 0))
    days = close_local.tz_localize(None).normalize()  # the trade date, local midnight
    open_days = open_local.tz_localize(None).normalize()
    # a pre-session needs the previous trade date to have ended that same afternoon
    follows = np.zeros(len(sched), dtype=bool)
    follows[1:] = regular[:-1] & np.asarray(days[:-1] == open_days[1:])
    firsts = np.array([e.first_day for e in eras], dtype="datetime64[D]")
    era_of = np.searchsorted(firsts, days.to_numpy().astype("datetime64[D]"), side="right") - 1
    era_of = np.maximum(era_of, 0)
    parts = [np.stack([opens[~regular], closes[~regular]], axis=1)]
    for k, era in enumerate(eras):
        rows = regular & (era_of == k)
        if not rows.any():
            continue
        day, start, end = days[rows], opens[rows], _at(days[rows], era.close)
        if era.halt:
            parts.append(np.stack([start, _at(day, era.halt[0])], axis=1))
            parts.append(np.stack([_at(day, era.halt[1]), end], axis=1))
        else:
            parts.append(np.stack([start, end], axis=1))
        if era.pre_session:  # before any trade date of the era, holidays' too
            pre_days = open_days[(era_of == k) & follows]
            pre = [_at(pre_days, era.pre_session[0]), _at(pre_days, era.pre_session[1])]
            parts.append(np.stack(pre, axis=1))
    periods = np.concatenate(parts)
    return periods[np.argsort(periods[:, 0], kind="stable")]


def _calendar_periods(sched: pd.DataFrame) -> np.ndarray:
    """The calendar's own periods: open to close, split around a daily break where the
    calendar has one (the grains' 07:45-08:30 CT pause)."""
    opens, closes = _ns(sched["market_open"]), _ns(sched["market_close"])
    if "break_start" not in sched.columns:
        return np.stack([opens, closes], axis=1)
    has_break = np.asarray(sched["break_start"].notna() & sched["break_end"].notna())
    starts = _ns(sched["break_start"].where(has_break, sched["market_close"]))
    ends = _ns(sched["break_end"].where(has_break, sched["market_close"]))
    periods = np.concatenate(
        [np.stack([opens, starts], axis=1), np.stack([ends, closes], axis=1)[has_break]]
    )
    return periods[np.argsort(periods[:, 0], kind="stable")]


def _local_index(series: pd.Series) -> pd.DatetimeIndex:
    import pandas as pd

    return pd.DatetimeIndex(pd.to_datetime(series, utc=True)).tz_convert(CHICAGO)


def _at(days: pd.DatetimeIndex, at: time) -> np.ndarray:
    """``at`` (Central time) on each of ``days`` (naive local midnights), as ns UTC."""
    import pandas as pd

    local = days + pd.Timedelta(hours=at.hour, minutes=at.minute)
    return local.tz_localize(CHICAGO).as_unit("ns").asi8.astype(np.int64)


def trading_minutes(name: str, start: datetime, end: datetime) -> np.ndarray:
    """Open times (int64 ns, UTC) of every trading minute in ``[start, end)``."""
    return period_minutes(sessions(name, start, end))


def period_minutes(sess: np.ndarray) -> np.ndarray:
    """Open times (int64 ns) of every minute opening in the [open, close) ``sess``."""
    if len(sess) == 0:
        return np.empty(0, dtype=np.int64)
    return minutes_of(*_period_runs(sess))


def _period_runs(sess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each period's first minute opening in it and how many minutes open in it."""
    first = (sess[:, 0] + MINUTE_NS - 1) // MINUTE_NS * MINUTE_NS
    return first, np.maximum((sess[:, 1] - first + MINUTE_NS - 1) // MINUTE_NS, 0)


def minute_count(name: str, lo: int, hi: int) -> int:
    """Trading minutes in ``[lo, hi)`` (int64 ns; 0 when ``lo >= hi``), counted from the
    sessions (:func:`minute_counts`)."""
    return int(minute_counts(name, np.array([lo, hi]))[0]) if lo < hi else 0


def minute_counts(name: str, bounds: np.ndarray) -> np.ndarray:
    """Trading minutes in each ``[bounds[i], bounds[i+1])`` (sorted int64 ns): as many as
    :func:`trading_minutes` has there, counted from the sessions without listing them."""
    bounds = np.asarray(bounds, dtype=np.int64)
    if len(bounds) < 2:
        return np.zeros(0, dtype=np.int64)
    return period_counts(sessions(name, from_ns(int(bounds[0])), from_ns(int(bounds[-1]))), bounds)


def period_counts(sess: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Minutes of the [open, close) ``sess`` opening in each ``[bounds[i], bounds[i+1])``
    (sorted int64 ns, at least two)."""
    if len(sess) == 0:
        return np.zeros(len(bounds) - 1, dtype=np.int64)
    first, counts = _period_runs(sess)
    before = np.concatenate([[0], np.cumsum(counts)])  # minutes of the sessions before i
    # minutes opening before t: those of every session starting before t, the last one
    # cut at t
    last = np.searchsorted(first, bounds, side="left") - 1
    k = np.maximum(last, 0)
    cut = np.clip((bounds - first[k] + MINUTE_NS - 1) // MINUTE_NS, 0, counts[k])
    upto = np.where(last >= 0, before[k] + cut, 0)
    return np.diff(upto)


def _ns(series: pd.Series) -> np.ndarray:
    import pandas as pd

    return pd.to_datetime(series, utc=True).dt.as_unit("ns").astype("int64").to_numpy()
