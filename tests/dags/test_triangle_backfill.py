"""``triangle_backfill`` through Airflow: monthly chunks equal one run, re-runs add nothing."""

from __future__ import annotations

import pytest

from market_backfill.timeutil import to_ns
from market_backfill.triangles.engine import TriangleSettings, run_engine
from market_backfill.triangles.store import stored_events
from tests.conftest import store_bars

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


def _stored(db) -> list[tuple[int, str, str]]:
    with db.connect() as conn:
        ev = stored_events(conn, ["GLBX.MDP3:NQ"])
    return list(zip([to_ns(t) for t in ev.ts], ev.direction, ev.bias_15m, strict=True))


def _chunk_counts(run_id: str, db) -> dict[str, dict]:
    with db.connect() as conn:
        return dict(
            conn.execute(
                "SELECT chunk, counts FROM backfill_runs WHERE run_id = %s", (run_id,)
            ).fetchall()
        )


def test_monthly_chunks_equal_one_run_and_reruns_add_nothing(triangle_dag, market_db, quarter_bars):
    store_bars(quarter_bars)
    run = triangle_dag.test(run_conf=CONF)
    assert run.state == "success"
    counts = _chunk_counts(run.run_id, market_db)
    assert set(counts) == {"2025-01", "2025-02", "2025-03", "total"}
    assert counts["total"]["bars"] == len(quarter_bars)
    assert _stored(market_db) == _one_run(quarter_bars)
    assert counts["total"]["inserted"] == counts["total"]["triangles"] == len(_stored(market_db))

    again = triangle_dag.test(run_conf=CONF)
    assert again.state == "success"
    assert _chunk_counts(again.run_id, market_db)["total"]["inserted"] == 0

    purged = triangle_dag.test(run_conf={**CONF, "purge": True})
    assert purged.state == "success"
    total = _chunk_counts(purged.run_id, market_db)["total"]
    assert total["inserted"] == total["triangles"]
    assert _stored(market_db) == _one_run(quarter_bars)


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
