"""Scanned months kept in the database (``gaps/scanned_months.py``): a month's change
number moves exactly when its stored minutes do, and a scan that takes kept months finds
what a full read finds, after every kind of write, for whole and cut months, under a
writer committing mid-scan."""

from __future__ import annotations

import threading
from datetime import date

import numpy as np
import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.db.connection import ReusingConnector
from market_backfill.db.schema import apply_schema
from market_backfill.gaps import detect
from market_backfill.gaps.detect import find_gaps, present_mask, scan, stored_minutes
from market_backfill.gaps.scanned_months import decode_runs, encode_runs
from market_backfill.timeutil import to_ns
from market_backfill.trading_calendar import trading_minutes
from tests.conftest import store_bars
from tests.market_backfill.gaps.holes import CAL, MIN, NQ_V0, reference_months, utc
from tests.support.faults import finishes, queued_exclusive_lock

RANGE = utc("2024-12-01T00:00"), utc("2025-05-01T00:00")  # Dec and Apr hold no bars
CUT = utc("2025-01-15T13:07"), utc("2025-03-20T09:00")  # months cut at both ends
SHIFT = (  # the last bar before %s whose next minute is free moves there
    "UPDATE market_bars_ohlcv_1m_clean SET ts = ts + interval '1 minute' WHERE ts = "
    "(SELECT max(b.ts) FROM market_bars_ohlcv_1m_clean b WHERE b.ts < %s AND NOT EXISTS "
    "(SELECT 1 FROM market_bars_ohlcv_1m_clean c WHERE c.ts = b.ts + interval '1 minute'))"
)
CHANGED = "SELECT month, changed FROM bar_month_counts WHERE symbol = 'GLBX.MDP3:NQ'"


def _numbers(conn) -> dict[date, int]:
    return dict(conn.execute(CHANGED).fetchall())


def _full_read(conn, start, end):
    """The scan's answer computed from every stored minute, nothing kept."""
    expected = trading_minutes(CAL, start, end)
    stored = stored_minutes(conn, NQ_V0, start, end)
    gaps = find_gaps(NQ_V0, expected, stored, 5)
    return [(g.start_ns, g.end_ns) for g in gaps], reference_months(
        expected, present_mask(expected, stored), gaps
    )


def _scanned(conn, start, end):
    found = scan(conn, NQ_V0, CAL, start, end, 5)
    conn.commit()
    return ([(g.start_ns, g.end_ns) for g in found.gaps], found.months), found.read


def test_runs_encode_and_decode_any_sorted_minutes():
    rng = np.random.default_rng(5)
    base = 1_735_689_600 * 10**9
    for size in (0, 1, 2, 50, 5000):
        minutes = base + np.unique(rng.integers(0, 8000, size)) * MIN
        data = encode_runs(minutes)
        assert decode_runs(data).tolist() == minutes.tolist()
        assert len(data) <= 16 * len(minutes)
    assert len(encode_runs(base + np.arange(30_000) * MIN)) == 16  # one run


def test_a_months_number_moves_exactly_when_its_minutes_change(market_db, quarter_bars):
    store_bars(quarter_bars)
    with market_db.connect() as conn:
        first = _numbers(conn)
    assert sorted(first) == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    assert len(set(first.values())) == 3
    store_bars(quarter_bars.assign(close=quarter_bars["close"] + 250_000_000))  # an upsert
    with market_db.connect() as conn:
        assert _numbers(conn) == first
        conn.execute("UPDATE market_bars_ohlcv_1m_clean SET volume = volume + 1")
        conn.commit()
        assert _numbers(conn) == first  # no key moved
        # one bar moves to a free minute of the same month: March's count stays, its
        # minutes do not
        free = conn.execute(
            "SELECT t FROM generate_series(timestamptz '2025-03-03', '2025-03-31', "
            "interval '1 minute') t WHERE NOT EXISTS (SELECT 1 FROM "
            "market_bars_ohlcv_1m_clean b WHERE b.ts = t) LIMIT 1"
        ).fetchone()[0]
        before = conn.execute(
            "SELECT bars FROM bar_month_counts WHERE month = '2025-03-01'"
        ).fetchone()
        conn.execute(
            "UPDATE market_bars_ohlcv_1m_clean SET ts = %s WHERE ts = "
            "(SELECT min(ts) FROM market_bars_ohlcv_1m_clean WHERE ts >= '2025-03-10')",
            (free,),
        )
        conn.commit()
        moved = _numbers(conn)
        assert moved[date(2025, 3, 1)] > first[date(2025, 3, 1)]
        assert {m: n for m, n in moved.items() if m.month != 3} == {
            m: n for m, n in first.items() if m.month != 3
        }
        assert (
            conn.execute("SELECT bars FROM bar_month_counts WHERE month = '2025-03-01'").fetchone()
            == before
        )
        conn.execute(
            "DELETE FROM market_bars_ohlcv_1m_clean "
            "WHERE ts >= '2025-02-10' AND ts < '2025-02-10 01:00'"
        )
        conn.commit()
        deleted = _numbers(conn)
        assert deleted[date(2025, 2, 1)] > moved[date(2025, 3, 1)]
        assert deleted[date(2025, 1, 1)] == first[date(2025, 1, 1)]
        conn.execute("TRUNCATE market_bars_ohlcv_1m_clean")
        conn.commit()
        assert _numbers(conn) == {}
    store_bars(quarter_bars.iloc[:1000])
    with market_db.connect() as conn:
        (again,) = _numbers(conn).values()
    assert again > max(deleted.values())  # never a number seen before


