"""``gap_detection`` through Airflow: holes found, repaired from a DBN file, reported."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from market_backfill.timeutil import to_ns
from market_backfill_devtools.dbn_writer import write_bars
from market_backfill_devtools.sample import synthetic_bars
from tests.conftest import ROOT, store_bars

pytestmark = pytest.mark.airflow
NQ = "GLBX.MDP3:NQ"


@pytest.fixture
def gap_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    return bag.dags["gap_detection"]


def _report(db, run_id: str) -> dict:
    with db.connect() as conn:
        return conn.execute(
            "SELECT counts FROM backfill_runs WHERE run_id = %s AND symbol = '*' "
            "AND chunk = 'total'",
            (run_id,),
        ).fetchone()[0]


def _file_conf(start: str, end: str, path) -> dict:
    """NQ's gap run over ``start``..``end``, repairs from the DBN file ``path``."""
    return {
        "symbols": [NQ],
        "start": start,
        "end": end,
        "source": "dbn_file",
        "dbn_path": str(path),
    }


def test_holes_are_detected_repaired_and_reported(gap_dag, market_db, tmp_path):
    start, end = pd.Timestamp("2025-12-01", tz="UTC"), pd.Timestamp("2025-12-06", tz="UTC")
    full = synthetic_bars(
        "NQ.v.0", start.to_pydatetime(), end.to_pydatetime(), seed=4, quiet_fraction=0
    )
    ts = full.ts.to_numpy()
    hole = (ts >= to_ns("2025-12-02T14:00")) & (ts < to_ns("2025-12-02T14:45"))
    hole |= (ts >= to_ns("2025-12-04T03:00")) & (ts < to_ns("2025-12-04T03:07"))
    single = ts == to_ns("2025-12-03T09:31")
    store_bars(full[~hole & ~single])
    path = write_bars(tmp_path / "nq.dbn.zst", full, dataset="GLBX.MDP3", instruments={"NQ.v.0": 3})
    conf = _file_conf("2025-12-01", "2025-12-05", path)
    run = gap_dag.test(run_conf=conf)
    assert run.state == "success"
    with market_db.connect() as conn:
        gaps = conn.execute(
            "SELECT gap_start, minutes, status, attempts FROM ohlcv_gaps ORDER BY gap_start"
        ).fetchall()
        stored = conn.execute("SELECT count(*) FROM market_bars_ohlcv_1m_clean").fetchone()[0]
    assert [(g[1], g[2], g[3]) for g in gaps] == [(45, "filled", 1), (7, "filled", 1)]
    assert run.get_task_instance("announce").state == "success"  # the bars Asset emitted
    assert stored == len(full) - 1  # the single quiet minute is not a gap: never repaired
    report = _report(market_db, run.run_id)["completeness"]
    assert report == [
        {
            "symbol": NQ,
            "month": "2025-12",
            "expected": len(full),
            "stored": len(full) - 1,
            "percent": round(100 * (len(full) - 1) / len(full), 2),
            "open_gaps": 0,
            "unfillable_gaps": 0,
        }
    ]

    again = gap_dag.test(run_conf=conf)
    assert again.state == "success"
    totals = _report(market_db, again.run_id)
    assert (totals["gaps"], totals["new"]) == (0, 0)


def test_a_source_without_the_data_leaves_the_gap_open_without_failing(
    gap_dag, market_db, tmp_path
):
    start, end = pd.Timestamp("2025-12-01", tz="UTC"), pd.Timestamp("2025-12-03", tz="UTC")
    full = synthetic_bars(
        "NQ.v.0", start.to_pydatetime(), end.to_pydatetime(), seed=4, quiet_fraction=0
    )
    ts = full.ts.to_numpy()
    hole = (ts >= to_ns("2025-12-02T14:00")) & (ts < to_ns("2025-12-02T14:30"))
    store_bars(full[~hole])
    path = write_bars(
        tmp_path / "nq.dbn", full[~hole], dataset="GLBX.MDP3", instruments={"NQ.v.0": 3}
    )
    run = gap_dag.test(run_conf=_file_conf("2025-12-01", "2025-12-02", path))
    assert run.state == "success"
    with market_db.connect() as conn:
        status, attempts, error = conn.execute(
            "SELECT status, attempts, last_error FROM ohlcv_gaps"
        ).fetchone()
    assert (status, attempts) == ("open", 1)
    assert "no bars for 30" in error
    assert run.get_task_instance("announce").state == "skipped"  # no bars: no Asset event
    assert np.isclose(_report(market_db, run.run_id)["completeness"][0]["open_gaps"], 1)


