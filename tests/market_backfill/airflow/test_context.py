from __future__ import annotations

from datetime import UTC, datetime

from market_backfill.airflow.context import RunContext, run_end


def test_run_end_prefers_the_data_interval():
    t1, t2 = datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    assert run_end({"data_interval_end": t1, "logical_date": t2}) == t1
    assert run_end({"data_interval_end": None, "logical_date": t2}) == t2
    assert run_end({}) is None


def test_run_context_connects_to_market_db(market_db):
    run = RunContext("d", "r", {"symbols": ["GLBX.MDP3:NQ"]})
    conn = run.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            assert cur.fetchone()[0] == market_db.dbname
    finally:
        conn.close()


def _context(run_type, start, end):
    from types import SimpleNamespace

    return {
        "dag_run": SimpleNamespace(run_type=run_type),
        "data_interval_start": start,
        "data_interval_end": end,
    }


def test_scheduled_and_backfill_runs_stand_for_their_data_interval():
    from airflow.utils.types import DagRunType

    from market_backfill.airflow.context import data_interval

    day, next_day = datetime(2025, 11, 3, tzinfo=UTC), datetime(2025, 11, 4, tzinfo=UTC)
    for run_type in (DagRunType.SCHEDULED, DagRunType.BACKFILL_JOB, "scheduled", "backfill"):
        assert data_interval(_context(run_type, day, next_day)) == (day, next_day)
    # a manual run's interval is inferred, not asked for; an asset run's spans event times
    for run_type in (DagRunType.MANUAL, DagRunType.ASSET_TRIGGERED):
        assert data_interval(_context(run_type, day, next_day)) is None
    assert data_interval(_context("scheduled", day, day)) is None  # zero-length (@daily)
    assert data_interval(_context("scheduled", None, None)) is None
    assert data_interval({}) is None