def test_older_counts_gain_a_number_per_month(market_db, quarter_bars):
    store_bars(quarter_bars)
    with market_db.connect() as conn:
        conn.execute("ALTER TABLE bar_month_counts DROP COLUMN changed")
        conn.commit()
        apply_schema(conn)
        numbers = _numbers(conn)
        apply_schema(conn)  # once only
        assert _numbers(conn) == numbers
    assert len(numbers) == 3
    assert len(set(numbers.values())) == 3


def test_a_rescan_reads_only_the_months_written_since(market_db, quarter_bars):
    holes = quarter_bars.ts.isin(quarter_bars.ts.iloc[[100, 101, 30_000, 30_001, 60_000]])
    store_bars(quarter_bars[~holes].iloc[:-2_000])
    with market_db.connect() as conn:
        truth = _full_read(conn, *RANGE)
        first, read = _scanned(conn, *RANGE)
        assert (first, read) == (truth, 3)  # December and April hold no bars: not read
        assert _scanned(conn, *RANGE) == (truth, 0)
        conn.execute(  # the last minute before the daily break moves into it: February's
            # count stays, one of its trading minutes is missing now
            "UPDATE market_bars_ohlcv_1m_clean SET ts = '2025-02-11 22:00+00' "
            "WHERE ts = '2025-02-11 21:59+00'"
        )
        conn.commit()
        again = _full_read(conn, *RANGE)
        assert again != truth
        assert _scanned(conn, *RANGE) == (again, 1)
        assert _scanned(conn, *CUT) == (_full_read(conn, *CUT), 2)  # cut months: read
        assert _scanned(conn, *RANGE) == (again, 0)


def test_a_new_calendar_version_reads_every_month_again(market_db, quarter_bars, monkeypatch):
    store_bars(quarter_bars)
    with market_db.connect() as conn:
        truth, read = _scanned(conn, *RANGE)
        assert read == 3
        monkeypatch.setattr(detect, "calendar_version", lambda name: f"{name}@another")
        assert _scanned(conn, *RANGE) == (truth, 3)
        assert _scanned(conn, *RANGE) == (truth, 0)
        kept = conn.execute("SELECT count(DISTINCT calendar) FROM gap_scan_months").fetchone()
    assert kept == (2,)


def test_kept_months_agree_with_full_reads_through_random_writes(market_db, quarter_bars):
    rng = np.random.default_rng(11)
    store_bars(quarter_bars)
    ts = quarter_bars.ts.to_numpy()
    with market_db.connect() as conn:
        for step in range(12):
            kind = step % 4
            lo = int(rng.integers(0, len(ts) - 500))
            if kind == 0:  # a hole
                conn.execute(
                    "DELETE FROM market_bars_ohlcv_1m_clean WHERE ts >= to_timestamp(%s) "
                    "AND ts < to_timestamp(%s)",
                    (ts[lo] / 1e9, ts[lo + int(rng.integers(1, 400))] / 1e9),
                )
            elif kind == 1:  # bars come back
                store_bars(quarter_bars.iloc[lo : lo + int(rng.integers(1, 3000))])
            elif kind == 2:  # a key moves to the free minute after it
                conn.execute(SHIFT, (utc(str(np.datetime64(int(ts[lo]), "ns"))),))
            elif step == 11:  # everything goes, some comes back
                conn.execute("TRUNCATE market_bars_ohlcv_1m_clean")
                conn.commit()
                store_bars(quarter_bars.iloc[lo : lo + 40_000])
            conn.commit()
            for span in (RANGE, CUT):
                assert _scanned(conn, *span)[0] == _full_read(conn, *span), (step, span)


