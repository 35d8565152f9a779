from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.errors import ParamError
from market_backfill.gaps.detect import Gap, find_gaps, scan, stored_minutes
from market_backfill.gaps.params import parse_params
from market_backfill.gaps.repair import repair_gap
from market_backfill.gaps.store import open_gaps, record_gaps
from market_backfill.planning import Chunk
from market_backfill.sources.dbn_file import DbnFileSource
from market_backfill.timeutil import from_ns, to_ns
from market_backfill.trading_calendar import trading_minutes
from market_backfill_devtools.dbn_writer import write_bars
from market_backfill_devtools.sample import synthetic_bars
from tests.conftest import store_bars

CAL = "CME Globex Equity"
MIN = 60_000_000_000
NQ = "GLBX.MDP3:NQ"


def utc(text: str) -> datetime:
    return pd.Timestamp(text, tz="UTC").to_pydatetime()


def _holes(expected: np.ndarray, holes: list[tuple[str, int]]) -> np.ndarray:
    """Remove ``(first minute, length)`` holes from the expected minutes."""
    drop = np.zeros(len(expected), dtype=bool)
    for first, n in holes:
        i = int(np.searchsorted(expected, to_ns(first)))
        assert expected[i] == to_ns(first)
        drop[i : i + n] = True
    return expected[~drop]


# Thanksgiving week 2025 (holiday 11-27, early close 11-28 at 12:15 CT) and more
START, END = utc("2025-11-23T00:00"), utc("2025-11-29T00:00")
HOLES = [
    ("2025-11-23T23:00", 12),  # the very first minutes of the range (Sunday open)
    ("2025-11-24T14:30", 30),
    ("2025-11-24T16:00", 5),  # exactly min_gap_minutes
    ("2025-11-24T17:00", 4),  # shorter: quiet minutes, not a gap
    ("2025-11-25T03:07", 1),
    ("2025-11-25T21:50", 10),  # runs into the daily close at 22:00 UTC
    ("2025-11-28T18:05", 10),  # the last minutes before the early close (18:15 UTC)
]


def test_holes_of_known_lengths_are_found_and_nothing_else():
    expected = trading_minutes(CAL, START, END)
    stored = _holes(expected, HOLES)
    gaps = find_gaps(NQ, expected, stored, 5)
    assert [(from_ns(g.start_ns).isoformat()[:16], g.minutes) for g in gaps] == [
        ("2025-11-23T23:00", 12),
        ("2025-11-24T14:30", 30),
        ("2025-11-24T16:00", 5),
        ("2025-11-25T21:50", 10),
        ("2025-11-28T18:05", 10),
    ]
    assert gaps[3].end_ns == to_ns("2025-11-25T22:00")  # never spans the break
    assert gaps[-1].end_ns == to_ns("2025-11-28T18:15")  # nor the early close


def test_weekend_holiday_break_and_the_future_are_never_gaps():
    expected = trading_minutes(CAL, utc("2025-11-26T00:00"), utc("2025-12-01T12:00"))
    ts = pd.to_datetime(expected, unit="ns", utc=True)
    assert not ((ts >= "2025-11-29") & (ts < "2025-11-30T23:00")).any()  # weekend
    assert not ((ts >= "2025-11-26T22:00") & (ts < "2025-11-26T23:00")).any()  # break
    assert not ((ts >= "2025-11-27T18:00") & (ts < "2025-11-27T23:00")).any()  # holiday close
    assert find_gaps(NQ, expected, expected, 1) == []
    gp = parse_params(
        {"symbols": [NQ], "start": "2025-11-01", "end": "2030-01-01", "repair": False},
        now=utc("2025-11-20T10:03:30"),
    )
    assert gp.end == utc("2025-11-20T10:03")


def test_dst_week_hole_at_the_new_open():
    start, end = utc("2025-03-09T00:00"), utc("2025-03-10T00:00")
    expected = trading_minutes(CAL, start, end)
    assert from_ns(expected[0]) == utc("2025-03-09T22:00")  # 18:00 EDT
    gaps = find_gaps(NQ, expected, _holes(expected, [("2025-03-09T22:00", 20)]), 5)
    assert [(g.start_ns, g.minutes) for g in gaps] == [(to_ns("2025-03-09T22:00"), 20)]


def test_a_symbol_without_bars_has_one_gap_per_session():
    expected = trading_minutes(CAL, START, END)
    gaps = find_gaps(NQ, expected, np.empty(0, dtype=np.int64), 5)
    assert len(gaps) == 5  # Sun-Mon, Mon-Tue, Tue-Wed, Wed (holiday short), Thu-Fri (early)
    assert sum(g.minutes for g in gaps) == len(expected)


