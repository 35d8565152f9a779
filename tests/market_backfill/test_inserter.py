from __future__ import annotations

import threading
import time

import psycopg
import pytest

from market_backfill.db import hook_connector
from market_backfill.inserter import BatchInserter, BatchInsertError, ConflictPolicy
from market_backfill.reingest import BAR_DB_COLUMNS, BAR_KINDS, BAR_UPSERT, CLEAN_TABLE
from tests.support.bars import bar_frame


def _inserter(connect, **kwargs) -> BatchInserter:
    kwargs.setdefault("sleep", lambda s: None)
    return BatchInserter(
        connect, CLEAN_TABLE, BAR_DB_COLUMNS, BAR_UPSERT, kinds=BAR_KINDS, **kwargs
    )


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
        stats = ins.insert(bar_frame(rows))
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
    frame = bar_frame(3)
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
    frame = bar_frame(1200)
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
    frame = bar_frame(10)
    from decimal import Decimal

    from market_backfill.timeutil import from_ns

    rows = (
        (
            r.symbol,
            from_ns(r.ts),
            Decimal(r.open) / 10**9,
            Decimal(r.high) / 10**9,
            Decimal(r.low) / 10**9,
            Decimal(r.close) / 10**9,
            int(r.volume),
        )
        for r in frame.itertuples()
    )
    with _inserter(hook_connector(), batch_size=4) as ins:
        stats = ins.insert(rows)
    assert (stats.rows, stats.batches, stats.commits) == (10, 3, 3)
    assert _count(market_db) == (10, 10)


def test_batch_size_must_be_positive(market_db):
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        _inserter(hook_connector(), batch_size=0)


def test_a_bad_batch_names_itself_and_keeps_earlier_batches(market_db):
    frame = bar_frame(1400)
    rows = [tuple(r) for r in frame.itertuples(index=False)]
    from market_backfill.timeutil import from_ns

    rows = [
        (s, from_ns(t), o / 1e9, h / 1e9, lo / 1e9, c / 1e9, v) for s, t, o, h, lo, c, v in rows
    ]
    rows[1100] = (*rows[1100][:6], "not-a-number")
    with _inserter(hook_connector()) as ins, pytest.raises(BatchInsertError) as err:
        ins.insert(rows)
    assert err.value.batch == 3
    assert "batch 3 (rows 1001-1400)" in str(err.value)
    assert "2 earlier batches are committed" in str(err.value)
    assert _count(market_db) == (1000, 1000)


def test_conflict_do_nothing_counts_only_new_rows(market_db):
    policy = ConflictPolicy(key=("symbol", "ts"))
    frame = bar_frame(600)
    ins = BatchInserter(hook_connector(), CLEAN_TABLE, BAR_DB_COLUMNS, policy, kinds=BAR_KINDS)
    with ins:
        first = ins.insert(frame.iloc[:400])
        second = ins.insert(frame)
    assert (first.written, second.written) == (400, 200)


@pytest.mark.fault
def test_terminated_backends_are_reconnected_without_loss_or_duplicates(market_db, monkeypatch):
    app = "inserter-kill-test"
    monkeypatch.setenv("AIRFLOW_CONN_MARKET_DB", f"{market_db.airflow_uri}?application_name={app}")
    frame = bar_frame(60_000)
    kills: list[int] = []
    done = threading.Event()

    def killer() -> None:
        seen: set[int] = set()
        with market_db.connect(autocommit=True) as admin:
            while not done.is_set() and len(kills) < 3:
                pids = [
                    r[0]
                    for r in admin.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)
                    ).fetchall()
                    if r[0] not in seen
                ]
                for pid in pids:
                    if admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]:
                        kills.append(pid)
                    seen.add(pid)
                    time.sleep(0.05)
                time.sleep(0.005)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        with _inserter(hook_connector(), batch_size=100, max_attempts=5) as ins:
            stats = ins.insert(frame)
    finally:
        done.set()
        thread.join(5)
    assert kills, "the killer never saw the inserter's backend"
    assert stats.retries >= 1
    assert stats.commits == stats.batches == 600
    assert _count(market_db) == (60_000, 60_000)