def test_a_writer_committing_mid_scan_never_leaves_a_stale_month(
    market_db, quarter_bars, monkeypatch
):
    """The months' numbers are read before their bars: a write committed in between
    is in the bars read, and the result kept under the older number is never taken."""
    store_bars(quarter_bars)
    read_range = detect._read_range
    writes = []

    def read_after_a_write(cur, series, lo, hi):
        if not writes:
            with market_db.connect() as other:
                other.execute(
                    "DELETE FROM market_bars_ohlcv_1m_clean "
                    "WHERE ts >= %s AND ts < %s + interval '30 minutes'",
                    (utc("2025-02-11T15:00"), utc("2025-02-11T15:00")),
                )
            writes.append(lo)
        return read_range(cur, series, lo, hi)

    with market_db.connect() as conn:
        monkeypatch.setattr(detect, "_read_range", read_after_a_write)
        during, read = _scanned(conn, *RANGE)
        monkeypatch.setattr(detect, "_read_range", read_range)
        truth = _full_read(conn, *RANGE)
        assert (during, read) == (truth, 3)  # the write is in the bars read
        hole = to_ns("2025-02-11T15:00")
        assert any(lo <= hole and hole + 30 * MIN <= hi for lo, hi in during[0])
        assert _scanned(conn, *RANGE) == (truth, 1)  # February again: its number moved
        assert _scanned(conn, *RANGE) == (truth, 0)


def test_consecutive_groups_cut_runs_at_gaps_and_at_the_limit():
    assert detect.consecutive_groups([], 12) == []
    assert detect.consecutive_groups([0, 1, 2, 4, 5, 9], 12) == [[0, 1, 2], [4, 5], [9]]
    assert detect.consecutive_groups(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]


def test_consecutive_months_are_read_together(market_db, quarter_bars, monkeypatch):
    """A first scan reads the months to read in runs of up to ``MONTHS_PER_READ`` by one
    range query each, split at the months' starts: the same answer as a full read, for
    whole and cut months; a month between two read ones that is kept splits the run."""
    store_bars(quarter_bars)
    read_range = detect._read_range
    queries = []

    def counted(cur, series, lo, hi):
        queries.append((lo, hi))
        return read_range(cur, series, lo, hi)

    def scan_counted(conn, start, end):
        truth = _full_read(conn, start, end)
        queries.clear()
        monkeypatch.setattr(detect, "_read_range", counted)
        found = _scanned(conn, start, end)
        monkeypatch.setattr(detect, "_read_range", read_range)
        assert found[0] == truth
        return found[1], list(queries)

    jan, feb, mar, apr = (utc(f"2025-{m:02d}-01T00:00") for m in (1, 2, 3, 4))
    with market_db.connect() as conn:
        assert scan_counted(conn, *RANGE) == (3, [(jan, apr)])
        # cut months at both ends, February kept between them: two queries
        assert scan_counted(conn, *CUT) == (2, [(CUT[0], feb), (mar, CUT[1])])
        monkeypatch.setattr(detect, "MONTHS_PER_READ", 2)
        monkeypatch.setattr(detect, "calendar_version", lambda name: f"{name}@another")
        assert scan_counted(conn, *RANGE) == (3, [(jan, mar), (mar, apr)])
        for day in ("2025-01-20", "2025-03-20"):  # January and March change, February not
            conn.execute(
                "DELETE FROM market_bars_ohlcv_1m_clean WHERE ts >= %s "
                "AND ts < %s + interval '7 minutes'",
                (utc(f"{day}T15:00"), utc(f"{day}T15:00")),
            )
        conn.commit()
        assert scan_counted(conn, *RANGE) == (2, [(jan, feb), (mar, apr)])


def _months_of_quarter():
    jan, feb, mar, apr = (utc(f"2025-{m:02d}-01T00:00") for m in (1, 2, 3, 4))
    return [(jan, feb), (feb, mar), (mar, apr)]


