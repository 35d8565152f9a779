"""``feature_backfill`` through Airflow: chunks equal one pass, re-runs write nothing,
``force_recalc`` picks up a corrected bar, catch-up follows new bars."""

from __future__ import annotations

import threading

import pytest

from market_backfill.db.inserter import BatchInserter
from market_backfill.db.tables import AGG_TABLE, FEATURES_TABLE
from market_backfill.names import TIMEFRAMES
from market_backfill.symbols import Series, parse_symbol
from market_backfill.timeutil import to_ns
from tests.conftest import other_series, store_bars
from tests.support.feature_checks import assert_same, single_pass, stored
from tests.support.xcoms import mapped_xcoms

pytestmark = pytest.mark.airflow

CONF = {
    "symbols": ["GLBX.MDP3:NQ"],
    "start": None,
    "end": None,
    "force_recalc": False,
    "since": None,
    "timeframes": list(TIMEFRAMES),
}


def _totals(db, run_id: str) -> dict:
    with db.connect() as conn:
        return conn.execute(
            "SELECT counts FROM backfill_runs WHERE run_id = %s AND chunk = 'total'", (run_id,)
        ).fetchone()[0]


def _updated(db) -> tuple[int, str]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT count(*), max(updated_at)::text FROM market_features_v1"
        ).fetchone()


def test_two_halves_equal_one_pass_and_a_rerun_writes_nothing(
    feature_dag, market_db, quarter_bars, monkeypatch
):
    store_bars(quarter_bars)
    writing = set()  # the threads that wrote batches
    monkeypatch.setattr(
        BatchInserter, "default_hook", lambda at: writing.add(threading.current_thread().name)
    )
    first = feature_dag.test(run_conf={**CONF, "start": "2025-01-01", "end": "2025-02-14"})
    assert first.state == "success"
    # two writers a chunk by default, in both stages
    assert {f"{AGG_TABLE} writer 2", f"{FEATURES_TABLE} writer 2"} <= writing
    writing.clear()
    second = feature_dag.test(
        run_conf={**CONF, "start": "2025-02-15", "end": "2025-03-31", "writers": 1}
    )
    assert second.state == "success"
    assert writing
    assert not {f"{AGG_TABLE} writer 2", f"{FEATURES_TABLE} writer 2"} & writing
    with market_db.connect() as conn:
        for tf in TIMEFRAMES:
            assert_same(single_pass(quarter_bars, tf), stored(conn, tf))
        agg = dict(
            conn.execute(
                "SELECT timeframe, sum(bars) FROM market_bars_ohlcv_agg GROUP BY 1"
            ).fetchall()
        )
    assert set(agg) == {"5m", "15m", "1h", "4h", "1d"}
    assert {int(v) for v in agg.values()} == {len(quarter_bars)}
    totals = _totals(market_db, second.run_id)
    assert totals["written"]["1m"] == (quarter_bars.ts >= to_ns("2025-02-15")).sum()
    assert totals["chunks"] == 4  # 2 months x (rollup, features)

    before = _updated(market_db)
    again = feature_dag.test(run_conf={**CONF, "start": "2025-01-01", "end": "2025-03-31"})
    assert again.state == "success"
    totals = _totals(market_db, again.run_id)
    assert sum(totals["written"].values()) == 0
    assert sum(totals["computed"].values()) == 0  # the anti-join found nothing missing
    assert sum(totals["agg_written"].values()) == 0
    assert _updated(market_db) == before


def test_series_of_a_month_share_a_task_in_both_stages(feature_dag, market_db, quarter_bars):
    es_bars = other_series(quarter_bars)
    store_bars(quarter_bars)
    store_bars(es_bars, symbol="GLBX.MDP3:ES")
    conf = {**CONF, "symbols": ["GLBX.MDP3:NQ", "GLBX.MDP3:ES"], "start": "2025-01-01"}
    run = feature_dag.test(run_conf={**conf, "end": "2025-03-31"})
    assert run.state == "success"
    rollups = mapped_xcoms("feature_backfill", run.run_id, "rollup_chunk")
    features = mapped_xcoms("feature_backfill", run.run_id, "feature_chunk")
    months = ("2025-01", "2025-02", "2025-03")
    assert set(rollups) == {f"NQ,ES {m} agg" for m in months}
    assert set(features) == {f"NQ,ES {m}" for m in months}
    feb = features["NQ,ES 2025-02"]
    assert feb["symbols"] == ["GLBX.MDP3:NQ", "GLBX.MDP3:ES"]
    assert feb["written"]["1m"] == sum(m["written"]["1m"] for m in feb["members"]) > 0
    es = Series(parse_symbol("GLBX.MDP3:ES"), "v", 0)
    with market_db.connect() as conn:
        for tf in TIMEFRAMES:
            assert_same(single_pass(quarter_bars, tf), stored(conn, tf))
            assert_same(single_pass(es_bars, tf), stored(conn, tf, es))
        audit = conn.execute(
            "SELECT symbol, chunk FROM backfill_runs WHERE run_id = %s AND status = 'success' "
            "AND symbol <> '*'",
            (run.run_id,),
        ).fetchall()
    assert sorted(audit) == sorted(  # the summary stays per series, month and stage
        (s, m + suffix)
        for s in ("GLBX.MDP3:NQ", "GLBX.MDP3:ES")
        for m in months
        for suffix in ("", " agg")
    )
    assert _totals(market_db, run.run_id)["chunks"] == 12

    alone = feature_dag.test(run_conf={**conf, "end": "2025-01-31", "symbols_per_task": 1})
    assert alone.state == "success"
    assert set(mapped_xcoms("feature_backfill", alone.run_id, "feature_chunk")) == {
        "NQ 2025-01",
        "ES 2025-01",
    }


