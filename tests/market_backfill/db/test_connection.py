"""run_transaction against a real server: commit, rollback, retry on a lost connection;
the reusing connector of a task."""

from __future__ import annotations

import os
import time

import pandas as pd
import psycopg
import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.airflow.context import RunContext
from market_backfill.db.connection import (
    ReusingConnector,
    close_quietly,
    is_lost_connection,
    release,
    run_transaction,
)
from market_backfill.db.inserter import BatchInserter, ConflictPolicy
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


# -- ReusingConnector: one connection for a task's transactions ----------------------------


def _insert(n: int):
    def work(conn):
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (%s)", (n,))
        return conn.info.backend_pid

    return work


def test_a_reusing_connector_runs_transactions_one_after_another_on_one_connection(table):
    connect = ReusingConnector(hook_connector())
    pids = [run_transaction(connect, _insert(n)) for n in range(1, 5)]
    assert len(set(pids)) == 1
    assert connect.opened == 1
    assert _rows(table) == [1, 2, 3, 4]  # each committed
    with BatchInserter(connect, "t", ("n",), ConflictPolicy(key=("n",))) as inserter:
        inserter.insert(pd.DataFrame({"n": [5, 6]}))
        assert inserter._conn.info.backend_pid == pids[0]
    conn = connect()
    assert not conn.autocommit  # the inserter's autocommit did not stick
    assert connect.opened == 1
    release(connect, conn)
    connect.close()
    assert conn.closed


def test_a_reusing_connector_opens_a_second_connection_only_while_the_first_is_lent(table):
    connect = ReusingConnector(hook_connector())
    held = connect()
    other = run_transaction(connect, _insert(1))
    assert other != held.info.backend_pid
    assert connect.opened == 2
    release(connect, held)
    assert run_transaction(connect, _insert(2)) in {other, held.info.backend_pid}
    assert connect.opened == 2
    connect.close()


def test_a_reused_connection_the_server_ended_while_idle_is_replaced_without_a_retry(table, sleeps):
    connect = ReusingConnector(hook_connector())
    first = connect()
    first_pid = first.info.backend_pid
    release(connect, first)
    with table.connect(autocommit=True) as admin:  # waits until the backend has exited
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", (first_pid,))
    time.sleep(0.05)
    pid = run_transaction(connect, _insert(1))
    assert pid != first_pid
    assert connect.opened == 2
    assert first.closed
    assert sleeps == []  # no failed attempt, no backoff
    assert _rows(table) == [1]
    connect.close()


def test_a_connection_is_not_reused_after_an_error_or_a_lost_connection(table, sleeps):
    connect = ReusingConnector(hook_connector())
    lent = []

    def failing(conn):
        lent.append(conn)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (1), (1)")

    with pytest.raises(psycopg.errors.UniqueViolation):
        run_transaction(connect, failing)
    assert lent[0].closed  # its transaction state unknown: closed, not kept

    def lost_once(conn):
        lent.append(conn)
        if len(lent) == 2:
            terminate_backend(table, conn)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (2)")

    run_transaction(connect, lost_once, backoff=Backoff(attempts=3, base_s=0.5))
    assert lent[1].closed
    assert not lent[2].closed
    assert sleeps == [0.5]
    assert connect.opened == 3
    assert _rows(table) == [2]
    connect.close()


def test_idle_connections_expire_and_are_never_reused_across_a_fork(table):
    parent, opens = os.getpid(), hook_connector()

    def opener():
        # the forked child opens nothing real: it only reports what it was handed
        return opens() if os.getpid() == parent else "a new connection"

    expiring = ReusingConnector(opener, idle_s=0.05)
    first = expiring()
    release(expiring, first)
    time.sleep(0.1)
    renewed = expiring()
    assert renewed is not first
    assert first.closed  # expired: closed when the next call found it
    renewed.close()
    connect = ReusingConnector(opener)
    second = connect()
    release(connect, second)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            got = connect()
            os.write(write, b"new" if got == "a new connection" else b"reused")
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(child, 0)
    with os.fdopen(read, "rb") as answer:
        assert answer.read() == b"new"
    assert os.waitstatus_to_exitcode(status) == 0
    assert connect() is second
    with second.cursor() as cur:  # the child left the parent's session usable
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    release(connect, second)
    connect.close()


def test_a_task_context_hands_out_one_reusing_connector(market_db):
    run = RunContext(dag_id="d", run_id="r")
    assert run.connect is run.connect
    assert isinstance(run.connect, ReusingConnector)
