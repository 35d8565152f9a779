from __future__ import annotations

from market_backfill.airflow.connections import hook_connector
from market_backfill.db import audit
from market_backfill.report import run_report


def test_latest_run_rows_with_the_total_last(market_db):
    connect = hook_connector()
    audit.record_finish(
        connect, "d", "old", "GLBX.MDP3:NQ", "2025-11", status="success", counts={"rows_in": 1}
    )
    audit.record_start(connect, "d", "new", "GLBX.MDP3:NQ", "2025-12")
    audit.record_finish(
        connect,
        "d",
        "new",
        "*",
        "total",
        status="failed",
        counts={},
        error="1 of 1 chunks did not succeed",
    )
    run_id, rows = run_report("d")
    assert run_id == "new"
    assert [(r["symbol"], r["status"]) for r in rows] == [
        ("GLBX.MDP3:NQ", "running"),
        ("*", "failed"),
    ]
    assert run_report("d", "old")[1][0]["rows_in"] == 1
    assert run_report("nothing") == (None, [])


def test_each_dag_reports_its_own_summary_columns():
    from market_backfill.gaps.tasks import SUMMARIES as GAPS
    from market_backfill.reingest.tasks import SUMMARIES as REINGEST
    from market_backfill.report import columns
    from market_backfill.summary import columns_of
    from market_backfill.triangles.tasks import SUMMARIES as TRIANGLES

    assert columns("ohlcv_reingest") == (
        "symbol",
        "chunk",
        "status",
        "attempts",
        "rows_in",
        "rows_valid",
        "rows_skipped",
        "rows_written",
        "batches",
        "commits",
        "retries",
        "seconds",
    )
    assert columns("triangle_backfill")[4:-1] == columns_of(*TRIANGLES)
    assert columns("gap_detection")[4:-1] == columns_of(*GAPS)
    assert columns("ohlcv_reingest")[4:-1] == columns_of(*REINGEST)
    assert columns("someone_elses_dag") == ("symbol", "chunk", "status", "attempts", "seconds")


def test_the_report_command_prints_the_latest_run(market_db):
    import os
    import subprocess
    import sys

    connect = hook_connector()
    audit.record_start(connect, "ohlcv_reingest", "r1", "GLBX.MDP3:NQ", "2025-12")
    audit.record_finish(
        connect,
        "ohlcv_reingest",
        "r1",
        "GLBX.MDP3:NQ",
        "2025-12",
        "failed",
        {"rows_in": 9},
        "NQ 2025-12: SourceError: gateway down",
    )
    out = subprocess.run(
        [sys.executable, "-m", "market_backfill.report", "ohlcv_reingest"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
        timeout=120,
    ).stdout
    lines = out.splitlines()
    assert lines[0] == "ohlcv_reingest run r1"
    assert lines[1].split()[:5] == ["symbol", "chunk", "status", "attempts", "rows_in"]
    assert lines[3].split()[:5] == ["GLBX.MDP3:NQ", "2025-12", "failed", "1", "9"]
    assert "gateway down" in lines[-1]
    nothing = subprocess.run(
        [sys.executable, "-m", "market_backfill.report", "gap_detection"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
        timeout=120,
    ).stdout
    assert nothing.strip() == "no runs of gap_detection recorded yet"
