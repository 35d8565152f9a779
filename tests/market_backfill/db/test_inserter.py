from __future__ import annotations

import signal
import threading
import time

import psycopg
import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.db.connection import ReusingConnector, release
from market_backfill.db.inserter import (
    BatchAttempt,
    BatchInserter,
    BatchInsertError,
    ConflictPolicy,
)
from market_backfill.db.tables import CLEAN_TABLE
from market_backfill.reingest.load import BAR_BINARY, BAR_UPSERT, CLEAN_COLUMNS
from market_backfill.symbols import Series, parse_symbol
from market_backfill.timeutil import from_ns
from market_backfill_devtools.sample import bar_frame
from tests.conftest import CLEAN_TEXT_KINDS

SERIES = Series(parse_symbol("GLBX.MDP3:NQ"), "v", 0)


def rows_of(n: int, **kwargs):
    """``n`` bars as rows of the clean table (series NQ.v.0), a DataFrame: the inserter
    takes frames and numpy columns alike (the DAGs' rows are numpy columns: ``clean_rows``)."""
    return bar_frame(n, **kwargs).assign(roll_rule=SERIES.roll_rule, rank=SERIES.rank)


def _inserter(connect, **kwargs) -> BatchInserter:
    kinds = {"kinds": CLEAN_TEXT_KINDS} if kwargs.pop("text", False) else {"binary": BAR_BINARY}
    return BatchInserter(connect, CLEAN_TABLE, CLEAN_COLUMNS, BAR_UPSERT, **kinds, **kwargs)


def _count(db) -> tuple[int, int]:
    with db.connect() as conn:
        return conn.execute(
            f"SELECT count(*), count(DISTINCT (symbol, ts)) FROM {CLEAN_TABLE}"
        ).fetchone()


def test_hook_connector_gives_the_driver_the_tests_exercise(market_db):
    conn = hook_connector()()
    try:
        assert isinstance(conn, psycopg.Connection)
    finally:
        conn.close()


