"""The feature stage against a real PostgreSQL, without Airflow: warm-ups, catch-up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.db.changes import log_write
from market_backfill.db.connection import ReusingConnector, run_transaction
from market_backfill.features.load import (
    absorb_changes,
    feature_chunk,
    plan_run,
    rollup_chunk,
)
from market_backfill.features.params import parse_params
from market_backfill.names import TIMEFRAMES
from market_backfill.planning import Chunk, PlanRequest, monthly_chunks
from market_backfill.symbols import settings_of
from market_backfill.timeutil import to_ns
from tests.conftest import store_bars
from tests.support.feature_checks import NQ, assert_same, single_pass, stored
from tests.support.heap_order import reverse_heap
from tests.support.imports import group_task_code, loaded_after

PARAMS = {"symbols": ["GLBX.MDP3:NQ"]}
END = datetime(2025, 4, 1, tzinfo=UTC)


def months() -> dict[str, Chunk]:
    return {
        c.month: c for c in monthly_chunks("GLBX.MDP3:NQ", datetime(2025, 1, 1, tzinfo=UTC), END)
    }


def test_a_short_stored_history_is_rolled_up_in_memory_with_the_same_bits(market_db, quarter_bars):
    store_bars(quarter_bars)
    connect, parsed = hook_connector(), parse_params(PARAMS)
    nq = settings_of(connect, "GLBX.MDP3:NQ")
    chunks = months()
    rollup_chunk(chunks["2025-03"], nq, parsed, connect)  # January and February never rolled up
    first = feature_chunk(chunks["2025-03"], nq, parsed, connect, refresh=True)
    assert first["warmup_rolled"] == 5  # every higher timeframe
    with market_db.connect() as conn:
        for tf in TIMEFRAMES:
            expected = single_pass(quarter_bars, tf)
            assert_same(
                expected[expected.ts >= chunks["2025-03"].start_dt.timestamp() * 1e9],
                stored(conn, tf),
            )

    for month in ("2025-01", "2025-02"):
        rollup_chunk(chunks[month], nq, parsed, connect)
    again = feature_chunk(chunks["2025-03"], nq, parsed, connect, refresh=True)
    assert again["warmup_rolled"] == 0  # from the stored buckets now
    assert sum(again["written"].values()) == 0  # and the very same values


def plan(now: datetime = END) -> list[str]:
    chunks = plan_run(PlanRequest(hook_connector(), PARAMS, now=now))
    return [c["start"] for c in chunks]


def test_catch_up_recomputes_changed_bars_until_the_run_succeeds(market_db, quarter_bars):
    store_bars(quarter_bars)
    connect, parsed = hook_connector(), parse_params(PARAMS)
    nq = settings_of(connect, "GLBX.MDP3:NQ")
    assert plan() == [
        "2025-01-01T23:00:00+00:00",
        "2025-02-01T00:00:00+00:00",
        "2025-03-01T00:00:00+00:00",
    ]
    for chunk in months().values():
        rollup_chunk(chunk, nq, parsed, connect)
        feature_chunk(chunk, nq, parsed, connect, refresh=True)
    newest = plan()
    assert newest == ["2025-03-31T22:00:00+00:00"]  # the newest session, maybe incomplete

    first, last = datetime(2025, 1, 15, 15, tzinfo=UTC), datetime(2025, 1, 15, 16, tzinfo=UTC)
    run_transaction(connect, lambda c: log_write(c, NQ, first, last), what="test")
    # from the changed session's open through the horizon (400 days: to the end here)
    assert plan() == [
        "2025-01-14T23:00:00+00:00",
        "2025-02-01T00:00:00+00:00",
        "2025-03-01T00:00:00+00:00",
    ]
    assert plan()[0] == "2025-01-14T23:00:00+00:00"  # pending until a run succeeds
    absorb_changes(connect, parsed)
    assert plan() == newest


def test_force_recalc_plans_from_since(market_db, quarter_bars):
    store_bars(quarter_bars)
    chunks = plan_run(
        PlanRequest(
            hook_connector(),
            {**PARAMS, "force_recalc": True, "since": "2025-02-10"},
            now=END,
        )
    )
    assert [(c["start"], c["end"]) for c in chunks] == [
        ("2025-02-10T00:00:00+00:00", "2025-03-01T00:00:00+00:00"),
        ("2025-03-01T00:00:00+00:00", "2025-04-01T00:00:00+00:00"),
    ]


@pytest.mark.parametrize("tf", ["1m", "1d"])
def test_a_series_without_bars_plans_nothing(market_db, tf):
    assert plan_run(PlanRequest(hook_connector(), {**PARAMS, "timeframes": [tf]}, now=END)) == []


def test_a_change_is_recomputed_through_the_horizon_of_the_largest_timeframe(
    market_db, quarter_bars
):
    """1m only: 400 minutes (x1.6 for closed hours) after the change, not the whole rest."""
    store_bars(quarter_bars)
    connect = hook_connector()
    params = {**PARAMS, "timeframes": ["1m"]}
    nq = settings_of(connect, "GLBX.MDP3:NQ")
    parsed = parse_params(params)
    for chunk in months().values():
        feature_chunk(chunk, nq, parsed, connect, refresh=True)
    first, last = datetime(2025, 1, 15, 15, tzinfo=UTC), datetime(2025, 1, 15, 16, tzinfo=UTC)
    run_transaction(connect, lambda c: log_write(c, NQ, first, last), what="test")
    chunks = plan_run(PlanRequest(connect, params, now=END))
    assert [(c["start"], c["end"]) for c in chunks] == [
        ("2025-01-14T23:00:00+00:00", "2025-01-16T02:41:00+00:00"),  # 16:01 + 640 minutes
        ("2025-03-31T22:00:00+00:00", "2025-04-01T00:00:00+00:00"),  # the newest session
    ]


@pytest.fixture(scope="module")
def across_months():
    """SYNTHETIC bars 2025-11-16 .. 2025-12-16: 2025-12-01 00:00 UTC falls inside the
    session that opened Sunday 2025-11-30 18:00 New York (and inside a 4h bucket)."""
    from market_backfill_devtools.sample import synthetic_bars

    return synthetic_bars(
        "NQ.v.0",
        datetime(2025, 11, 16, tzinfo=UTC),
        datetime(2025, 12, 16, tzinfo=UTC),
        seed=5,
    )


@pytest.mark.parametrize("order", [("2025-11", "2025-12"), ("2025-12", "2025-11")])
def test_a_bucket_across_a_month_boundary_belongs_to_the_month_it_starts_in(
    market_db, across_months, order
):
    store_bars(across_months)
    connect, parsed = hook_connector(), parse_params(PARAMS)
    nq = settings_of(connect, "GLBX.MDP3:NQ")
    chunks = {
        c.month: c
        for c in monthly_chunks(
            "GLBX.MDP3:NQ", datetime(2025, 11, 16, tzinfo=UTC), datetime(2025, 12, 16, tzinfo=UTC)
        )
    }
    for month in order:
        rollup_chunk(chunks[month], nq, parsed, connect)
    for month in order:
        assert feature_chunk(chunks[month], nq, parsed, connect, refresh=True)["warmup_rolled"] == 0
    with market_db.connect() as conn:
        rows = conn.execute(
            "SELECT timeframe, count(*), sum(bars) FROM market_bars_ohlcv_agg GROUP BY 1"
        ).fetchall()
        straddling = conn.execute(
            "SELECT bars FROM market_bars_ohlcv_agg WHERE timeframe = '4h' "
            "AND ts = '2025-11-30T23:00:00Z'"
        ).fetchone()[0]
        for tf in TIMEFRAMES:
            assert_same(single_pass(across_months, tf), stored(conn, tf))
    assert {int(total) for _, _, total in rows} == {len(across_months)}
    ts = across_months.ts
    inside = (ts >= to_ns("2025-11-30T23:00")) & (ts < to_ns("2025-12-01T03:00"))
    assert straddling == inside.sum() > 200  # 23:00 .. 03:00 UTC, every bar of it


@pytest.mark.fault
def test_killed_connections_during_the_binary_writes_lose_and_double_nothing(
    market_db, quarter_bars, monkeypatch
):
    from market_backfill.db.inserter import BatchAttempt, BatchInserter
    from tests.support.faults import terminate_backend

    store_bars(quarter_bars)
    killed = []

    def kill(at: BatchAttempt) -> None:
        if at.table == "market_features_v1" and at.batch in (3, 40) and at.attempt == 1:
            killed.append(terminate_backend(market_db, at.conn))

    monkeypatch.setattr(BatchInserter, "default_hook", kill)
    connect, parsed = hook_connector(), parse_params({**PARAMS, "timeframes": ["1m", "1h"]})
    nq = settings_of(connect, "GLBX.MDP3:NQ")
    chunk = months()["2025-02"]
    rollup_chunk(chunk, nq, parsed, connect)
    result = feature_chunk(chunk, nq, parsed, connect, refresh=True)
    assert killed == [True, True]  # before batches 3 and 40 of the 1m rows
    assert result["retries"] == 2
    with market_db.connect() as conn:
        got = stored(conn, "1m")
        assert conn.execute(
            "SELECT count(*) = count(DISTINCT (timeframe, ts)) FROM market_features_v1"
        ).fetchone()[0]
    expected = single_pass(quarter_bars, "1m")
    inside = (expected.ts >= to_ns("2025-02-01")) & (expected.ts < to_ns("2025-03-01"))
    # the chunk's values are within 1e-9 of the single pass (its warm-up: 400 bars)
    assert_same(expected[inside].reset_index(drop=True), got)


def test_a_rollup_task_body_loads_no_numba(market_db, quarter_bars):
    """The rollup stage is numpy alone: its read lets the server scale the prices (the
    triangle reads decode them with a numba kernel, which those tasks load anyway), so a
    rollup task never pays numba's import and start (about half a second)."""
    store_bars(quarter_bars)
    setup = group_task_code(
        "feature_backfill",
        PARAMS,
        months()["2025-02"].to_dict(),
        "from market_backfill.features.tasks import run_rollup_group\n"
        "rolled = run_rollup_group(group, run)\n"
        "assert rolled['members'], rolled",
    )
    assert loaded_after(setup, ["numba", "pandas"]) == []
    feb = months()["2025-02"]
    ts = quarter_bars["ts"].to_numpy().astype("datetime64[ns]").astype("int64")
    in_feb = ts[(ts >= to_ns(feb.start_dt)) & (ts < to_ns(feb.end_dt))]
    with market_db.connect() as conn:
        hours = conn.execute(
            "SELECT count(*), sum(bars) FROM market_bars_ohlcv_agg WHERE timeframe = '1h'"
        ).fetchone()
    assert hours == (len(set((in_feb // (3600 * 10**9)).tolist())), len(in_feb))


def test_feature_task_bodies_run_without_pandas_or_numba(market_db, quarter_bars):
    """Both feature stages' task bodies, in a fresh interpreter on real bars: the rollup,
    the features and their binary COPY work on numpy arrays (the features kernel is numpy
    passes, the server scales the prices it sends), session times come from zoneinfo, so
    neither pandas nor numba is loaded; what they store is the single-pass reference."""
    store_bars(quarter_bars)
    feb = months()["2025-02"]
    setup = group_task_code(
        "feature_backfill",
        PARAMS,
        feb.to_dict(),
        "from market_backfill.features.tasks import run_feature_group, run_rollup_group\n"
        "rolled = run_rollup_group(group, run)\n"
        "features = run_feature_group(group, run)\n"
        "assert rolled['members'] and features['members'], (rolled, features)",
    )
    assert loaded_after(setup, ["pandas", "numba", "pandas_market_calendars", "databento"]) == []
    with market_db.connect() as conn:
        for tf in TIMEFRAMES:
            expected = single_pass(quarter_bars, tf)
            in_feb = (expected.ts >= to_ns(feb.start_dt)) & (expected.ts < to_ns(feb.end_dt))
            assert_same(expected[in_feb], stored(conn, tf))


def test_bars_stored_newest_first_give_the_same_features(market_db, quarter_bars):
    # the reads send no ORDER BY (the server would sort a month): the rows are sorted here
    store_bars(quarter_bars)
    connect, parsed = hook_connector(), parse_params(PARAMS)
    nq = settings_of(connect, "GLBX.MDP3:NQ")
    chunks = months()
    for month in ("2025-01", "2025-02", "2025-03"):
        rollup_chunk(chunks[month], nq, parsed, connect)
    march = chunks["2025-03"]
    reverse_heap(market_db, "market_bars_ohlcv_1m_clean", march.start_dt, march.end_dt)
    reverse_heap(market_db, "market_bars_ohlcv_agg", march.start_dt, march.end_dt)
    result = feature_chunk(march, nq, parsed, connect, refresh=True)
    assert result["warmup_rolled"] == 0  # every timeframe read from its stored bars
    with market_db.connect() as conn:
        for tf in TIMEFRAMES:
            expected = single_pass(quarter_bars, tf)
            assert_same(expected[expected.ts >= march.start_dt.timestamp() * 1e9], stored(conn, tf))


def test_chunks_read_their_minutes_over_two_connections(market_db, quarter_bars):
    store_bars(quarter_bars)
    connect = ReusingConnector(hook_connector())
    parsed = parse_params({**PARAMS, "writers": 1})
    nq = settings_of(connect, "GLBX.MDP3:NQ")
    rollup_chunk(months()["2025-02"], nq, parsed, connect)
    assert connect.opened == 2  # the task's connection and the read's second half's
    result = feature_chunk(months()["2025-02"], nq, parsed, connect, refresh=True)
    assert connect.opened == 2  # both kept by the connector between reads and writes
    connect.close()
    feb = (quarter_bars.ts >= to_ns("2025-02-01")) & (quarter_bars.ts < to_ns("2025-03-01"))
    assert result["computed"]["1m"] == result["written"]["1m"] == feb.sum()  # rows, not columns
    assert result["computed"] == result["written"]
