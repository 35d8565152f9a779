"""The inserter against real faults, injected deterministically through its hook: a
backend terminated before chosen batches, a server stopped before one batch and started
again before a chosen retry. The backoff waits are recorded, never slept (conftest)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.db.inserter import (
    DURABLE_EVERY,
    BatchAttempt,
    BatchInserter,
    BatchInsertError,
)
from market_backfill.db.schema import apply_schema
from market_backfill.db.tables import CLEAN_TABLE
from market_backfill.reingest.load import BAR_BINARY, BAR_UPSERT, CLEAN_COLUMNS, clean_rows
from market_backfill.retry import Backoff
from market_backfill.symbols import Series, parse_symbol
from market_backfill.timeutil import from_ns
from market_backfill_devtools.sample import bar_frame
from tests.conftest import CLEAN_TEXT_KINDS
from tests.support.faults import PrivateServer, terminate_backend

pytestmark = pytest.mark.fault


SERIES = Series(parse_symbol("GLBX.MDP3:NQ"), "v", 0)


def rows_of(n: int, **kwargs):
    """``n`` bars as rows of the clean table (series NQ.v.0)."""
    return clean_rows(bar_frame(n, **kwargs), SERIES)


def _tuples(n: int) -> list[tuple]:
    return [
        (
            s,
            "v",
            0,
            from_ns(t),
            Decimal(o) / 10**9,
            Decimal(h) / 10**9,
            Decimal(lo) / 10**9,
            Decimal(c) / 10**9,
            int(v),
            int(iid),
        )
        for s, t, o, h, lo, c, v, iid in bar_frame(n).itertuples(index=False)
    ]


def _count(target) -> tuple[int, int]:
    with target.connect() as conn:
        return conn.execute(f"SELECT count(*), count(DISTINCT ts) FROM {CLEAN_TABLE}").fetchone()


def _inserter(**kwargs) -> BatchInserter:
    """The clean table's inserter: binary COPY, or with ``text=True`` the text path (rows
    given as tuples)."""
    kinds = {"kinds": CLEAN_TEXT_KINDS} if kwargs.pop("text", False) else {"binary": BAR_BINARY}
    return BatchInserter(
        hook_connector(), CLEAN_TABLE, CLEAN_COLUMNS, BAR_UPSERT, **kinds, **kwargs
    )


@pytest.mark.parametrize(("rows", "writers"), [("frame", 1), ("tuples", 1), ("frame", 2)])
def test_backend_killed_before_batches_is_retried_exactly_once_each(
    market_db, sleeps, rows, writers
):
    killed = []

    def kill(at: BatchAttempt) -> None:
        if at.batch in (4, 7) and at.attempt == 1:
            killed.append(terminate_backend(market_db, at.conn))

    data = rows_of(5000) if rows == "frame" else _tuples(5000)
    backoff = Backoff(attempts=3, base_s=0.5)
    with _inserter(hook=kill, backoff=backoff, text=rows == "tuples", writers=writers) as ins:
        stats = ins.insert(data)
    assert killed == [True, True]
    assert stats.retries == 2
    assert len(stats.retry_errors) == 2
    assert (stats.batches, stats.commits) == (10, 10)
    assert sleeps == [0.5, 0.5]  # the backoff before each retry, recorded
    assert _count(market_db) == (5000, 5000)


def test_a_kill_after_a_rerun_switches_to_upserts_without_doubling(market_db):
    frame = rows_of(2000)
    with _inserter() as ins:
        ins.insert({c: values[:1200] for c, values in frame.items()})

    def kill(at: BatchAttempt) -> None:
        if at.batch == 3 and at.attempt == 1:
            terminate_backend(market_db, at.conn)

    with _inserter(hook=kill) as ins:
        stats = ins.insert(frame)
    assert ins.upsert_mode
    assert (stats.retries, stats.written) == (1, 800)
    assert _count(market_db) == (2000, 2000)


def test_a_batch_written_again_and_rejected_is_the_one_named(market_db, sleeps):
    """After a lost connection the batches since the last durable step are written
    again; one the database then rejects is named, not the batch being written."""
    frame = rows_of(1500)
    cut = from_ns(int(frame["ts"][499]))  # batch 1's last bar

    def kill_then_refuse_batch_1(at: BatchAttempt) -> None:
        if at.batch == 2 and at.attempt == 1:
            with market_db.connect(autocommit=True) as conn:
                conn.execute(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "IF NEW.ts <= '" + cut.isoformat() + "'::timestamptz THEN "
                    "RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
                )
                conn.execute(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON {CLEAN_TABLE} "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            terminate_backend(market_db, at.conn)

    with (
        _inserter(hook=kill_then_refuse_batch_1) as ins,
        pytest.raises(BatchInsertError) as err,
    ):
        ins.insert(frame)
    assert (err.value.batch, err.value.first_row, err.value.last_row) == (1, 1, 500)
    message = str(err.value)
    assert "batch 1 (rows 1-500), written again after a lost connection, was rejected" in message
    assert "RaiseException: refused" in message
    assert message.endswith("0 other batches are committed.")  # batch 2 never was
    assert "re-running" not in message


@pytest.fixture
def private_server(tmp_path, monkeypatch):
    server = PrivateServer(tmp_path / "pg")
    monkeypatch.setenv("AIRFLOW_CONN_MARKET_DB", server.target.airflow_uri)
    with server.target.connect() as conn:
        apply_schema(conn)
    yield server
    server.cleanup()


def test_server_stopped_and_restarted_mid_run_recovers(private_server, sleeps):
    def outage(at: BatchAttempt) -> None:
        if at.batch == 7 and at.attempt == 1:
            private_server.stop()  # this attempt and the next fail: no server
        if at.batch == 7 and at.attempt == 3:
            private_server.start()

    with _inserter(hook=outage, backoff=Backoff(attempts=4, base_s=1.0)) as ins:
        stats = ins.insert(rows_of(6000))
    assert stats.retries == 2
    assert sleeps == [1.0, 2.0]
    assert (stats.rows, stats.batches, stats.commits) == (6000, 12, 12)
    assert _count(private_server.target) == (6000, 6000)


@pytest.fixture
def slow_wal_writer(private_server):
    """The private server's WAL writer waits 10 s between flushes: commits that did not
    wait for the disk stay in the server's memory, which a crash loses."""
    with private_server.target.connect(autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET wal_writer_delay = '10s'")
        conn.execute("SELECT pg_reload_conf()")
    return private_server


def _crash_before(server: PrivateServer, batch: int, after_restart: list[int]):
    """A hook: crash the server before ``batch``'s first attempt; the first retry of any
    writer starts it again and records the rows stored then."""
    lock = threading.Lock()  # the other writer's retry waits until the crash is over

    def hook(at: BatchAttempt) -> None:
        with lock:
            if at.batch == batch and at.attempt == 1:
                server.crash()
            if at.attempt > 1 and not after_restart:
                server.start()
                after_restart.append(_count(server.target)[0])

    return hook


@pytest.mark.parametrize(("writers", "batch"), [(1, 500), (2, 250)])
def test_commits_a_crash_lost_are_written_again_and_counted_once(
    slow_wal_writer, sleeps, writers, batch
):
    """Batches commit without waiting for the disk; the crash before batch 6 loses the
    commits before it with the server's memory (when batch 6 is taken, batches 1-4 at
    least are committed: each writer holds one batch); the insert writes them again:
    every row stored and counted once. (Two writers: 16 batches, so that neither comes
    to its end, which makes its batches durable, before the crash.)"""
    after_restart: list[int] = []
    hook = _crash_before(slow_wal_writer, 6, after_restart)
    backoff = Backoff(attempts=3, base_s=1.0)
    with _inserter(hook=hook, batch_size=batch, backoff=backoff, writers=writers) as ins:
        stats = ins.insert(rows_of(4000))
    assert after_restart[0] < 4 * batch  # the crash lost committed batches
    batches = 4000 // batch
    assert (stats.rows, stats.batches, stats.commits, stats.written) == (
        4000,
        batches,
        batches,
        4000,
    )
    lost_at_least = (4 * batch - after_restart[0]) // batch
    if writers == 1:  # batch 6's failed attempt, then each lost batch written again
        assert stats.retries == 1 + (5 * batch - after_restart[0]) // batch
    else:  # 1-2 failed attempts (one per writer), 1-5 committed before: some lost
        assert 1 + lost_at_least <= stats.retries <= 2 + lost_at_least + 1
    assert _count(slow_wal_writer.target) == (4000, 4000)


def test_every_twentieth_batch_makes_the_commits_before_it_durable(slow_wal_writer, sleeps):
    """Batches 1-20 were made durable after the 20th: the crash before batch 24 can only
    lose batches 21-23."""
    after_restart: list[int] = []
    hook = _crash_before(slow_wal_writer, 24, after_restart)
    with _inserter(hook=hook, batch_size=100, backoff=Backoff(attempts=3, base_s=1.0)) as ins:
        stats = ins.insert(rows_of(2500))
    assert DURABLE_EVERY == 20
    assert 2000 <= after_restart[0] < 2300
    assert stats.retries == 1 + (2300 - after_restart[0]) // 100
    assert stats.written == 2500
    assert _count(slow_wal_writer.target) == (2500, 2500)


def test_an_insert_returns_with_its_rows_on_disk(slow_wal_writer):
    """A crash right after the insert returns keeps every row: its last step waited
    for the disk."""
    with _inserter() as ins:
        stats = ins.insert(rows_of(3000))
    slow_wal_writer.crash()
    slow_wal_writer.start()
    assert stats.written == 3000
    assert _count(slow_wal_writer.target) == (3000, 3000)


def test_server_that_stays_down_fails_clearly_after_the_bound(private_server):
    def stop(at: BatchAttempt) -> None:
        if at.batch == 3 and at.attempt == 1:
            private_server.stop()

    with _inserter(hook=stop) as ins, pytest.raises(BatchInsertError) as err:
        ins.insert(rows_of(3000))
    message = str(err.value)
    assert "batch 3/6 (rows 1001-1500) failed after 3 attempts" in message
    assert "2 earlier batches are committed" in message
    assert message.endswith("re-running the task resumes safely.")
    private_server.start()
    assert _count(private_server.target) == (1000, 1000)
    with _inserter() as ins:  # the re-run: the rest written, nothing twice
        stats = ins.insert(rows_of(3000))
    assert (stats.written, stats.retries) == (2000, 0)
    assert _count(private_server.target) == (3000, 3000)
