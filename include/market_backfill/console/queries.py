"""What the console shows, read live from the market tables: completeness per series and
month, gaps, runs and freshness.

Every function takes an open connection and only reads (the caller's transaction, which
the app makes read-only). The costs do not grow with the bars: stored bars per month come
from ``bar_month_counts`` (kept by triggers in every writing transaction), the newest bar
from one primary-key probe per series, expected minutes from the calendar's sessions
(months that have ended are cached per calendar; the running month counts up to ``now``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import numpy as np

from market_backfill.db.connection import Connection
from market_backfill.db.schema import load_sql
from market_backfill.names import MINUTE_NS
from market_backfill.planning import next_month
from market_backfill.symbols import parse_symbol
from market_backfill.timeutil import day_start, floor_minute, to_ns
from market_backfill.trading_calendar import minute_count, minute_counts

GAP_STATUSES = ("open", "filled", "unfillable")
MAX_GAPS = 5000
MAX_RUNS = 200


@dataclass(frozen=True)
class SeriesInfo:
    """A series with stored bars: its key, first and newest month, and calendar."""

    symbol: str
    roll_rule: str
    rank: int
    first: date
    last: date
    calendar: str | None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.symbol, self.roll_rule, self.rank)

    @property
    def label(self) -> str:
        return parse_symbol(self.symbol).continuous(self.roll_rule, self.rank)


def month_start(d: date) -> date:
    return date(d.year, d.month, 1)


def months_between(first: date, last: date) -> list[date]:
    """Month starts from ``first``'s month through ``last``'s, both included."""
    out, m, stop = [], month_start(first), month_start(last)
    while m <= stop:
        out.append(m)
        m = next_month(m)
    return out


class ExpectedMinutes:
    """Trading minutes per calendar month, up to ``now``. Ended months are fixed and kept;
    the running month is kept for the minute it was counted in (series of one calendar
    share it). Thread-safe: the app serves requests from a thread pool."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, date], int] = {}
        self._running: dict[tuple[str, date], tuple[datetime, int]] = {}
        self._lock = threading.Lock()

    def months(self, calendar: str, months: Iterable[date], now: datetime) -> dict[date, int]:
        """``{month: trading minutes of the month before now}`` (0 for future months)."""
        wanted = sorted(set(months))
        this_month = month_start(now.date())
        with self._lock:
            missing = [m for m in wanted if m < this_month and (calendar, m) not in self._done]
        if missing:
            bounds = [*months_between(missing[0], missing[-1]), next_month(missing[-1])]
            counts = minute_counts(calendar, np.array([to_ns(day_start(b)) for b in bounds]))
            with self._lock:
                for m, n in zip(bounds[:-1], counts.tolist(), strict=True):
                    self._done[(calendar, m)] = int(n)
        out: dict[date, int] = {}
        for m in wanted:
            if m < this_month:
                out[m] = self._done[(calendar, m)]
            elif m == this_month:
                out[m] = self._running_month(calendar, m, floor_minute(now))
            else:
                out[m] = 0
        return out

    def _running_month(self, calendar: str, month: date, until: datetime) -> int:
        with self._lock:
            kept = self._running.get((calendar, month))
        if kept is not None and kept[0] == until:
            return kept[1]
        count = minute_count(calendar, to_ns(day_start(month)), to_ns(until))
        with self._lock:
            self._running[(calendar, month)] = (until, count)
        return count


EXPECTED = ExpectedMinutes()


def series_list(conn: Connection, symbol: str | None = None) -> list[SeriesInfo]:
    """Every series with stored bars (of one symbol when given)."""
    with conn.cursor() as cur:
        cur.execute(load_sql("console_series"), {"symbol": symbol})
        return [SeriesInfo(r[0], r[1], int(r[2]), r[3], r[4], r[5]) for r in cur.fetchall()]


