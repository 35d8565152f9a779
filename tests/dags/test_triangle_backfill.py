"""``triangle_backfill`` through Airflow: monthly chunks equal one run, re-runs add nothing."""

from __future__ import annotations

import threading

import pytest

from market_backfill.db.inserter import BatchInserter
from market_backfill.db.tables import EVENTS_TABLE
from market_backfill.timeutil import to_ns
from market_backfill.triangles.engine import TriangleSettings, run_engine
from market_backfill.triangles.store import stored_events
from tests.conftest import other_series, store_bars
from tests.support.xcoms import mapped_xcoms, xcom_keys

pytestmark = pytest.mark.airflow

CONF = {
    "symbols": ["GLBX.MDP3:NQ"],
    "start": "2025-01-01",
    "end": "2025-03-31",
    "htf_aligned_only": True,
    "use_15m": True,
}


def _one_run(frame) -> list[tuple[int, str, str]]:
    ts = frame.ts.to_numpy()
    cfg = TriangleSettings(htf_aligned_only=True, use_15m=True)
    ev = run_engine(ts, frame.open, frame.high, frame.low, frame.close, cfg).events(ts)
    return list(zip(ev.ts.tolist(), ev.direction, ev.bias_15m, strict=True))


def _stored(db, symbol: str = "GLBX.MDP3:NQ") -> list[tuple[int, str, str]]:
    with db.connect() as conn:
        ev = stored_events(conn, [symbol])
    return list(zip([to_ns(t) for t in ev.ts], ev.direction, ev.bias_15m, strict=True))


def _chunk_counts(run_id: str, db) -> dict[str, dict]:
    with db.connect() as conn:
        return dict(
            conn.execute(
                "SELECT chunk, counts FROM backfill_runs WHERE run_id = %s", (run_id,)
            ).fetchall()
        )


def test_monthly_chunks_equal_one_run_and_reruns_add_nothing(
    triangle_dag, market_db, quarter_bars, monkeypatch
):
    store_bars(quarter_bars)
    writing = set()  # the threads that wrote batches
    monkeypatch.setattr(
        BatchInserter, "default_hook", lambda at: writing.add(threading.current_thread().name)
    )
    run = triangle_dag.test(run_conf={**CONF, "batch_size": 100})  # enough batches for two
    assert run.state == "success"
    assert f"{EVENTS_TABLE} writer 2" in writing  # two writers a chunk by default
    counts = _chunk_counts(run.run_id, market_db)
    assert set(counts) == {"2025-01", "2025-02", "2025-03", "total"}
    assert counts["total"]["bars"] == len(quarter_bars)
    assert _stored(market_db) == _one_run(quarter_bars)
    assert counts["total"]["inserted"] == counts["total"]["triangles"] == len(_stored(market_db))

    again = triangle_dag.test(run_conf=CONF)
    assert again.state == "success"
    assert _chunk_counts(again.run_id, market_db)["total"]["inserted"] == 0

    writing.clear()
    purged = triangle_dag.test(run_conf={**CONF, "purge": True, "batch_size": 100, "writers": 1})
    assert purged.state == "success"
    assert writing
    assert f"{EVENTS_TABLE} writer 2" not in writing
    total = _chunk_counts(purged.run_id, market_db)["total"]
    assert total["inserted"] == total["triangles"]
    assert _stored(market_db) == _one_run(quarter_bars)


def test_symbols_of_a_month_share_a_task_and_the_summary_stays_per_symbol(
    triangle_dag, market_db, quarter_bars
):
    es_bars = other_series(quarter_bars)
    store_bars(quarter_bars)
    store_bars(es_bars, symbol="GLBX.MDP3:ES")
    conf = {**CONF, "symbols": ["GLBX.MDP3:NQ", "GLBX.MDP3:ES"]}
    run = triangle_dag.test(run_conf=conf)  # symbols_per_task: 25 by default
    assert run.state == "success"
    tasks = mapped_xcoms("triangle_backfill", run.run_id, "triangle_chunk")
    assert set(tasks) == {"NQ,ES 2025-01", "NQ,ES 2025-02", "NQ,ES 2025-03"}
    jan = tasks["NQ,ES 2025-01"]
    assert jan["symbols"] == ["GLBX.MDP3:NQ", "GLBX.MDP3:ES"]
    assert jan["inserted"] == sum(m["inserted"] for m in jan["members"]) > 0
    # a dict result is one XCom, not one more round trip to Airflow's API per key
    assert xcom_keys("triangle_backfill", run.run_id) == {"return_value"}
    assert _stored(market_db) == _one_run(quarter_bars)
    assert _stored(market_db, "GLBX.MDP3:ES") == _one_run(es_bars)
    with market_db.connect() as conn:  # the summary stays per symbol and month
        audit = conn.execute(
            "SELECT symbol, chunk, status, counts->>'bars' FROM backfill_runs "
            "WHERE run_id = %s AND symbol <> '*' ORDER BY symbol, chunk",
            (run.run_id,),
        ).fetchall()
    assert [(s, c, st) for s, c, st, _ in audit] == [
        (s, m, "success")
        for s in ("GLBX.MDP3:ES", "GLBX.MDP3:NQ")
        for m in ("2025-01", "2025-02", "2025-03")
    ]
    assert sum(int(b) for s, _, _, b in audit if s.endswith("ES")) == len(es_bars)

    alone = triangle_dag.test(run_conf={**conf, "symbols_per_task": 1, "purge": True})
    assert alone.state == "success"
    labels = set(mapped_xcoms("triangle_backfill", alone.run_id, "triangle_chunk"))
    assert labels == {f"{r} 2025-0{m}" for r in ("NQ", "ES") for m in (1, 2, 3)}
    assert _stored(market_db, "GLBX.MDP3:ES") == _one_run(es_bars)


