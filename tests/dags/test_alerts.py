"""Alerts from real DAG runs to a local webhook: a failed run's chunks, long gaps, stale
series."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from market_backfill.timeutil import to_ns
from market_backfill_devtools.dbn_writer import write_bars
from market_backfill_devtools.sample import synthetic_bars
from tests.conftest import ROOT, store_bars
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.airflow


@pytest.fixture
def webhook(monkeypatch):
    with WebhookReceiver() as hook:
        monkeypatch.setenv(
            "AIRFLOW_CONN_MARKET_ALERTS", json.dumps({"conn_type": "http", "host": hook.url})
        )
        yield hook


def _bars(start: str, end: str):
    return synthetic_bars(
        "NQ.v.0",
        pd.Timestamp(start, tz="UTC").to_pydatetime(),
        pd.Timestamp(end, tz="UTC").to_pydatetime(),
        seed=8,
        quiet_fraction=0,
    )


def test_a_failed_run_alerts_which_chunk_failed_and_why(reingest_dag, market_db, webhook, tmp_path):
    path = tmp_path / "cut.dbn"
    whole = write_bars(
        tmp_path / "whole.dbn",
        _bars("2025-12-01", "2025-12-04"),
        dataset="GLBX.MDP3",
        instruments={"NQ.v.0": 1},
    )
    path.write_bytes(whole.read_bytes()[:-30])
    run = reingest_dag.test(
        run_conf={
            "source": "dbn_file",
            "dbn_path": str(path),
            "start": "2025-12-01",
            "end": "2025-12-03",
        }
    )
    assert run.state == "failed"
    assert len(webhook.received) == 1
    alert = webhook.received[0]
    assert alert["level"] == "failure"
    assert alert["details"]["dag_id"] == "ohlcv_reingest"
    assert alert["details"]["run_id"] == run.run_id
    (failed,) = alert["details"]["failed_chunks"]
    assert failed["chunk"] == "2025-12"
    assert "truncated" in failed["error"]


def test_a_successful_run_sends_nothing(triangle_dag, market_db, webhook):
    run = triangle_dag.test(
        run_conf={"symbols": ["GLBX.MDP3:NQ"], "start": "2025-12-01", "end": "2025-12-02"}
    )
    assert run.state == "success"
    assert webhook.received == []


def test_long_gaps_and_a_stale_series_are_alerted_and_the_run_succeeds(
    market_db, webhook, airflow_db
):
    from airflow.dag_processing.dagbag import DagBag

    gap_dag = DagBag(dag_folder=str(ROOT / "dags")).dags["gap_detection"]
    bars = _bars("2025-12-01", "2025-12-12")
    ts = bars.ts.to_numpy()
    hole = (ts >= to_ns("2025-12-02T14:00")) & (ts < to_ns("2025-12-04T16:00"))  # ~2 trading days
    stored = bars[~hole & (ts < to_ns("2025-12-10T15:00"))]  # nothing after Wednesday 15:00
    store_bars(stored)
    run = gap_dag.test(
        run_conf={
            "symbols": ["GLBX.MDP3:NQ"],
            "start": "2025-12-01",
            "end": "2025-12-10",
            "repair": False,
            "max_lag_minutes": 120,
        }
    )
    assert run.state == "success"  # an alert, not a failure
    assert len(webhook.received) == 1
    alert = webhook.received[0]
    assert alert["level"] == "warning"
    (gap,) = alert["details"]["gaps"]
    assert (gap["severity"], gap["gap_start"]) == ("warning", "2025-12-02T14:00:00+00:00")
    (stale,) = alert["details"]["stale"]
    assert stale["newest_bar"] == "2025-12-10T14:59:00+00:00"
    # Wednesday 15:00 UTC to Thursday 00:00 UTC: 9 hours less the 22:00-23:00 UTC break
    assert stale["lag_minutes"] == 8 * 60
    with market_db.connect() as conn:
        counts = conn.execute(
            "SELECT counts FROM backfill_runs WHERE run_id = %s AND chunk = 'total'", (run.run_id,)
        ).fetchone()[0]
    assert counts["stale"] == alert["details"]["stale"]