@pytest.mark.parametrize(("rows", "batch_size"), [(1234, 500), (500, 500), (1, 500), (7, 3)])
def test_commits_once_per_batch(market_db, rows, batch_size):
    with _inserter(hook_connector(), batch_size=batch_size) as ins:
        stats = ins.insert(rows_of(rows))
    expected = -(-rows // batch_size)
    assert (stats.rows, stats.batches, stats.commits, stats.retries) == (
        rows,
        expected,
        expected,
        0,
    )
    assert stats.written == rows
    assert _count(market_db) == (rows, rows)


def test_prices_round_trip_exactly(market_db):
    frame = rows_of(3)
    frame.loc[0, "open"] = 21034_123456789
    frame.loc[0, "high"] = 21040_000000001
    with _inserter(hook_connector()) as ins:
        ins.insert(frame)
    with market_db.connect() as conn:
        o, h = conn.execute(
            f"SELECT open::text, high::text FROM {CLEAN_TABLE} ORDER BY ts"
        ).fetchone()
    assert (o, h) == ("21034.123456789", "21040.000000001")


def test_rerun_is_idempotent_and_only_rewrites_changed_rows(market_db):
    frame = rows_of(1200)
    with _inserter(hook_connector()) as ins:
        ins.insert(frame)
        again = ins.insert(frame)
        changed = frame.copy()
        changed.loc[[5, 700], "volume"] += 1
        third = ins.insert(changed)
    assert again.written == 0
    assert third.written == 2
    assert _count(market_db) == (1200, 1200)


def test_iterator_of_tuples(market_db):
    frame = rows_of(10)
    from decimal import Decimal

    from market_backfill.timeutil import from_ns

    rows = (
        (
            r.symbol,
            r.roll_rule,
            r.rank,
            from_ns(r.ts),
            Decimal(r.open) / 10**9,
            Decimal(r.high) / 10**9,
            Decimal(r.low) / 10**9,
            Decimal(r.close) / 10**9,
            int(r.volume),
            int(r.instrument_id),
        )
        for r in frame.itertuples()
    )
    with _inserter(hook_connector(), batch_size=4, text=True) as ins:
        stats = ins.insert(rows)
    assert (stats.rows, stats.batches, stats.commits) == (10, 3, 3)
    assert _count(market_db) == (10, 10)


def test_batch_size_must_be_positive(market_db):
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        _inserter(hook_connector(), batch_size=0)


def test_a_bad_batch_names_itself_and_keeps_earlier_batches(market_db):
    frame = bar_frame(1400)
    from market_backfill.timeutil import from_ns

    rows = [
        (s, "v", 0, from_ns(t), o / 1e9, h / 1e9, lo / 1e9, c / 1e9, v, iid)
        for s, t, o, h, lo, c, v, iid in frame.itertuples(index=False)
    ]
    rows[1100] = (*rows[1100][:8], "not-a-number", 1)
    with _inserter(hook_connector(), text=True) as ins, pytest.raises(BatchInsertError) as err:
        ins.insert(rows)
    assert err.value.batch == 3
    assert "batch 3 (rows 1001-1400)" in str(err.value)
    assert "2 earlier batches are committed" in str(err.value)
    assert _count(market_db) == (1000, 1000)


def test_conflict_do_nothing_counts_only_new_rows(market_db):
    policy = ConflictPolicy(key=("symbol", "roll_rule", "rank", "ts"))
    frame = rows_of(600)
    ins = BatchInserter(hook_connector(), CLEAN_TABLE, CLEAN_COLUMNS, policy, binary=BAR_BINARY)
    with ins:
        first = ins.insert(frame.iloc[:400])
        second = ins.insert(frame)
    assert (first.written, second.written) == (400, 200)


def test_the_hook_sees_every_attempt_of_every_batch_in_order(market_db):
    seen = []
    with _inserter(hook_connector(), batch_size=300, hook=seen.append) as ins:
        ins.insert(rows_of(700))
    assert [(a.batch, a.attempt, a.first_row, a.last_row) for a in seen] == [
        (1, 1, 1, 300),
        (2, 1, 301, 600),
        (3, 1, 601, 700),
    ]
    assert seen[0].conn is None  # the first batch opens the connection
    assert seen[1].conn is not None
    assert seen[2].conn is seen[1].conn
    assert {a.table for a in seen} == {CLEAN_TABLE}


def test_batches_commit_without_waiting_and_the_connection_goes_back_reset(market_db):
    """Every batch after the first sees its connection's commits not waiting for the disk;
    the connection the task's connector gets back waits again (the server's default)."""
    modes = []

    def hook(at: BatchAttempt) -> None:
        if at.conn is not None:
            modes.append(at.conn.execute("SHOW synchronous_commit").fetchone()[0])

    connect = ReusingConnector(hook_connector())
    try:
        with _inserter(connect, batch_size=100, hook=hook) as ins:
            stats = ins.insert(rows_of(450))
        assert (stats.commits, modes) == (5, ["off"] * 4)
        conn = connect()
        assert connect.opened == 1  # the inserter's connection, given back
        assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"
        release(connect, conn)
    finally:
        connect.close()
    assert _count(market_db) == (450, 450)


def test_the_process_wide_hook_applies_when_none_is_given(market_db, monkeypatch):
    seen = []
    monkeypatch.setattr(BatchInserter, "default_hook", seen.append)
    with _inserter(hook_connector(), batch_size=5) as ins:
        ins.insert(rows_of(12))
    assert [a.batch for a in seen] == [1, 2, 3]


def test_progress_is_logged_every_ten_batches_and_at_the_end(market_db, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="market_backfill.db.inserter")
    with _inserter(hook_connector(), batch_size=100) as ins:
        ins.insert(rows_of(1234))
    lines = [r.getMessage() for r in caplog.records if "batch" in r.getMessage()]
    assert lines == [
        f"{CLEAN_TABLE}: batch 10/13, 1000 rows (commits: 10, retries: 0)",
        f"{CLEAN_TABLE}: batch 13/13, 1234 rows (commits: 13, retries: 0)",
    ]


# -- several writers ----------------------------------------------------------------------------


def test_two_writers_write_batches_at_once_each_committed_once(market_db):
    """Batches 1 and 2 meet at a barrier before their writes: with one writer the second
    never starts while the first waits, and the barrier breaks."""
    meet = threading.Barrier(2, timeout=10)
    seen, backends = [], set()

    def hook(at: BatchAttempt) -> None:
        seen.append((at.batch, at.attempt, at.first_row, at.last_row))
        if at.batch in (1, 2):
            meet.wait()
        if at.conn is not None:
            backends.add(at.conn.info.backend_pid)

    with _inserter(hook_connector(), batch_size=100, hook=hook, writers=2) as ins:
        stats = ins.insert(rows_of(2050))
    assert sorted(seen) == [(b, 1, (b - 1) * 100 + 1, min(b * 100, 2050)) for b in range(1, 22)]
    assert len(backends) == 2
    assert (stats.rows, stats.batches, stats.commits, stats.written) == (2050, 21, 21, 2050)
    assert stats.rows_committed == 2050
    assert _count(market_db) == (2050, 2050)


def test_few_batches_go_over_one_connection(market_db):
    seen = []
    batches = BatchInserter.parallel_from - 1
    with _inserter(hook_connector(), batch_size=10, hook=seen.append, writers=2) as ins:
        ins.insert(rows_of(10 * batches))
    assert [a.batch for a in seen] == list(range(1, batches + 1))  # in order: one writer
    assert len({id(a.conn) for a in seen[1:]}) == 1


def test_writers_rewrite_only_changed_rows_on_a_rerun(market_db):
    frame = rows_of(3000)
    with _inserter(hook_connector(), batch_size=200, writers=2) as ins:
        ins.insert(frame.iloc[:1000])
        again = ins.insert(frame)
        assert ins.upsert_mode
    assert (again.commits, again.written) == (15, 2000)
    changed = frame.assign(close=frame.close + 250_000_000)
    with _inserter(hook_connector(), batch_size=200, writers=2) as ins:
        third = ins.insert(changed)
    assert third.written == 3000
    assert _count(market_db) == (3000, 3000)
    with market_db.connect() as conn:
        closes = conn.execute(f"SELECT (close * 1e9)::int8 FROM {CLEAN_TABLE} ORDER BY ts")
        assert [c for (c,) in closes] == changed.close.tolist()


def _bad_at(frame, *rows: int):
    """``frame`` with no symbol on ``rows``: the server refuses their batches (NOT NULL)."""
    frame = frame.copy()
    frame.loc[list(rows), "symbol"] = None
    return frame


def test_of_two_bad_batches_the_first_is_raised_after_both_writers_stop(market_db):
    frame = _bad_at(rows_of(2000), 250, 350)  # batches 3 and 4, written at once
    meet = threading.Barrier(2, timeout=10)

    def hook(at: BatchAttempt) -> None:
        if at.batch in (3, 4):
            meet.wait()

    with (
        _inserter(hook_connector(), batch_size=100, hook=hook, writers=2) as ins,
        pytest.raises(BatchInsertError) as err,
    ):
        ins.insert(frame)
    assert (err.value.batch, err.value.first_row, err.value.last_row) == (3, 201, 300)
    message = str(err.value)
    assert "batch 3/20 (rows 201-300) was rejected by the database" in message
    assert "2 other batches are committed (2 writers: later batches may be among them)" in message
    assert _count(market_db) == (200, 200)


def test_after_a_bad_batch_the_other_writer_ends_its_batch_and_takes_no_more(market_db):
    """Batch 3 is refused while the other writer holds batch 4, which starts a second
    after they meet (the refusal takes milliseconds): batch 4 goes in, batch 5 never."""
    frame = _bad_at(rows_of(2000), 250)
    meet = threading.Barrier(2, timeout=10)
    attempted = []

    def hook(at: BatchAttempt) -> None:
        attempted.append(at.batch)
        if at.batch in (3, 4):
            meet.wait()
        if at.batch == 4:
            time.sleep(1.0)

    with (
        _inserter(hook_connector(), batch_size=100, hook=hook, writers=2) as ins,
        pytest.raises(BatchInsertError) as err,
    ):
        ins.insert(frame)
    assert err.value.batch == 3
    assert "3 other batches are committed" in str(err.value)
    assert sorted(attempted) == [1, 2, 3, 4]
    with market_db.connect() as conn:
        stored = conn.execute(f"SELECT ts FROM {CLEAN_TABLE} ORDER BY ts").fetchall()
    want = [*frame.ts.iloc[:200], *frame.ts.iloc[300:400]]
    assert [t for (t,) in stored] == [from_ns(int(t)) for t in want]


def test_writers_must_be_positive(market_db):
    with pytest.raises(ValueError, match="writers must be >= 1"):
        _inserter(hook_connector(), writers=0)


def test_a_signal_while_waiting_for_the_writers_ends_them_before_it_is_raised(market_db):
    """The second writer holds its first batch until the first writer has written the
    rest and waits for it; then a signal interrupts the first writer (as Airflow stops a
    task, in its main thread), and the held batch goes in half a second later: the
    signal's exception is raised only after that."""

    class Stop(BaseException):
        pass

    release = threading.Event()
    main = threading.main_thread().ident

    def hook(at: BatchAttempt) -> None:
        if threading.current_thread().name.endswith("writer 2"):
            deadline = time.monotonic() + 10
            while _count(market_db)[0] < 900 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)  # the first writer is waiting now
            signal.pthread_kill(main, signal.SIGUSR1)
            release.wait(10)

    def interrupt(signum, frame):
        threading.Timer(0.5, release.set).start()
        raise Stop

    before = signal.signal(signal.SIGUSR1, interrupt)
    try:
        with (
            _inserter(hook_connector(), batch_size=100, hook=hook, writers=2) as ins,
            pytest.raises(Stop),
        ):
            ins.insert(rows_of(1000))
        assert _count(market_db) == (1000, 1000)  # the held batch went in before the raise
    finally:
        signal.signal(signal.SIGUSR1, before)
        release.set()