def test_a_gap_the_source_cannot_fill_becomes_unfillable_and_is_no_longer_requested(
    gap_dag, market_db, gateway, synthetic_bars_continuous
):
    bars = synthetic_bars_continuous
    nq = bars[(bars.symbol == "NQ.v.0") & (bars.ts >= to_ns("2025-02-03"))]
    nq = nq[nq.ts < to_ns("2025-02-05")]
    hole = (nq.ts >= to_ns("2025-02-04T15:00")) & (nq.ts < to_ns("2025-02-04T15:40"))
    store_bars(nq[~hole])
    missing = bars.index.isin(nq[hole].index)
    gateway.state.bars = bars[~missing]  # the vendor has nothing for those minutes either
    conf = {
        "symbols": [NQ],
        "start": "2025-02-03",
        "end": "2025-02-04",
        "source": "databento",
        "max_attempts": 2,
    }

    def run(**extra) -> tuple[int, tuple]:
        before = len(gateway.state.data_requests())
        assert gap_dag.test(run_conf={**conf, **extra}).state == "success"
        with market_db.connect() as conn:
            row = conn.execute("SELECT status, attempts, last_error FROM ohlcv_gaps").fetchone()
        return len(gateway.state.data_requests()) - before, row[:2]

    assert run() == (1, ("open", 1))
    assert run() == (1, ("unfillable", 2))
    assert run() == (0, ("unfillable", 2))  # not requested again: no money spent
    assert run(retry_unfillable=True) == (1, ("unfillable", 3))
    with market_db.connect() as conn:
        error = conn.execute("SELECT last_error FROM ohlcv_gaps").fetchone()[0]
    assert "no bars for 40" in error


def test_repairs_go_through_the_pre_flight_cap_and_dry_run(
    gap_dag, market_db, gateway, synthetic_bars_continuous
):
    bars = synthetic_bars_continuous
    nq = bars[(bars.symbol == "NQ.v.0") & (bars.ts >= to_ns("2025-02-03"))]
    nq = nq[nq.ts < to_ns("2025-02-05")]
    hole = (nq.ts >= to_ns("2025-02-04T15:00")) & (nq.ts < to_ns("2025-02-04T15:40"))
    store_bars(nq[~hole])
    conf = {"symbols": [NQ], "start": "2025-02-03", "end": "2025-02-04", "source": "databento"}

    def estimate(run_id: str) -> dict:
        with market_db.connect() as conn:
            return conn.execute(
                "SELECT counts FROM backfill_runs WHERE run_id = %s AND chunk = 'estimate'",
                (run_id,),
            ).fetchone()[0]

    capped = gap_dag.test(run_conf={**conf, "max_cost_usd": 0.0000001})
    assert capped.state == "failed"  # the repairs were not planned: not a quiet success
    assert gateway.state.data_requests() == []
    quote = estimate(capped.run_id)
    assert len(quote["requests"]) == 1
    assert quote["requests"][0]["symbols"] == "NQ.v.0"
    assert quote["total_usd"] > quote["max_cost_usd"]

    # (dag.test keeps a run's conf in the DAG's params: every run says all it means)
    dry = gap_dag.test(run_conf={**conf, "max_cost_usd": 50, "dry_run": True})
    assert dry.state == "success"
    assert gateway.state.data_requests() == []
    assert estimate(dry.run_id)["dry_run"] is True
    with market_db.connect() as conn:
        assert conn.execute("SELECT status, attempts FROM ohlcv_gaps").fetchall() == [("open", 0)]

    repaired = gap_dag.test(run_conf={**conf, "max_cost_usd": 50, "dry_run": False})
    assert repaired.state == "success"
    assert len(gateway.state.data_requests()) == 1
    assert estimate(repaired.run_id)["total_usd"] == quote["total_usd"]


def test_a_detect_task_reads_its_ranges_over_two_connections(
    gap_dag, market_db, quarter_bars, tmp_path, monkeypatch
):
    """Three months, one range each: the detect task's scan reads them in its reader
    threads, on two backends."""
    from market_backfill.gaps import detect

    store_bars(quarter_bars)
    path = write_bars(
        tmp_path / "nq.dbn.zst", quarter_bars, dataset="GLBX.MDP3", instruments={"NQ.v.0": 3}
    )
    read_range = detect._read_range
    backends = set()

    def noted(cur, series, lo, hi):
        if threading.current_thread().name.startswith("gap scan reader"):
            backends.add(cur.connection.info.backend_pid)
        return read_range(cur, series, lo, hi)

    monkeypatch.setattr(detect, "MONTHS_PER_READ", 1)
    monkeypatch.setattr(detect, "_read_range", noted)
    run = gap_dag.test(run_conf=_file_conf("2025-01-01", "2025-03-31", path))
    assert run.state == "success"
    assert len(backends) == 2