def test_force_recalc_since_picks_up_a_corrected_bar(feature_dag, market_db, quarter_bars):
    store_bars(quarter_bars)
    conf = {**CONF, "start": "2025-01-01", "end": "2025-03-31", "timeframes": ["1m", "1h", "1d"]}
    assert feature_dag.test(run_conf=conf).state == "success"
    # the last bar of an hour: a new high of its hour and day, and a new close of its hour
    bar = quarter_bars.index[(quarter_bars.ts < to_ns("2025-03-10T16:00")).sum() - 1]
    corrected = quarter_bars.copy()
    corrected.loc[bar, "high"] += 800 * 250_000_000  # 200 points higher
    corrected.loc[bar, "close"] += 4 * 250_000_000
    store_bars(corrected.loc[[bar]])

    # dates alone: the bars roll up again, the stored feature rows are untouched
    window = feature_dag.test(run_conf=conf)
    assert window.state == "success"
    assert _totals(market_db, window.run_id)["agg_written"] == {"1h": 1, "1d": 1}
    with market_db.connect() as conn:
        for tf in ("1m", "1h", "1d"):
            assert_same(single_pass(quarter_bars, tf), stored(conn, tf))

    forced = feature_dag.test(
        run_conf={
            **CONF,
            "force_recalc": True,
            "since": "2025-03-01",
            "timeframes": ["1m", "1h", "1d"],
        }
    )
    assert forced.state == "success"
    with market_db.connect() as conn:
        for tf in ("1m", "1h", "1d"):
            assert_same(single_pass(corrected, tf), stored(conn, tf))
    written = _totals(market_db, forced.run_id)["written"]
    assert 0 < written["1m"] < (corrected.ts >= to_ns("2025-03-01")).sum()  # what differs
    assert written["1h"] > 0
    assert written["1d"] > 0


def test_catch_up_follows_new_bars_and_rewrites_the_incomplete_bucket(
    feature_dag, market_db, quarter_bars
):
    early = quarter_bars[quarter_bars.ts < to_ns("2025-03-12T15:30")]
    store_bars(early)
    assert feature_dag.test(run_conf=CONF).state == "success"  # catch-up from nothing
    with market_db.connect() as conn:
        assert_same(single_pass(early, "1d"), stored(conn, "1d"))
        open_1d = conn.execute(
            "SELECT count(*) FROM market_bars_ohlcv_agg WHERE NOT complete"
        ).fetchone()[0]
    assert open_1d == 5  # the newest bucket of each higher timeframe
    store_bars(quarter_bars)
    run = feature_dag.test(run_conf=CONF)
    assert run.state == "success"
    with market_db.connect() as conn:
        for tf in TIMEFRAMES:
            assert_same(single_pass(quarter_bars, tf), stored(conn, tf))
        assert (
            conn.execute(
                "SELECT count(*) FROM market_bars_ohlcv_agg WHERE NOT complete"
            ).fetchone()[0]
            == 5
        )
    planned = _totals(market_db, run.run_id)["chunks"]
    assert planned == 2  # March (the newest rows) and nothing before, in both stages

    before = _updated(market_db)
    assert feature_dag.test(run_conf=CONF).state == "success"
    assert _updated(market_db) == before


def test_bad_params_fail_the_plan_with_a_clear_message(feature_dag, market_db, capfd):
    run = feature_dag.test(run_conf={**CONF, "force_recalc": True})
    assert run.state == "failed"
    out, err = capfd.readouterr()
    assert "param 'force_recalc' needs 'since'" in out + err


def test_one_minute_only_skips_the_rollup(feature_dag, market_db, quarter_bars):
    store_bars(quarter_bars)
    run = feature_dag.test(
        run_conf={**CONF, "start": "2025-02-01", "end": "2025-02-28", "timeframes": ["1m"]}
    )
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["rollup_chunk"] == "skipped"
    assert states["feature_chunk"] == "success"
    totals = _totals(market_db, run.run_id)
    assert totals["chunks"] == 1
    assert totals["written"] == {
        "1m": int(
            (
                (quarter_bars.ts >= to_ns("2025-02-01")) & (quarter_bars.ts < to_ns("2025-03-01"))
            ).sum()
        )
    }
    with market_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM market_bars_ohlcv_agg").fetchone()[0] == 0
