"""Whole DAG runs against real faults: killed backends, a stopped and restarted server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import numpy as np
import pytest

from market_backfill.db.inserter import BatchAttempt, BatchInserter
from market_backfill.db.schema import apply_schema
from market_backfill.sources.dbn import bar_count, open_store, read_bars
from market_backfill.timeutil import to_ns
from market_backfill.triangles.engine import TriangleSettings, run_engine
from market_backfill.triangles.store import stored_events
from market_backfill_devtools.sample import write_sample
from tests.support.faults import PrivateServer, terminate_backend

pytestmark = [pytest.mark.airflow, pytest.mark.fault]


@pytest.fixture(scope="module")
def year_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("year") / "nq-year.dbn.zst"
    return write_sample(
        path, datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), seed=99
    )


class Killer:
    """An inserter hook (process-wide: every inserter of the DAG run) that terminates the
    writing backend before every ``every``-th batch's first attempt."""

    def __init__(self, admin, every: int = 7) -> None:
        self.admin, self.every = admin, every
        self.kills = 0
        self._count = threading.Lock()  # two writers' hooks may kill at once

    def __call__(self, at: BatchAttempt) -> None:
        if at.attempt == 1 and at.conn is not None and at.batch % self.every == 0:
            killed = terminate_backend(self.admin, at.conn)
            with self._count:
                self.kills += killed


def _totals(db, run_id: str) -> dict:
    with db.connect() as conn:
        return conn.execute(
            "SELECT counts FROM backfill_runs WHERE run_id = %s AND symbol = '*' "
            "AND chunk = 'total'",
            (run_id,),
        ).fetchone()[0]


def test_a_year_of_reingest_and_triangles_survives_repeated_backend_kills(
    reingest_dag, triangle_dag, market_db, year_file, monkeypatch
):
    path, bars = year_file
    conf = {
        "source": "dbn_file",
        "dbn_path": str(path),
        "start": "2025-01-01",
        "end": "2025-12-31",
        "batch_size": 250,
    }
    killer = Killer(market_db)
    monkeypatch.setattr(BatchInserter, "default_hook", killer)
    run = reingest_dag.test(run_conf=conf)
    assert run.state == "success"
    assert killer.kills >= 12  # every month has batches 7, 14, ...
    totals = _totals(market_db, run.run_id)
    assert totals["retries"] == killer.kills
    assert totals["rows_valid"] == bars
    with market_db.connect() as conn:
        n, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT ts) FROM market_bars_ohlcv_1m_clean"
        ).fetchone()
    assert n == distinct == bars

    killer = Killer(market_db, every=3)
    monkeypatch.setattr(BatchInserter, "default_hook", killer)
    tri = triangle_dag.test(
        run_conf={"start": "2025-01-01", "end": "2025-12-31", "batch_size": 100}
    )
    assert tri.state == "success"
    assert killer.kills >= 1
    assert _totals(market_db, tri.run_id)["retries"] == killer.kills
    with market_db.connect() as conn:
        got = stored_events(conn, ["GLBX.MDP3:NQ"])
        rows = conn.execute(
            "SELECT (extract(epoch FROM ts) * 1e9)::int8, "
            "(open * 1e9)::int8, (high * 1e9)::int8, (low * 1e9)::int8, "
            "(close * 1e9)::int8 FROM market_bars_ohlcv_1m_clean ORDER BY ts"
        ).fetchall()
    arr = np.array(rows, dtype=np.int64)
    want = run_engine(*arr.T, TriangleSettings()).events(arr[:, 0])
    assert [to_ns(t) for t in got.ts] == want.ts.tolist()
    assert got.direction.tolist() == want.direction.tolist()


@pytest.mark.parametrize("writers", [1, 2])
def test_reingest_survives_the_server_stopping_between_two_batches(
    reingest_dag, airflow_db, year_file, tmp_path, monkeypatch, sleeps, writers
):
    server = PrivateServer(tmp_path / "pg")
    try:
        monkeypatch.setenv("AIRFLOW_CONN_MARKET_DB", server.target.airflow_uri)
        with server.target.connect() as conn:
            apply_schema(conn)
        path, _ = year_file
        outage_lock = threading.Lock()
        outage = {"stopped": False, "started": False}

        def stop_and_start(at: BatchAttempt) -> None:
            """Before the first chunk's 41st batch the server stops; it is back for the
            first third try (of any writer's batch)."""
            with outage_lock:
                if at.batch == 41 and at.attempt == 1 and not outage["stopped"]:
                    server.stop()
                    outage["stopped"] = True
                if outage["stopped"] and not outage["started"] and at.attempt == 3:
                    server.start()
                    outage["started"] = True

        monkeypatch.setattr(BatchInserter, "default_hook", stop_and_start)
        run = reingest_dag.test(
            run_conf={
                "source": "dbn_file",
                "dbn_path": str(path),
                "start": "2025-01-01",
                "end": "2025-03-31",
                "writers": writers,
            }
        )
        assert run.state == "success"
        assert outage == {"stopped": True, "started": True}
        if writers == 1:
            assert len(sleeps) == 2, "the batch met the stopped server twice, then went in"
        else:  # each writer met the stopped server once or twice, then its batch went in
            assert 2 <= len(sleeps) <= 4
        assert _totals(server.target, run.run_id)["retries"] == len(sleeps)
        with server.target.connect() as conn:
            n, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT ts) FROM market_bars_ohlcv_1m_clean"
            ).fetchone()
        want = read_bars(
            open_store(path, "year"),
            {"NQ.v.0": "GLBX.MDP3:NQ"},
            to_ns("2025-01-01"),
            to_ns("2025-04-01"),
        )
        assert n == distinct == bar_count(want)
    finally:
        server.cleanup()
