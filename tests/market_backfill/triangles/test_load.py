from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import psycopg
import pytest
from psycopg import sql

from market_backfill.airflow.connections import hook_connector
from market_backfill.db.connection import ReusingConnector
from market_backfill.db.tables import LEGACY_TABLE
from market_backfill.errors import ParamError
from market_backfill.names import FIXED_SCALE as PX
from market_backfill.planning import Chunk, PlanRequest
from market_backfill.symbols import SymbolSettings, parse_symbol
from market_backfill.timeutil import to_ns
from market_backfill.triangles.engine import TriangleSettings, run_engine
from market_backfill.triangles.load import plan_run as plan_stage
from market_backfill.triangles.load import triangle_chunk
from market_backfill.triangles.params import parse_params
from market_backfill.triangles.store import stored_events
from tests.conftest import store_bars
from tests.support.heap_order import reverse_heap
from tests.support.imports import group_task_code, loaded_after


def plan_run(connect, params, **request):
    return plan_stage(PlanRequest(connect, params, **request))


NQ = SymbolSettings(parse_symbol("GLBX.MDP3:NQ"), "v", 0, Decimal(1000), "CME Globex Equity")
FEB = Chunk("GLBX.MDP3:NQ", "2025-02", "2025-02-01T00:00:00+00:00", "2025-03-01T00:00:00+00:00")


def _engine_events(frame, lo: str, hi: str, cfg: TriangleSettings):
    ts = frame.ts.to_numpy()
    ev = run_engine(ts, frame.open, frame.high, frame.low, frame.close, cfg).events(ts)
    return ev[(ev.ts >= to_ns(lo)) & (ev.ts < to_ns(hi))].reset_index(drop=True)