def completeness(
    conn: Connection,
    now: datetime,
    symbol: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> list[dict[str, Any]]:
    """One object per series and month: expected trading minutes (up to ``now``), stored
    bars, percent, open and unfillable gaps. Without ``start``/``end`` each series runs
    from its first stored month to the current month; with them, over their months
    (both included). Months that have not begun are left out."""
    series = series_list(conn, symbol)
    if not series:
        return []
    this_month = month_start(now.date())
    spans = {
        s.key: (
            month_start(start) if start else s.first,
            min(month_start(end) if end else this_month, this_month),
        )
        for s in series
    }
    first = min(lo for lo, _ in spans.values())
    last = max(hi for _, hi in spans.values())
    if first > last:
        return []
    stored: dict[tuple[str, str, int, date], tuple[int, int, int]] = {}
    with conn.cursor() as cur:
        cur.execute(
            load_sql("console_month_counts"), {"symbol": symbol, "first": first, "last": last}
        )
        for sym, rule, rank, month, bars, open_gaps, unfillable in cur.fetchall():
            stored[(sym, rule, int(rank), month)] = (int(bars), int(open_gaps), int(unfillable))
    rows: list[dict[str, Any]] = []
    for s in series:
        lo, hi = spans[s.key]
        months = months_between(lo, hi) if lo <= hi else []
        expected = EXPECTED.months(s.calendar, months, now) if s.calendar else {}
        for m in months:
            bars, open_gaps, unfillable = stored.get((*s.key, m), (0, 0, 0))
            exp = expected.get(m)
            rows.append(
                {
                    "symbol": s.symbol,
                    "roll_rule": s.roll_rule,
                    "rank": s.rank,
                    "series": s.label,
                    "month": f"{m:%Y-%m}",
                    "expected": exp,
                    "stored": bars,
                    "percent": None if exp is None else _percent(bars, exp),
                    "open_gaps": open_gaps,
                    "unfillable_gaps": unfillable,
                }
            )
    return rows


def _percent(stored: int, expected: int) -> float:
    return round(100.0 * stored / expected, 2) if expected else 100.0


def gaps(
    conn: Connection,
    symbol: str | None = None,
    status: str | None = None,
    start: date | None = None,
    end: date | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Gaps overlapping the days ``start``..``end`` (both included), oldest first."""
    if status is not None and status not in GAP_STATUSES:
        raise ValueError(f"status must be one of {', '.join(GAP_STATUSES)}, got {status!r}")
    params = {
        "symbol": symbol,
        "status": status,
        "start": day_start(start) if start else datetime(1970, 1, 1, tzinfo=UTC),
        "end": day_start(end) + timedelta(days=1) if end else datetime(9999, 1, 1, tzinfo=UTC),
        "limit": max(1, min(limit, MAX_GAPS)),
    }
    with conn.cursor() as cur:
        cur.execute(load_sql("console_gaps"), params)
        out = []
        for sym, rule, rank, lo, hi, minutes, st, attempts, found, filled, err in cur.fetchall():
            out.append(
                {
                    "symbol": sym,
                    "roll_rule": rule,
                    "rank": int(rank),
                    "series": parse_symbol(sym).continuous(rule, int(rank)),
                    "gap_start": lo.isoformat(),
                    "gap_end": hi.isoformat(),
                    "minutes": int(minutes),
                    "status": st,
                    "attempts": int(attempts),
                    "detected_at": _iso(found),
                    "filled_at": _iso(filled),
                    "last_error": err,
                }
            )
    return out


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


_SUMMED = ("rows_written", "commits", "retries")


def runs(conn: Connection, dag_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The newest runs recorded in ``backfill_runs``, each with its chunk rows, their
    commits, retries and rows written, the run's Databento estimate and the path of the
    run in the Airflow UI (relative to the UI's root)."""
    with conn.cursor() as cur:
        cur.execute(
            load_sql("console_runs"), {"dag_id": dag_id, "limit": max(1, min(limit, MAX_RUNS))}
        )
        fetched = cur.fetchall()
    out = []
    for dag, run_id, started, finished, total, estimate, chunks in fetched:
        chunks = chunks or []
        statuses = [c["status"] for c in chunks]
        if total is not None:
            status = total["status"]
        elif "running" in statuses:
            status = "running"
        else:
            status = "failed" if "failed" in statuses else "success"
        sums = {k: sum(int((c["counts"] or {}).get(k) or 0) for c in chunks) for k in _SUMMED}
        out.append(
            {
                "dag_id": dag,
                "run_id": run_id,
                "status": status,
                "started_at": _iso(started),
                "finished_at": _iso(finished),
                "chunks": len(chunks),
                "chunks_failed": statuses.count("failed"),
                **sums,
                "estimated_cost_usd": None if not estimate else estimate.get("total_usd"),
                "error": None if total is None else total["error"],
                "airflow_path": f"dags/{_quote(dag)}/runs/{_quote(run_id)}",
                "chunk_rows": chunks,
            }
        )
    return out


def _quote(text: str) -> str:
    return quote(text, safe="")


def freshness(
    conn: Connection, now: datetime, symbol: str | None = None, max_lag_minutes: int = 60
) -> list[dict[str, Any]]:
    """Per series: the newest stored bar and how many trading minutes of its calendar have
    passed since it (up to ``now``); ``stale`` past ``max_lag_minutes``."""
    with conn.cursor() as cur:
        cur.execute(load_sql("console_newest_bars"), {"symbol": symbol})
        fetched = cur.fetchall()
    end = to_ns(floor_minute(now))
    out = []
    for sym, rule, rank, calendar, newest in fetched:
        lag = None
        if calendar is not None and newest is not None:
            after = to_ns(newest) + MINUTE_NS
            lag = minute_count(calendar, after, end)
        out.append(
            {
                "symbol": sym,
                "roll_rule": rule,
                "rank": int(rank),
                "series": parse_symbol(sym).continuous(rule, int(rank)),
                "calendar": calendar,
                "newest_bar": _iso(newest),
                "lag_minutes": lag,
                "max_lag_minutes": max_lag_minutes,
                "stale": lag is not None and lag > max_lag_minutes,
            }
        )
    return out
