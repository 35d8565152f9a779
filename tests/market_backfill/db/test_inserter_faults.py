"""The inserter against real faults, injected deterministically through its hook: a
backend terminated before chosen batches, a server stopped before one batch and started
again before a chosen retry. The backoff waits are recorded, never slept (conftest)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.db.inserter import BatchAttempt, BatchInserter, BatchInsertError
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


def test_server_that_stays_down_fails_clearly_after_the_bound(private_server):
    def stop(at: BatchAttempt) -> None:
        if at.batch == 3 and at.attempt == 1:
            private_server.stop()

    with _inserter(hook=stop) as ins, pytest.raises(BatchInsertError) as err:
        ins.insert(rows_of(3000))
    message = str(err.value)
    assert "batch 3/6 (rows 1001-1500) failed after 3 attempts" in message
    assert "2 earlier batches are committed" in message
    private_server.start()
    assert _count(private_server.target) == (1000, 1000)