def test_two_connections_read_two_ranges_at_once_and_the_second_is_given_back(
    market_db, quarter_bars, monkeypatch
):
    """The first two ranges' reads meet at a barrier: on one connection the second never
    starts while the first waits, and the barrier breaks. Each range's minutes as a full
    read's, in order; the second connection goes back to the connector."""
    store_bars(quarter_bars)
    read_range = detect._read_range
    meet = threading.Barrier(2, timeout=10)
    backends = {}

    def met(cur, series, lo, hi):
        backends[lo] = cur.connection.info.backend_pid
        if lo < ranges[2][0]:
            meet.wait()
        return read_range(cur, series, lo, hi)

    ranges = _months_of_quarter()
    connect = ReusingConnector(hook_connector())
    with market_db.connect() as conn:
        monkeypatch.setattr(detect, "_read_range", met)
        got = list(detect.read_ranges(conn, NQ_V0, ranges, connect))
        monkeypatch.setattr(detect, "_read_range", read_range)
        for (lo, hi), stored in zip(ranges, got, strict=True):
            assert stored.tolist() == stored_minutes(conn, NQ_V0, lo, hi).tolist()
        assert len(set(backends.values())) == 2
        assert conn.info.backend_pid in backends.values()
    assert connect.opened == 1
    helper = connect()  # the helper, given back idle
    assert helper.info.backend_pid in backends.values()
    connect.close()
    helper.close()


def test_a_scan_over_two_connections_finds_what_a_full_read_finds(
    market_db, quarter_bars, monkeypatch
):
    store_bars(quarter_bars)
    monkeypatch.setattr(detect, "MONTHS_PER_READ", 1)  # four ranges, read two at a time
    connect = ReusingConnector(hook_connector())
    with market_db.connect() as conn:
        truth = _full_read(conn, *RANGE)
        found = scan(conn, NQ_V0, CAL, *RANGE, 5, connect)
        conn.commit()
        assert ([(g.start_ns, g.end_ns) for g in found.gaps], found.months) == truth
        assert found.read == 3
    assert connect.opened == 1
    connect.close()


def test_a_read_abandoned_or_failing_ends_its_readers_and_frees_the_connection(
    market_db, quarter_bars, monkeypatch
):
    store_bars(quarter_bars)
    ranges = _months_of_quarter()
    read_range = detect._read_range

    def failing(cur, series, lo, hi):
        if lo == ranges[1][0]:
            raise ValueError("unreadable")
        return read_range(cur, series, lo, hi)

    def readers() -> set[str]:
        return {t.name for t in threading.enumerate() if t.name.startswith("gap scan reader")}

    connect = ReusingConnector(hook_connector())
    with market_db.connect() as conn:
        for stored in detect.read_ranges(conn, NQ_V0, ranges, connect):
            assert len(stored)
            break  # abandoned after the first range
        assert not readers()
        assert conn.execute("SELECT 1").fetchone() == (1,)
        monkeypatch.setattr(detect, "_read_range", failing)
        reads = detect.read_ranges(conn, NQ_V0, ranges, connect)
        assert len(next(reads))
        with pytest.raises(ValueError, match="unreadable"):
            next(reads)
        assert not readers()
        assert conn.execute("SELECT 1").fetchone() == (1,)
    connect.close()


def test_a_scan_failing_between_reads_ends_its_readers_before_it_raises(
    market_db, quarter_bars, monkeypatch
):
    store_bars(quarter_bars)
    monkeypatch.setattr(detect, "MONTHS_PER_READ", 1)
    compare = detect.present_mask
    calls = []

    def failing(expected, stored):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("cannot compare")
        return compare(expected, stored)

    monkeypatch.setattr(detect, "present_mask", failing)
    connect = ReusingConnector(hook_connector())
    with market_db.connect() as conn:
        with pytest.raises(ValueError, match="cannot compare") as failed:
            scan(conn, NQ_V0, CAL, *RANGE, 5, connect)
        assert failed.traceback  # kept: the readers end with the scan, not with it
        readers = [t for t in threading.enumerate() if t.name.startswith("gap scan reader")]
        assert not readers
        conn.rollback()
        assert conn.execute("SELECT 1").fetchone() == (1,)
    connect.close()


def test_a_lock_request_queued_behind_the_scans_transaction_does_not_deadlock(
    market_db, quarter_bars
):
    """As for the split reads (``test_split_read.py``): the second reader, stuck behind
    an exclusive lock request that waits for the scan's own transaction, gives up after
    its lock timeout, and the ranges from there on are read on the scan's connection."""
    store_bars(quarter_bars)
    ranges = _months_of_quarter()
    connect = ReusingConnector(hook_connector())
    with market_db.connect() as conn:
        want = [stored_minutes(conn, NQ_V0, lo, hi).tolist() for lo, hi in ranges]
        with queued_exclusive_lock(market_db, "market_bars_ohlcv_1m_clean"):
            got = finishes(
                lambda: [r.tolist() for r in detect.read_ranges(conn, NQ_V0, ranges, connect)]
            )
            assert got == want
            conn.commit()
    connect.close()
