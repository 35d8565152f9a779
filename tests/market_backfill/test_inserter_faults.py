"""The inserter against real faults: killed backends, a stopped and restarted server."""

from __future__ import annotations

from decimal import Decimal

import pytest

from market_backfill.db import apply_schema, hook_connector
from market_backfill.inserter import BatchInserter, BatchInsertError
from market_backfill.reingest import BAR_DB_COLUMNS, BAR_KINDS, BAR_UPSERT, CLEAN_TABLE
from market_backfill.timeutil import from_ns
from tests.support.bars import bar_frame
from tests.support.faults import PrivateServer, rows_with_actions, terminate_app_backends

pytestmark = pytest.mark.fault


def _tuples(n: int) -> list[tuple]:
    return [
        (
            s,
            from_ns(t),
            Decimal(o) / 10**9,
            Decimal(h) / 10**9,
            Decimal(lo) / 10**9,
            Decimal(c) / 10**9,
            int(v),
        )
        for s, t, o, h, lo, c, v in bar_frame(n).itertuples(index=False)
    ]


def _count(target) -> tuple[int, int]:
    with target.connect() as conn:
        return conn.execute(f"SELECT count(*), count(DISTINCT ts) FROM {CLEAN_TABLE}").fetchone()


def _inserter(**kwargs) -> BatchInserter:
    return BatchInserter(
        hook_connector(), CLEAN_TABLE, BAR_DB_COLUMNS, BAR_UPSERT, kinds=BAR_KINDS, **kwargs
    )


def test_backend_killed_between_batches_is_retried_exactly_once_each(market_db, monkeypatch):
    app = "inserter-deterministic-kill"
    monkeypatch.setenv("AIRFLOW_CONN_MARKET_DB", f"{market_db.airflow_uri}?application_name={app}")
    kill = lambda: terminate_app_backends(market_db, app)  # noqa: E731
    rows = rows_with_actions(_tuples(5000), {1500: kill, 3200: kill})
    with _inserter(backoff_s=0.01) as ins:
        stats = ins.insert(rows)
    assert stats.retries == 2
    assert len(stats.retry_errors) == 2
    assert (stats.batches, stats.commits) == (10, 10)
    assert _count(market_db) == (5000, 5000)


@pytest.fixture
def private_server(tmp_path, monkeypatch):
    server = PrivateServer(tmp_path / "pg")
    monkeypatch.setenv("AIRFLOW_CONN_MARKET_DB", server.target.airflow_uri)
    with server.target.connect() as conn:
        apply_schema(conn)
    yield server
    server.cleanup()


def test_server_stopped_and_restarted_mid_run_recovers(private_server):
    timers = []

    def outage() -> None:
        private_server.stop()
        timers.append(private_server.start_later(2.5))

    rows = rows_with_actions(_tuples(6000), {3000: outage})
    with _inserter(max_attempts=6, backoff_s=0.5) as ins:
        stats = ins.insert(rows)
    for t in timers:
        t.join()
    assert stats.retries >= 1
    assert (stats.rows, stats.batches, stats.commits) == (6000, 12, 12)
    assert _count(private_server.target) == (6000, 6000)


def test_server_that_stays_down_fails_clearly_after_the_bound(private_server):
    rows = rows_with_actions(_tuples(3000), {1000: private_server.stop})
    with _inserter(max_attempts=3, backoff_s=0.05) as ins, pytest.raises(BatchInsertError) as err:
        ins.insert(rows)
    message = str(err.value)
    assert "batch 3 (rows 1001-1500) failed after 3 attempts" in message
    assert "2 earlier batches are committed" in message
    private_server.start()
    assert _count(private_server.target) == (1000, 1000)
