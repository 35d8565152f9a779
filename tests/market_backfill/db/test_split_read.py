"""One range read as two halves over two connections, against a real PostgreSQL."""

from __future__ import annotations

import threading
import time

import numpy as np
import psycopg
import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.db.connection import ReusingConnector
from market_backfill.db.split_read import SPLIT_FROM_NS, helper_read, read_split
from market_backfill.names import MINUTE_NS
from market_backfill.timeutil import to_ns
from market_backfill.triangles.bars import read_bars
from tests.conftest import store_bars
from tests.market_backfill.gaps.holes import NQ_V0
from tests.support.faults import finishes, queued_exclusive_lock

LO, HI = to_ns("2025-01-06T00:00Z"), to_ns("2025-03-01T00:00Z")


def _bars(conn, lo: int, hi: int, connect=None) -> np.ndarray:
    got = read_bars(
        conn, "market_bars_ohlcv_1m_clean", NQ_V0, lo, hi, legacy=False, connect=connect
    )
    return np.column_stack([got[k] for k in ("ts", "open", "high", "low", "close")])


def test_two_halves_are_read_at_once_on_two_backends_and_equal_one_read(market_db, quarter_bars):
    """Both halves' reads meet at a barrier: read one after the other on one connection,
    the first would wait alone and the barrier break. Together they equal one read (the
    bar at the cut in exactly one half); the second connection goes back to the connector."""
    store_bars(quarter_bars)
    meet = threading.Barrier(2, timeout=10)
    seen = []

    def read(conn, lo, hi):
        seen.append((conn.info.backend_pid, lo, hi, threading.current_thread().name))
        meet.wait()
        return _bars(conn, lo, hi)

    connect = ReusingConnector(hook_connector())
    with market_db.connect() as conn:
        got = read_split(conn, connect, read, LO, HI)
        whole = _bars(conn, LO, HI)
    assert got.tolist() == whole.tolist()
    assert len(got) > 50_000
    assert len({pid for pid, *_ in seen}) == 2
    (lo1, mid1), (mid2, hi2) = sorted((lo, hi) for _, lo, hi, _ in seen)
    assert (lo1, mid1 == mid2, hi2) == (LO, True, HI)
    assert mid1 % MINUTE_NS == 0
    assert LO < mid1 < HI
    assert any(name.startswith("range reader") for *_, name in seen)
    assert connect.opened == 1
    helper = connect()  # the helper, given back idle
    assert helper.info.backend_pid in {pid for pid, *_ in seen}
    helper.close()
    connect.close()


def test_a_short_range_or_no_connector_reads_on_one_connection(market_db, quarter_bars):
    store_bars(quarter_bars)
    connect = ReusingConnector(hook_connector())
    with market_db.connect() as conn:
        short = read_split(conn, connect, _bars, LO, LO + SPLIT_FROM_NS - MINUTE_NS)
        alone = read_split(conn, None, _bars, LO, HI)
        assert alone.tolist() == _bars(conn, LO, HI).tolist()
    assert len(short) > 5_000
    assert connect.opened == 0
    connect.close()


def test_a_failing_half_is_raised_and_its_helper_closed(market_db, quarter_bars):
    store_bars(quarter_bars)
    helpers = []

    def connect():
        conn = hook_connector()()
        helpers.append(conn)
        return conn

    # both failing: this thread's (the second half's) is raised, once the first ended
    for failing, raised in (("first", "first"), ("second", "second"), ("both", "second")):

        def read(conn, lo, hi, failing=failing):
            half = "first" if lo == LO else "second"
            if failing in (half, "both"):
                if half == "second":
                    time.sleep(0.2)  # the first half fails first
                raise ValueError(f"{half} half unreadable")
            return _bars(conn, lo, hi)

        with market_db.connect() as conn:
            with pytest.raises(ValueError, match=f"{raised} half unreadable"):
                read_split(conn, connect, read, LO, HI)
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert not any(t.name.startswith("range reader") for t in threading.enumerate())
    assert len(helpers) == 3
    assert all(h.closed for h in helpers)


def test_a_lost_helper_connection_is_raised_as_lost(market_db, quarter_bars):
    """The helper's backend is terminated before its read: the lost connection reaches
    the caller as such (its transaction retries the whole read on a new connection)."""
    store_bars(quarter_bars)

    def connect():
        conn = hook_connector()()
        with market_db.connect() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        return conn

    with market_db.connect() as conn:
        with pytest.raises(psycopg.OperationalError):
            read_split(conn, connect, _bars, LO, HI)


def test_a_lock_request_queued_behind_the_callers_transaction_does_not_deadlock(
    market_db, quarter_bars
):
    """The caller's transaction holds the table's share lock; another session asks for
    an exclusive one (an ALTER TABLE: a migration's) and waits for it; the helper's read
    would wait behind that request, the request for the caller, the caller for the
    helper. The helper gives up after its lock timeout and the caller reads both halves."""
    store_bars(quarter_bars)
    connect = ReusingConnector(hook_connector())
    with market_db.connect() as conn:
        whole = _bars(conn, LO, HI)  # the caller's transaction now holds the share lock
        with queued_exclusive_lock(market_db, "market_bars_ohlcv_1m_clean"):
            got = finishes(lambda: read_split(conn, connect, _bars, LO, HI))
            assert got.tolist() == whole.tolist()
            conn.commit()
    helper = connect()  # the helper, given back usable
    assert helper.execute("SELECT 1").fetchone() == (1,)
    helper.close()
    connect.close()


def test_a_helper_read_holds_no_lock_once_it_ended(market_db, quarter_bars):
    """Else the caller's read could queue behind an exclusive request waiting for the
    helper's open transaction, which ends only when the caller's read has."""
    store_bars(quarter_bars)
    with market_db.connect() as helper, market_db.connect() as admin:
        got = helper_read(helper, _bars, LO, LO + SPLIT_FROM_NS)
        assert len(got) > 5_000
        held = admin.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND relation = "
            "'market_bars_ohlcv_1m_clean'::regclass",
            (helper.info.backend_pid,),
        ).fetchone()[0]
        assert held == 0
        assert helper.execute("SHOW lock_timeout").fetchone()[0] == "0"  # SET LOCAL only