def test_chunk_writes_the_engine_events_once_and_purge_replaces(market_db, quarter_bars):
    store_bars(quarter_bars)
    parsed = parse_params({"symbols": ["GLBX.MDP3:NQ"]})
    first = triangle_chunk(FEB, NQ, parsed, hook_connector())
    want = _engine_events(quarter_bars, "2025-02-01", "2025-03-01", parsed.settings)
    assert first["triangles"] == first["inserted"] == len(want) > 100
    assert first["preload_bars"] > 0  # read from the segment start (Sunday 2025-01-26 23:00)
    assert first["bad_bars"] == {}
    assert first["commits"] == first["batches"] == -(-len(want) // 500)
    with market_db.connect() as conn:
        got = stored_events(conn, ["GLBX.MDP3:NQ"])
    assert (got.ts.map(lambda t: to_ns(t)).to_numpy() == want.ts.to_numpy()).all()
    assert got.direction.tolist() == want.direction.tolist()
    assert got.bias_1h.tolist() == want.bias_1h.tolist()
    assert set(got.logic_version) == {"triangles-1.0"}
    assert set(got.anchor) == {"weekly"}
    again = triangle_chunk(FEB, NQ, parsed, hook_connector())
    assert (again["triangles"], again["inserted"]) == (len(want), 0)
    purged = triangle_chunk(
        FEB, NQ, parse_params({"symbols": ["GLBX.MDP3:NQ"], "purge": True}), hook_connector()
    )
    assert purged["inserted"] == len(want)
    other = triangle_chunk(
        FEB,
        NQ,
        parse_params({"symbols": ["GLBX.MDP3:NQ"], "require_engulfing": True}),
        hook_connector(),
    )
    assert 0 < other["inserted"] < len(want)
    with market_db.connect() as conn:
        assert len(stored_events(conn, ["GLBX.MDP3:NQ"])) == len(want) + other["inserted"]


def test_bad_clean_bars_are_skipped_and_counted(market_db, quarter_bars):
    frame = (
        quarter_bars[
            (quarter_bars.ts >= to_ns("2025-02-03")) & (quarter_bars.ts < to_ns("2025-02-08"))
        ]
        .copy()
        .reset_index(drop=True)
    )
    frame.loc[100, "low"] = 900 * PX  # below the floor
    frame.loc[100, "open"] = max(frame.loc[100, "open"], frame.loc[100, "low"])
    store_bars(frame)
    counts = triangle_chunk(FEB, NQ, parse_params({"symbols": ["GLBX.MDP3:NQ"]}), hook_connector())
    assert counts["bad_bars"] == {"PRICE_FLOOR": 1}
    assert counts["bars"] == len(frame)


def test_legacy_table_shifts_close_stamps_and_applies_the_heuristics(market_db, quarter_bars):
    frame = (
        quarter_bars[
            (quarter_bars.ts >= to_ns("2025-02-03")) & (quarter_bars.ts < to_ns("2025-02-08"))
        ]
        .copy()
        .reset_index(drop=True)
    )
    legacy = frame.copy()
    legacy["ts"] = legacy["ts"] + 60 * PX  # close-stamped
    spike = legacy.index[200]
    legacy.loc[spike, ["open", "high", "low", "close"]] = legacy.loc[spike, "close"] + 900 * PX
    store_bars(legacy, table=LEGACY_TABLE)
    parsed = parse_params(
        {"symbols": ["GLBX.MDP3:NQ"], "source_table": "legacy", "allow_legacy": True}
    )
    counts = triangle_chunk(FEB, NQ, parsed, hook_connector())
    assert counts["bad_bars"] == {"DISCONTINUITY": 1}
    good = frame.drop(index=200)
    want = _engine_events(good, "2025-02-01", "2025-03-01", parsed.settings)
    assert counts["triangles"] == len(want)
    with market_db.connect() as conn:
        got = stored_events(conn, ["GLBX.MDP3:NQ"])
    assert [to_ns(t) for t in got.ts] == want.ts.tolist()  # open times
    assert set(got.source_table) == {"legacy"}


def test_an_unreadable_price_fails_the_chunk_on_either_table(market_db, quarter_bars):
    """A NaN price stored by another tool: the legacy table's read (decoded on the client)
    names the bar; the clean table's (scaled by the server) fails with the cast's error."""
    feb = quarter_bars[
        (quarter_bars.ts >= to_ns("2025-02-03")) & (quarter_bars.ts < to_ns("2025-02-04"))
    ]
    store_bars(feb)
    store_bars(feb.assign(ts=feb.ts + 60 * PX), table=LEGACY_TABLE)
    with market_db.connect() as conn:
        for table in ("market_bars_ohlcv_1m_clean", LEGACY_TABLE):
            conn.execute(
                sql.SQL("UPDATE {} SET close = 'NaN' WHERE ts = '2025-02-03 15:07+00'").format(
                    sql.Identifier(table)
                )
            )
        conn.commit()
    legacy = parse_params(
        {"symbols": ["GLBX.MDP3:NQ"], "source_table": "legacy", "allow_legacy": True}
    )
    with pytest.raises(ValueError, match=r"NaN or infinite \(at 2025-02-03 15:07:00\+00:00\)"):
        triangle_chunk(FEB, NQ, legacy, hook_connector())
    with pytest.raises((psycopg.DataError, psycopg.NotSupportedError), match="NaN"):
        triangle_chunk(FEB, NQ, parse_params({"symbols": ["GLBX.MDP3:NQ"]}), hook_connector())


def test_a_range_without_bars_gives_zero_counts(market_db):
    counts = triangle_chunk(FEB, NQ, parse_params({"symbols": ["GLBX.MDP3:NQ"]}), hook_connector())
    assert (counts["bars"], counts["triangles"], counts["inserted"], counts["batches"]) == (
        0,
        0,
        0,
        0,
    )


def test_catch_up_plan_runs_from_the_latest_event_to_the_last_bar(market_db, quarter_bars):
    store_bars(quarter_bars[quarter_bars.ts < to_ns("2025-02-10")])
    params = {"symbols": ["GLBX.MDP3:NQ"]}
    now = datetime(2025, 6, 1, tzinfo=UTC)
    first = plan_run(hook_connector(), params, run_end=None, now=now)
    assert first[0]["start"].startswith("2025-02-0")  # 7 days before the last bar
    triangle_chunk(Chunk.from_dict(first[0]), NQ, parse_params(params), hook_connector())
    with market_db.connect() as conn:
        last = conn.execute("SELECT max(ts) FROM triangle_events_v1").fetchone()[0]
    second = plan_run(hook_connector(), params, run_end=None, now=now)
    assert datetime.fromisoformat(second[0]["start"]) > last
    assert np.all([c["symbol"] == "GLBX.MDP3:NQ" for c in second])


def test_unknown_symbols_and_legacy_are_refused_at_plan_time(market_db):
    with pytest.raises(ParamError, match="unknown symbol"):
        plan_run(
            hook_connector(),
            {"symbols": ["GLBX.MDP3:ZZ"], "start": "2025-01-01", "end": "2025-01-02"},
            run_end=None,
        )


def test_catch_up_progress_is_absorbed_only_when_the_run_succeeds(market_db, quarter_bars):
    from market_backfill.db.changes import absorbed_change, log_write
    from market_backfill.db.tables import TRIANGLE_PROGRESS_TABLE
    from market_backfill.triangles.load import absorb_changes
    from market_backfill.triangles.store import settings_key

    ts = quarter_bars.ts
    store_bars(quarter_bars[(ts >= to_ns("2025-02-03")) & (ts < to_ns("2025-02-08"))])
    params = {"symbols": ["GLBX.MDP3:NQ"]}
    parsed = parse_params(params)
    week = Chunk(
        "GLBX.MDP3:NQ", "2025-02", "2025-02-02T00:00:00+00:00", "2025-02-09T00:00:00+00:00"
    )
    triangle_chunk(week, NQ, parsed, hook_connector())  # events up to the last bar
    now = datetime(2025, 2, 9, tzinfo=UTC)

    def first_start() -> str:
        return plan_run(hook_connector(), params, run_end=None, now=now)[0]["start"]

    forward = first_start()
    assert forward > "2025-02-07"  # nothing changed: from the latest event on
    series, key = NQ.series(), settings_key(parsed)
    with market_db.connect() as conn:
        change = log_write(
            conn, series, datetime(2025, 2, 4, tzinfo=UTC), datetime(2025, 2, 4, 1, tzinfo=UTC)
        )
    assert first_start() == "2025-02-02T23:00:00+00:00"  # the changed week's segment start
    with market_db.connect() as conn:
        assert (
            absorbed_change(conn, TRIANGLE_PROGRESS_TABLE, series, key) == 0
        )  # the run has not succeeded yet
    # the plan removed that week's events; a run that fails leaves the change pending
    assert first_start() <= "2025-02-02T23:00:00+00:00"
    absorb_changes(hook_connector(), parsed)
    with market_db.connect() as conn:
        assert absorbed_change(conn, TRIANGLE_PROGRESS_TABLE, series, key) == change
    triangle_chunk(week, NQ, parsed, hook_connector())  # what the successful run wrote
    assert first_start() == forward


def test_a_grains_root_segments_at_its_own_session_open(market_db, quarter_bars):
    """ZC's sessions open Sunday 19:00 Chicago (the registry's anchor), an hour after
    18:00 New York: its weekly segment holding Monday 2025-03-10 00:00 UTC starts then
    (00:00 UTC), NQ's at 22:00 UTC on Sunday."""
    from market_backfill.symbols import settings_of

    connect = hook_connector()
    zc = settings_of(connect, "GLBX.MDP3:ZC")
    assert zc.session_anchor == "19:00 America/Chicago"
    bars = quarter_bars[quarter_bars.ts >= to_ns("2025-03-09T22:00")]
    store_bars(bars, symbol="GLBX.MDP3:ZC")
    store_bars(bars, symbol="GLBX.MDP3:NQ")
    parsed = parse_params({"symbols": ["GLBX.MDP3:ZC", "GLBX.MDP3:NQ"]})
    week = ("2025-03-10T00:00:00+00:00", "2025-03-15T00:00:00+00:00")
    at_zc = triangle_chunk(Chunk("GLBX.MDP3:ZC", "2025-03", *week), zc, parsed, connect)
    at_nq = triangle_chunk(Chunk("GLBX.MDP3:NQ", "2025-03", *week), NQ, parsed, connect)
    sunday_evening = int(
        ((bars.ts >= to_ns("2025-03-09T22:00")) & (bars.ts < to_ns("2025-03-10"))).sum()
    )
    assert at_nq["preload_bars"] == sunday_evening > 0
    assert at_zc["preload_bars"] == 0
    cfg = TriangleSettings(session_anchor="19:00 America/Chicago")
    from market_backfill.triangles.engine import segment_start

    assert segment_start(to_ns("2025-03-12T15:00"), cfg) == to_ns("2025-03-10T00:00")
    winter = segment_start(to_ns("2025-01-15T15:00"), cfg)
    assert winter == to_ns("2025-01-13T01:00")  # 19:00 CST


def test_a_triangle_task_body_runs_without_pandas_or_numba(market_db, quarter_bars):
    """A chunk task process pays for what it imports: reading bars (prices scaled by the
    server), the engine (numpy passes) and the binary COPY of the events work on numpy
    arrays, so neither pandas (half a second to import) nor numba (its import and its
    compiled kernels' load, about as much) is loaded. Run in a fresh interpreter, through
    the task body, on real bars."""
    store_bars(quarter_bars)
    setup = group_task_code(
        "triangle_backfill",
        {"symbols": ["GLBX.MDP3:NQ"]},
        FEB.to_dict(),
        "from market_backfill.triangles.tasks import run_group\n"
        "out = run_group(group, run)\n"
        "assert out['triangles'] > 0 and out['inserted'] == out['triangles'], out",
    )
    heavy = ["pandas", "numba", "pandas_market_calendars", "databento"]
    assert loaded_after(setup, heavy) == []
    with market_db.connect() as conn:
        stored = conn.execute("SELECT count(*) FROM triangle_events_v1").fetchone()[0]
    want = _engine_events(quarter_bars, FEB.start, FEB.end, TriangleSettings())
    assert stored == len(want) > 0


def test_bars_stored_newest_first_give_the_same_events(market_db, quarter_bars):
    # the read sends no ORDER BY (the server would sort a month): the rows are sorted here
    store_bars(quarter_bars)
    reverse_heap(market_db, "market_bars_ohlcv_1m_clean", FEB.start_dt, FEB.end_dt)
    parsed = parse_params({"symbols": ["GLBX.MDP3:NQ"]})
    result = triangle_chunk(FEB, NQ, parsed, hook_connector())
    want = _engine_events(quarter_bars, "2025-02-01", "2025-03-01", parsed.settings)
    assert result["triangles"] == result["inserted"] == len(want) > 100
    assert result["preload_bars"] > 0
    with market_db.connect() as conn:
        got = stored_events(conn, ["GLBX.MDP3:NQ"])
    assert (got.ts.map(lambda t: to_ns(t)).to_numpy() == want.ts.to_numpy()).all()
    assert got.direction.tolist() == want.direction.tolist()


def test_a_chunk_reads_its_bars_over_two_connections(market_db, quarter_bars):
    store_bars(quarter_bars)
    connect = ReusingConnector(hook_connector())
    parsed = parse_params({"symbols": ["GLBX.MDP3:NQ"], "writers": 1})
    result = triangle_chunk(FEB, NQ, parsed, connect)
    assert result["inserted"] > 100
    assert connect.opened == 2  # the task's connection and the read's second half's
    connect.close()


def test_a_lost_second_reader_retries_the_read_and_the_chunk_succeeds(market_db, quarter_bars):
    """The read's second connection is terminated as it opens: the lost connection ends
    the read's transaction, which is retried whole on new connections."""
    store_bars(quarter_bars)
    opened = []

    def connect():
        conn = hook_connector()()
        opened.append(conn)
        if len(opened) == 2:  # the first read's second half
            with market_db.connect() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        return conn

    parsed = parse_params({"symbols": ["GLBX.MDP3:NQ"], "writers": 1})
    result = triangle_chunk(FEB, NQ, parsed, connect)
    want = _engine_events(quarter_bars, "2025-02-01", "2025-03-01", parsed.settings)
    assert result["inserted"] == len(want)
    assert len(opened) == 5  # read (2), read again (2), write (1)
    assert opened[1].closed
    with market_db.connect() as conn:
        got = stored_events(conn, ["GLBX.MDP3:NQ"])
    assert (got.ts.map(lambda t: to_ns(t)).to_numpy() == want.ts.to_numpy()).all()
