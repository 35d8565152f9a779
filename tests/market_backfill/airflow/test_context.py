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
