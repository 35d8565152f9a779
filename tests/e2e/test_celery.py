"""CeleryExecutor for real: PostgreSQL metadata, the Redis broker, two workers. A year of
reingest spreads over both; one worker is killed (``kill -9`` of its process group) while
it runs a chunk: the lost task is retried on the other and every bar is stored once."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from market_backfill_devtools.airflow_stack import CeleryStack
from market_backfill_devtools.pg import PgTarget, create_database, drop_database
from market_backfill_devtools.sample import write_sample
from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]

BROKER_DB = 11  # a Redis database of its own, emptied before and after


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            return True
    except OSError:
        return False


def sqlalchemy_url(target: PgTarget) -> str:
    if target.host.startswith("/"):
        return f"postgresql+psycopg2://{target.user}@/{target.dbname}?host={target.host}"
    auth = target.user + (f":{target.password}" if target.password else "")
    return f"postgresql+psycopg2://{auth}@{target.host}:{target.port}/{target.dbname}"


def flush_broker() -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=BROKER_DB).flushdb()


@pytest.fixture
def celery(pg_admin, tmp_path):
    if not redis_up():
        pytest.skip("no Redis at 127.0.0.1:6379 (every machine of this project runs one)")
    flush_broker()
    meta, market = create_database(pg_admin, "af"), create_database(pg_admin, "mk")
    path, bars = write_sample(
        tmp_path / "nq-2025.dbn.zst",
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    env = {
        "AIRFLOW_CONN_MARKET_DB": market.airflow_uri,
        "MARKET_BACKFILL_DATA_DIR": str(tmp_path / "data"),
        "MARKET_BACKFILL_FIRST_DAY": tomorrow,  # no scheduled runs: only the one triggered
    }
    try:
        with CeleryStack(
            tmp_path / "airflow",
            ROOT / "dags",
            env,
            metadata_url=sqlalchemy_url(meta),
            broker_url=f"redis://127.0.0.1:6379/{BROKER_DB}",
        ) as stack:
            stack.wait_for_dag("ohlcv_reingest")
            stack.patch("/api/v2/dags/ohlcv_reingest", {"is_paused": False})
            yield stack, market, path, bars
    finally:
        flush_broker()
        drop_database(pg_admin, market)
        drop_database(pg_admin, meta)


def test_a_killed_worker_costs_a_retry_on_the_other_and_no_bar(celery):
    stack, market, path, bars = celery
    conf = {"source": "dbn_file", "dbn_path": str(path), "start": "2025-01-01", "end": "2025-12-31"}
    run_id = stack.trigger("ohlcv_reingest", conf)
    seen: set[str] = set()
    victim = None
    deadline = time.monotonic() + 300
    while victim is None:
        assert time.monotonic() < deadline, f"no chunk ran on worker1 while worker2 worked: {seen}"
        chunks = [
            t
            for t in stack.task_instances("ohlcv_reingest", run_id)
            if t["task_id"] == "reingest_chunk"
        ]
        seen |= {t["hostname"] for t in chunks if t.get("hostname")}
        running = [t for t in chunks if t["state"] == "running" and t["hostname"] == "worker1"]
        if running and "worker2" in seen:
            victim = running[0]
            stack.kill_worker("worker1")
            killed_at = time.monotonic()
        time.sleep(0.3)
    assert stack.wait_for_run("ohlcv_reingest", run_id, timeout=600) == "success"
    recovered_s = time.monotonic() - killed_at
    chunks = {
        t["map_index"]: t
        for t in stack.task_instances("ohlcv_reingest", run_id)
        if t["task_id"] == "reingest_chunk"
    }
    assert len(chunks) == 12
    retried = chunks[victim["map_index"]]
    assert retried["state"] == "success"
    assert retried["try_number"] > victim["try_number"]
    assert retried["hostname"] == "worker2"
    assert recovered_s < 300, f"the run took {recovered_s:.0f}s after the kill"
    with market.connect() as conn:
        stored, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT ts) FROM market_bars_ohlcv_1m_clean"
        ).fetchone()
        counted = conn.execute(
            "SELECT sum((counts->>'rows_valid')::int) FROM backfill_runs "
            "WHERE run_id = %s AND symbol <> '*'",
            (run_id,),
        ).fetchone()[0]
    assert stored == distinct == counted == bars
