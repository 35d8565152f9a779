"""run_transaction against a real server: commit, rollback, retry on a lost connection."""

from __future__ import annotations

import psycopg
import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.db.connection import close_quietly, is_lost_connection, run_transaction
from market_backfill.retry import Backoff
from tests.support.faults import terminate_backend


def _rows(db) -> list[int]:
    with db.connect() as conn:
        return [r[0] for r in conn.execute("SELECT n FROM t ORDER BY n").fetchall()]


@pytest.fixture
def table(market_db):
    with market_db.connect() as conn:
        conn.execute("CREATE TABLE t (n int PRIMARY KEY)")
    return market_db


def test_the_work_is_committed_and_the_connection_closed(table):
    opened = []

    def connect():
        opened.append(hook_connector()())
        return opened[-1]

    def work(conn):
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (1), (2)")
        return "done"

    assert run_transaction(connect, work) == "done"
    assert _rows(table) == [1, 2]
    assert opened[0].closed


def test_an_error_rolls_the_whole_unit_back_and_is_not_retried(table, sleeps):
    calls = []

    def work(conn):
        calls.append(1)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (1)")
            cur.execute("INSERT INTO t VALUES (1)")  # unique violation

    with pytest.raises(psycopg.errors.UniqueViolation):
        run_transaction(hook_connector(), work)
    assert (calls, sleeps) == ([1], [])
    assert _rows(table) == []


def test_a_lost_connection_retries_the_unit_on_a_new_connection(table, sleeps):
    attempts = []

    def work(conn):
        attempts.append(conn)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (%s)", (len(attempts),))
        if len(attempts) < 3:
            terminate_backend(table, conn)  # the commit meets a dead connection
        return len(attempts)

    backoff = Backoff(attempts=5, base_s=0.5)
    assert run_transaction(hook_connector(), work, backoff=backoff) == 3
    assert _rows(table) == [3]  # the lost attempts left nothing behind
    assert sleeps == [0.5, 1.0]
    assert len({id(c) for c in attempts}) == 3


def test_a_connection_that_stays_lost_raises_after_the_last_attempt(table, sleeps):
    def work(conn):
        terminate_backend(table, conn)
        with conn.cursor() as cur:
            cur.execute("SELECT 1")

    with pytest.raises(psycopg.OperationalError) as err:
        run_transaction(hook_connector(), work, backoff=Backoff(attempts=3, base_s=1.0))
    assert is_lost_connection(err.value)
    assert sleeps == [1.0, 2.0]


def test_close_quietly_tolerates_broken_and_missing_connections(table):
    conn = hook_connector()()
    terminate_backend(table, conn)
    close_quietly(conn)
    close_quietly(conn)
    close_quietly(None)
    assert not is_lost_connection(ValueError("bad data"))