def test_legacy_without_allow_legacy_fails_with_a_clear_message(triangle_dag, market_db, capfd):
    run = triangle_dag.test(run_conf={**CONF, "source_table": "legacy"})
    assert run.state == "failed"
    out, err = capfd.readouterr()
    assert "needs 'allow_legacy': true" in out + err


def test_a_range_with_no_bars_finishes_with_zero_counts(triangle_dag, market_db):
    run = triangle_dag.test(run_conf={**CONF, "start": "2024-06-01", "end": "2024-06-30"})
    assert run.state == "success"
    total = _chunk_counts(run.run_id, market_db)["total"]
    assert (total["bars"], total["triangles"], total["inserted"]) == (0, 0, 0)


def test_a_repaired_week_is_recomputed_by_the_next_catch_up(
    reingest_dag, triangle_dag, market_db, quarter_bars, tmp_path
):
    """Bars load with a hole, triangles catch up, gap repair fills the hole: the next
    catch-up recomputes the segment that changed, and the events equal a fresh run over
    the stored bars (not the stale events computed around the hole)."""
    from airflow.dag_processing.dagbag import DagBag

    from market_backfill_devtools.dbn_writer import write_bars
    from tests.conftest import ROOT

    gap_dag = DagBag(dag_folder=str(ROOT / "dags")).dags["gap_detection"]
    feb = quarter_bars[
        (quarter_bars.ts >= to_ns("2025-02-02")) & (quarter_bars.ts < to_ns("2025-02-16"))
    ]
    hole = (feb.ts >= to_ns("2025-02-11T14:00")) & (feb.ts < to_ns("2025-02-11T16:00"))
    kw = {"dataset": "GLBX.MDP3", "instruments": {"NQ.v.0": 5}}
    holed = write_bars(tmp_path / "holed.dbn", feb[~hole], **kw)
    full = write_bars(tmp_path / "full.dbn", feb, **kw)
    dates = {"start": "2025-02-02", "end": "2025-02-15"}
    assert (
        reingest_dag.test(run_conf={"source": "dbn_file", "dbn_path": str(holed), **dates}).state
        == "success"
    )
    catch_up = {"symbols": ["GLBX.MDP3:NQ"], "htf_aligned_only": True, "use_15m": True}
    assert triangle_dag.test(run_conf=catch_up).state == "success"
    before = _stored(market_db)
    assert before == _one_run(feb[~hole])  # the first catch-up computed all loaded bars

    repair = gap_dag.test(
        run_conf={"source": "dbn_file", "dbn_path": str(full), **dates, "symbols": ["GLBX.MDP3:NQ"]}
    )
    assert repair.state == "success"
    with market_db.connect() as conn:
        assert conn.execute("SELECT status FROM ohlcv_gaps").fetchall() == [("filled",)]
    assert triangle_dag.test(run_conf=catch_up).state == "success"
    after = _stored(market_db)
    assert after == _one_run(feb)  # exactly a fresh run over the repaired bars
    assert after != before
    # nothing changed since: the next catch-up recomputes nothing
    with market_db.connect() as conn:
        n = conn.execute("SELECT count(*) FROM triangle_events_v1").fetchone()[0]
        conn.execute("UPDATE triangle_events_v1 SET created_at = '2000-01-01'")
    assert triangle_dag.test(run_conf=catch_up).state == "success"
    with market_db.connect() as conn:
        old, total = conn.execute(
            "SELECT count(*) FILTER (WHERE created_at = '2000-01-01'), count(*) "
            "FROM triangle_events_v1"
        ).fetchone()
    assert old == total == n
