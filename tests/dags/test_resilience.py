"""Whole DAG runs against real faults: killed backends, a stopped and restarted server."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from market_backfill.db import apply_schema
from market_backfill.sample import write_sample
from market_backfill.timeutil import to_ns
from market_backfill.triangle_backfill import stored_events
from market_backfill.triangle_engine import TriangleSettings, run_engine
from tests.support.faults import PrivateServer

pytestmark = [pytest.mark.airflow, pytest.mark.fault]
APP = "market-backfill-resilience"


@pytest.fixture(scope="module")
def year_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("year") / "nq-year.dbn.zst"
    return write_sample(
        path, datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), seed=99
    )


class Killer(threading.Thread):
    """Terminates the inserter's backends (last statement a COPY) every ``every`` seconds."""

    def __init__(self, admin, every: float = 1.0, most: int = 6) -> None:
        super().__init__(daemon=True)
        self.admin, self.every, self.most = admin, every, most
        self.kills = 0
        self.done = threading.Event()

    def run(self) -> None:
        with self.admin.connect(autocommit=True) as conn:
            while not self.done.is_set() and self.kills < self.most:
                killed = conn.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM "
                    "pg_stat_activity WHERE application_name = %s AND query ILIKE 'COPY%%'",
                    (APP,),
                ).fetchone()[0]
                self.kills += killed
                time.sleep(self.every if killed else 0.05)

    def __enter__(self) -> Killer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join(10)


def _totals(db, run_id: str) -> dict:
    with db.connect() as conn:
        return conn.execute(
            "SELECT counts FROM backfill_runs WHERE run_id = %s AND symbol = '*'", (run_id,)
        ).fetchone()[0]


def test_a_year_of_reingest_and_triangles_survives_repeated_backend_kills(
    reingest_dag, triangle_dag, market_db, year_file, monkeypatch
):
    path, bars = year_file
    monkeypatch.setenv("AIRFLOW_CONN_MARKET_DB", f"{market_db.airflow_uri}?application_name={APP}")
    conf = {
        "source": "dbn_file",
        "dbn_path": str(path),
        "start": "2025-01-01",
        "end": "2025-12-31",
        "batch_size": 250,
    }
    with Killer(market_db) as killer:
        run = reingest_dag.test(run_conf=conf)
    assert run.state == "success"
    assert killer.kills >= 1
    totals = _totals(market_db, run.run_id)
    assert totals["retries"] >= 1
    assert totals["rows_valid"] == bars
    with market_db.connect() as conn:
        n, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT ts) FROM market_bars_ohlcv_1m_clean"
        ).fetchone()
    assert n == distinct == bars

    with Killer(market_db) as killer:
        tri = triangle_dag.test(
            run_conf={"start": "2025-01-01", "end": "2025-12-31", "batch_size": 100}
        )
    assert tri.state == "success"
    assert killer.kills >= 1
    assert _totals(market_db, tri.run_id)["retries"] >= 1
    with market_db.connect() as conn:
        got = stored_events(conn, ["GLBX.MDP3:NQ"])
        rows = conn.execute(
            "SELECT (extract(epoch FROM ts) * 1e9)::int8, "
            "(open * 1e9)::int8, (high * 1e9)::int8, (low * 1e9)::int8, "
            "(close * 1e9)::int8 FROM market_bars_ohlcv_1m_clean ORDER BY ts"
        ).fetchall()
    import numpy as np

    arr = np.array(rows, dtype=np.int64)
    want = run_engine(*arr.T, TriangleSettings()).events(arr[:, 0])
    assert [to_ns(t) for t in got.ts] == want.ts.tolist()
    assert got.direction.tolist() == want.direction.tolist()


def test_reingest_survives_the_server_stopping_for_a_few_seconds(
    reingest_dag, airflow_db, year_file, tmp_path, monkeypatch
):
    server = PrivateServer(tmp_path / "pg")
    try:
        monkeypatch.setenv("AIRFLOW_CONN_MARKET_DB", server.target.airflow_uri)
        with server.target.connect() as conn:
            apply_schema(conn)
        path, _ = year_file
        stopped = threading.Event()

        def outage() -> None:
            deadline = time.monotonic() + 120
            with server.target.connect(autocommit=True) as conn:
                while time.monotonic() < deadline:
                    n = conn.execute("SELECT count(*) FROM market_bars_ohlcv_1m_clean").fetchone()
                    if n[0] >= 20_000:
                        break
                    time.sleep(0.1)
            server.stop()
            stopped.set()
            time.sleep(3)
            server.start()

        thread = threading.Thread(target=outage, daemon=True)
        thread.start()
        run = reingest_dag.test(
            run_conf={
                "source": "dbn_file",
                "dbn_path": str(path),
                "start": "2025-01-01",
                "end": "2025-03-31",
            }
        )
        thread.join(60)
        assert stopped.is_set(), "the outage never happened"
        assert run.state == "success"
        with server.target.connect() as conn:
            n, distinct, lo, hi = conn.execute(
                "SELECT count(*), count(DISTINCT ts), min(ts), max(ts) FROM "
                "market_bars_ohlcv_1m_clean"
            ).fetchone()
        from market_backfill.dbn import open_store, read_bars

        want = read_bars(
            open_store(path, "year"),
            {"NQ.v.0": "GLBX.MDP3:NQ"},
            to_ns("2025-01-01"),
            to_ns("2025-04-01"),
        )
        assert n == distinct == len(want)
    finally:
        server.cleanup()