def test_params():
    gp = parse_params({"symbols": [NQ], "repair": False}, now=utc("2025-12-31T12:00"))
    assert (gp.start, gp.end, gp.min_gap_minutes) == (
        utc("2025-12-01T12:00"),
        utc("2025-12-31T12:00"),
        5,
    )
    with pytest.raises(ParamError, match="min_gap_minutes"):
        parse_params({"symbols": [NQ], "min_gap_minutes": 0})
    with pytest.raises(ParamError, match="'dbn_path' is required"):
        parse_params({"symbols": [NQ], "source": "dbn_file"})
    with pytest.raises(ParamError, match="before 'start'"):
        parse_params({"symbols": [NQ], "start": "2025-02-01", "end": "2025-01-01"})


def _bars_with_holes(holes):
    full = synthetic_bars("NQ.v.0", START, END, seed=3, quiet_fraction=0)
    keep = np.isin(full.ts.to_numpy(), _holes(full.ts.to_numpy(), holes))
    return full, full[keep]


def test_stored_minutes_and_scan_against_the_database(market_db):
    full, partial = _bars_with_holes(HOLES)
    store_bars(partial)
    with market_db.connect() as conn:
        got = stored_minutes(conn, NQ, START, END)
        assert got.tolist() == partial.ts.tolist()
        result = scan(conn, NQ, CAL, START, END, 5)
    assert [g.minutes for g in result.gaps] == [12, 30, 5, 10, 10]
    assert [m["month"] for m in result.months] == ["2025-11"]
    assert result.months[0]["expected"] == len(full)
    assert result.months[0]["stored"] == len(partial)


def test_redetection_updates_never_duplicates_and_closes_vanished_gaps(market_db):
    gaps = [
        Gap(NQ, to_ns("2025-11-24T14:30"), to_ns("2025-11-24T15:00")),
        Gap(NQ, to_ns("2025-11-25T10:00"), to_ns("2025-11-25T10:20")),
    ]
    with market_db.connect() as conn:
        assert record_gaps(conn, NQ, START, END, gaps) == {
            "gaps": 2,
            "new": 2,
            "updated": 0,
            "closed": 0,
        }
        longer = [Gap(NQ, gaps[0].start_ns, to_ns("2025-11-24T15:10"))]
        assert record_gaps(conn, NQ, START, END, longer) == {
            "gaps": 1,
            "new": 0,
            "updated": 1,
            "closed": 1,
        }
        rows = conn.execute(
            "SELECT gap_start, minutes, status FROM ohlcv_gaps ORDER BY gap_start"
        ).fetchall()
    assert [(r[1], r[2]) for r in rows] == [(40, "open"), (20, "filled")]


def test_repair_fills_from_a_source_with_the_data_and_keeps_open_without(market_db, tmp_path):
    full, partial = _bars_with_holes(HOLES)
    store_bars(partial)
    with market_db.connect() as conn:
        record_gaps(conn, NQ, START, END, scan(conn, NQ, CAL, START, END, 5).gaps)
        todo = open_gaps(conn, [NQ], START, END, 100)
    assert len(todo) == 5
    # a source that has only the first three gaps' minutes
    have = full[full.ts < to_ns("2025-11-25T00:00")].assign(symbol="NQ.v.0")
    path = write_bars(tmp_path / "nq.dbn", have, dataset="GLBX.MDP3", instruments={"NQ.v.0": 7})
    gp = parse_params(
        {
            "symbols": [NQ],
            "start": "2025-11-23",
            "end": "2025-11-28",
            "source": "dbn_file",
            "dbn_path": str(path),
        },
        now=utc("2026-01-01"),
    )
    source = DbnFileSource(str(path))
    results = []
    for gap in todo:
        item = {
            **gap,
            **Chunk(NQ, "gap", gap["gap_start"], gap["gap_end"]).to_dict(),
            "label": gap["label"],
        }
        results.append(repair_gap(item, gp, source, hook_connector()))
    assert [r["gap_status"] for r in results] == ["filled", "filled", "filled", "open", "open"]
    assert results[0]["rows_written"] == 12
    assert "no bars" in results[3]["error"]
    with market_db.connect() as conn:
        rows = conn.execute(
            "SELECT status, attempts, last_error IS NOT NULL, filled_at IS NOT "
            "NULL FROM ohlcv_gaps ORDER BY gap_start"
        ).fetchall()
        assert rows == [("filled", 1, False, True)] * 3 + [("open", 1, True, False)] * 2
        again = scan(conn, NQ, CAL, START, utc("2025-11-25T00:00"), 5)
        assert again.gaps == []
        assert record_gaps(conn, NQ, START, utc("2025-11-25T00:00"), again.gaps)["new"] == 0
