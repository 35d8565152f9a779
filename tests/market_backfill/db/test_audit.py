from __future__ import annotations

from market_backfill.airflow.connections import hook_connector
from market_backfill.db import audit


def test_a_rerun_chunk_updates_its_row_and_counts_the_attempt(market_db):
    connect = hook_connector()
    audit.record_start(connect, "d", "r1", "GLBX.MDP3:NQ", "2025-12")
    audit.record_finish(
        connect, "d", "r1", "GLBX.MDP3:NQ", "2025-12", status="failed", counts={}, error="boom"
    )
    audit.record_start(connect, "d", "r1", "GLBX.MDP3:NQ", "2025-12")
    audit.record_finish(
        connect, "d", "r1", "GLBX.MDP3:NQ", "2025-12", status="success", counts={"rows_in": 5}
    )
    audit.record_finish(connect, "d", "r1", "*", "total", status="success", counts={})
    rows = audit.run_rows(connect, "d", "r1")
    assert rows == [
        {
            "symbol": "GLBX.MDP3:NQ",
            "chunk": "2025-12",
            "status": "success",
            "counts": {"rows_in": 5},
            "attempts": 2,
            "error": None,
        }
    ]
    assert audit.run_rows(connect, "d", "other") == []
