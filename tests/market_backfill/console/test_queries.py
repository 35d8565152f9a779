"""The console's reads against a real database: completeness equals the gap stage's own
scan, gaps, runs and freshness as stored."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.console import queries
from market_backfill.db import audit
from market_backfill.gaps.detect import scan
from market_backfill.symbols import Series, parse_symbol
from market_backfill.timeutil import from_ns
from market_backfill.trading_calendar import trading_minutes
from tests.conftest import store_bars

CAL = "CME Globex Equity"
NQ = Series(parse_symbol("GLBX.MDP3:NQ"), "v", 0)
NOW = datetime(2025, 3, 17, 14, 30, 45, tzinfo=UTC)  # a Monday afternoon in March


@pytest.fixture
def stored(market_db, quarter_bars):
    """Jan..Mar 2025 of NQ with two holes (Feb 10 entirely, 45 minutes of Jan 15), bars up
    to NOW only; the ES series c/1 with January only."""
    bars = quarter_bars
    ts = bars["ts"]
    day = lambda s: int(datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp()) * 10**9  # noqa: E731
    hole = ((ts >= day("2025-02-10")) & (ts < day("2025-02-11"))) | (
        (ts >= day("2025-01-15") + 15 * 3600 * 10**9)
        & (ts < day("2025-01-15") + 15 * 3600 * 10**9 + 45 * 60 * 10**9)
    )
    kept = bars[~hole & (ts < int(NOW.timestamp()) * 10**9 - 3600 * 10**9)]
    store_bars(kept)
    store_bars(kept[kept["ts"] < day("2025-02-01")], symbol="GLBX.MDP3:ES", roll_rule="c", rank=1)
    with market_db.connect() as conn:
        conn.execute(
            "INSERT INTO ohlcv_gaps (symbol, roll_rule, rank, gap_start, gap_end, minutes, "
            "status, attempts, last_error) VALUES (%s, 'v', 0, %s, %s, %s, %s, %s, %s)",
            (
                "GLBX.MDP3:NQ",
                "2025-02-10 00:00+00",
                "2025-02-10 22:00+00",
                1320,
                "open",
                1,
                "no bars returned",
            ),
        )
        for lo, hi, minutes, status, attempts in (
            ("2025-01-15 15:00+00", "2025-01-15 15:45+00", 45, "unfillable", 3),
            ("2025-01-20 15:00+00", "2025-01-20 15:10+00", 10, "filled", 1),
        ):
            conn.execute(
                "INSERT INTO ohlcv_gaps (symbol, roll_rule, rank, gap_start, gap_end, minutes, "
                "status, attempts) VALUES ('GLBX.MDP3:NQ', 'v', 0, %s, %s, %s, %s, %s)",
                (lo, hi, minutes, status, attempts),
            )
        conn.commit()
    return kept


def _read(work):
    conn = hook_connector()()
    try:
        return work(conn)
    finally:
        conn.close()


def test_completeness_equals_the_gap_scan_month_by_month(stored):
    rows = _read(lambda c: queries.completeness(c, NOW, symbol="GLBX.MDP3:NQ"))
    assert [r["month"] for r in rows] == ["2025-01", "2025-02", "2025-03"]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    found = _read(lambda c: scan(c, NQ, CAL, start, NOW.replace(second=0), 5))
    assert [{k: r[k] for k in ("month", "expected", "stored", "percent")} for r in rows] == [
        {k: m[k] for k in ("month", "expected", "stored", "percent")} for m in found.months
    ]
    jan, feb, mar = rows
    assert jan["series"] == "NQ.v.0"
    assert jan["symbol"] == "GLBX.MDP3:NQ"
    assert (jan["open_gaps"], jan["unfillable_gaps"]) == (0, 1)
    assert (feb["open_gaps"], feb["unfillable_gaps"]) == (1, 0)
    feb_ts = stored["ts"][
        (stored["ts"] >= 1738368000 * 10**9) & (stored["ts"] < 1740787200 * 10**9)
    ]
    assert feb["stored"] == len(feb_ts)
    assert feb["percent"] < 96
    # the running month counts the calendar's minutes that have ended by now
    assert mar["expected"] == len(
        trading_minutes(CAL, datetime(2025, 3, 1, tzinfo=UTC), NOW.replace(second=0))
    )
    assert mar["stored"] == len(stored[stored["ts"] >= 1740787200 * 10**9])


def test_dates_give_every_month_of_the_range_up_to_now_and_symbol_filters(stored):
    rows = _read(
        lambda c: queries.completeness(c, NOW, start=date(2024, 12, 5), end=date(2025, 8, 1))
    )
    by = {(r["series"], r["month"]): r for r in rows}
    assert sorted({m for _, m in by}) == ["2024-12", "2025-01", "2025-02", "2025-03"]
    assert {s for s, _ in by} == {"NQ.v.0", "ES.c.1"}
    assert by[("ES.c.1", "2025-02")]["stored"] == 0
    assert by[("ES.c.1", "2025-02")]["percent"] == 0
    assert by[("NQ.v.0", "2024-12")]["stored"] == 0
    assert by[("NQ.v.0", "2024-12")]["expected"] > 0
    assert by[("ES.c.1", "2025-01")]["stored"] == by[("NQ.v.0", "2025-01")]["stored"]
    # default span: each series from its first stored month to now
    es = _read(lambda c: queries.completeness(c, NOW, symbol="GLBX.MDP3:ES"))
    assert [r["month"] for r in es] == ["2025-01", "2025-02", "2025-03"]
    assert _read(lambda c: queries.completeness(c, NOW, symbol="GLBX.MDP3:YM")) == []


def test_expected_minutes_of_ended_months_are_kept_and_right(stored):
    cache = queries.ExpectedMinutes()
    months = [date(2024, 11, 1), date(2025, 1, 1), date(2025, 3, 1), date(2025, 4, 1)]
    got = cache.months(CAL, months, NOW)
    assert got[date(2024, 11, 1)] == len(
        trading_minutes(CAL, datetime(2024, 11, 1, tzinfo=UTC), datetime(2024, 12, 1, tzinfo=UTC))
    )
    assert got[date(2025, 4, 1)] == 0  # not begun
    later = NOW + timedelta(hours=2)
    again = cache.months(CAL, months, later)
    assert again[date(2025, 1, 1)] == got[date(2025, 1, 1)]
    assert again[date(2025, 3, 1)] == got[date(2025, 3, 1)] + 120  # the running month moves


def test_gaps_filter_by_symbol_status_and_days(stored):
    everything = _read(lambda c: queries.gaps(c))
    assert [g["status"] for g in everything] == ["unfillable", "filled", "open"]
    opened = _read(lambda c: queries.gaps(c, symbol="GLBX.MDP3:NQ", status="open"))
    (gap,) = opened
    assert gap["gap_start"] == "2025-02-10T00:00:00+00:00"
    assert gap["minutes"] == 1320
    assert (gap["attempts"], gap["last_error"], gap["series"]) == (1, "no bars returned", "NQ.v.0")
    january = _read(lambda c: queries.gaps(c, start=date(2025, 1, 15), end=date(2025, 1, 15)))
    assert [g["minutes"] for g in january] == [45]
    assert _read(lambda c: queries.gaps(c, symbol="GLBX.MDP3:ES")) == []
    with pytest.raises(ValueError, match="status"):
        _read(lambda c: queries.gaps(c, status="closed"))


def test_runs_carry_chunks_sums_the_estimate_and_the_airflow_path(market_db):
    connect = hook_connector()
    run_id = "manual__2025-03-17T14:00:00+00:00"
    for chunk, status, counts, error in (
        ("2025-01", "success", {"rows_written": 1000, "commits": 2, "retries": 1}, None),
        ("2025-02", "failed", {"rows_written": 500, "commits": 1, "retries": 0}, "boom"),
    ):
        audit.record_start(connect, "ohlcv_reingest", run_id, "GLBX.MDP3:NQ", chunk)
        audit.record_finish(
            connect, "ohlcv_reingest", run_id, "GLBX.MDP3:NQ", chunk, status, counts, error
        )
    audit.record_finish(
        connect,
        "ohlcv_reingest",
        run_id,
        *audit.ESTIMATE_ROW,
        "success",
        {"total_usd": 1.25, "max_cost_usd": 50},
    )
    audit.record_start(connect, "gap_detection", "scheduled__x", "GLBX.MDP3:NQ", "2025-03")
    audit.record_finish(
        connect, "ohlcv_reingest", run_id, "*", "total", "failed", {"chunks": 2}, "1 chunk failed"
    )
    runs = _read(lambda c: queries.runs(c))
    assert [r["dag_id"] for r in runs] == ["gap_detection", "ohlcv_reingest"]
    gap_run, run = runs
    assert gap_run["status"] == "running"
    assert gap_run["estimated_cost_usd"] is None
    assert run["status"] == "failed"
    assert run["error"] == "1 chunk failed"
    assert (run["chunks"], run["chunks_failed"]) == (2, 1)
    assert (run["rows_written"], run["commits"], run["retries"]) == (1500, 3, 1)
    assert run["estimated_cost_usd"] == 1.25
    assert (
        run["airflow_path"] == "dags/ohlcv_reingest/runs/manual__2025-03-17T14%3A00%3A00%2B00%3A00"
    )
    assert [(c["chunk"], c["status"], c["error"]) for c in run["chunk_rows"]] == [
        ("2025-01", "success", None),
        ("2025-02", "failed", "boom"),
    ]
    assert [r["run_id"] for r in _read(lambda c: queries.runs(c, dag_id="ohlcv_reingest"))] == [
        run_id
    ]
    assert len(_read(lambda c: queries.runs(c, limit=1))) == 1


def test_freshness_is_the_newest_bar_and_the_trading_minutes_since(stored):
    rows = _read(lambda c: queries.freshness(c, NOW))
    by = {r["series"]: r for r in rows}
    newest = from_ns(int(stored["ts"].max()))
    nq = by["NQ.v.0"]
    assert nq["newest_bar"] == newest.isoformat()
    assert nq["calendar"] == CAL
    lag = len(trading_minutes(CAL, newest + timedelta(minutes=1), NOW.replace(second=0)))
    assert nq["lag_minutes"] == lag
    assert 50 <= lag <= 60
    assert nq["stale"] is False  # not more than 60 trading minutes behind
    es = by["ES.c.1"]
    assert es["stale"] is True
    assert es["lag_minutes"] > 20_000
    strict = _read(lambda c: queries.freshness(c, NOW, "GLBX.MDP3:NQ", max_lag_minutes=lag - 1))
    assert [(r["series"], r["stale"]) for r in strict] == [("NQ.v.0", True)]
