from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.errors import ParamError
from market_backfill.names import FIXED_SCALE as PX
from market_backfill.names import UNDEF_PRICE
from market_backfill.planning import Chunk, PlanRequest
from market_backfill.reingest.load import load_chunk
from market_backfill.reingest.load import plan_run as plan_stage
from market_backfill.reingest.params import parse_params
from market_backfill.sources.dbn_file import DbnFileSource
from market_backfill.symbols import SymbolSettings, parse_symbol
from market_backfill_devtools.dbn_writer import write_bars
from market_backfill_devtools.sample import bar_frame


def plan_run(connect, params, **request):
    return plan_stage(PlanRequest(connect, params, **request))


NQ = parse_symbol("GLBX.MDP3:NQ")
SETTINGS = SymbolSettings(NQ, "v", 0, __import__("decimal").Decimal(1000), "CME Globex Equity")
BASE = {"symbols": ["GLBX.MDP3:NQ"], "source": "dbn_file", "dbn_path": "/x.dbn"}


def _store(db, n: int, start: str) -> None:
    from tests.conftest import store_bars

    store_bars(bar_frame(n, start=start))


def test_plan_with_dates(market_db):
    chunks = plan_run(
        hook_connector(), {**BASE, "start": "2025-11-20", "end": "2026-01-05"}, run_end=None
    )
    assert [c["label"] for c in chunks] == ["NQ 2025-11", "NQ 2025-12", "NQ 2026-01"]


def test_plan_refuses_unknown_symbols_by_name(market_db):
    with pytest.raises(
        ParamError, match=r"param 'symbols': unknown symbol\(s\) \['GLBX.MDP3:ZZ'\]"
    ):
        plan_run(
            hook_connector(),
            {**BASE, "symbols": ["GLBX.MDP3:ZZ"], "start": "2025-01-01", "end": "2025-01-02"},
            run_end=None,
        )


def test_catch_up_starts_after_the_last_stored_bar(market_db):
    _store(market_db, 90, "2025-12-30T22:00Z")  # last bar 23:29
    run_end = datetime(2026, 1, 2, tzinfo=UTC)
    chunks = plan_run(hook_connector(), BASE, run_end=run_end, now=datetime(2026, 1, 5, tzinfo=UTC))
    assert [(c["start"], c["end"]) for c in chunks] == [
        ("2025-12-30T23:30:00+00:00", "2026-01-01T00:00:00+00:00"),
        ("2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"),
    ]


def test_catch_up_never_goes_past_now_and_looks_back_a_week_when_empty(market_db):
    now = datetime(2026, 1, 10, 12, 30, 45, tzinfo=UTC)
    chunks = plan_run(hook_connector(), BASE, run_end=None, now=now)
    assert chunks[0]["start"] == "2026-01-03T12:30:00+00:00"
    assert chunks[-1]["end"] == "2026-01-10T12:30:00+00:00"


def test_catch_up_when_up_to_date_plans_nothing(market_db):
    _store(market_db, 10, "2026-01-01T00:00Z")
    assert plan_run(hook_connector(), BASE, run_end=datetime(2026, 1, 1, 0, 10, tzinfo=UTC)) == []


def test_load_chunk_counts_skips_and_is_idempotent(market_db, tmp_path):
    bars = bar_frame(1300, start="2025-12-01T00:00Z")
    bars.loc[10, "open"] = UNDEF_PRICE
    bars.loc[20, "high"] = bars.loc[20, "low"] - PX
    bars.loc[1299, "ts"] = bars.loc[1298, "ts"]  # duplicate minute
    outside = bar_frame(5, start="2025-11-30T23:00Z")
    frame = __import__("pandas").concat([outside, bars], ignore_index=True)
    frame["symbol"] = "NQ.v.0"
    path = write_bars(
        tmp_path / "nq.dbn.zst", frame, dataset="GLBX.MDP3", instruments={"NQ.v.0": 9}
    )
    chunk = Chunk(
        "GLBX.MDP3:NQ", "2025-12", "2025-12-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"
    )
    parsed = parse_params({**BASE, "dbn_path": str(path)})
    first = load_chunk(chunk, SETTINGS, parsed, DbnFileSource(str(path)), hook_connector())
    assert first["rows_in"] == 1300
    assert first["rows_valid"] == 1297
    assert first["rows_skipped"] == {"UNDEF_PRICE": 1, "OHLC_INTEGRITY": 1, "DUPLICATE_TS": 1}
    assert (first["batches"], first["commits"], first["retries"]) == (3, 3, 0)
    assert first["rows_written"] == 1297
    again = load_chunk(chunk, SETTINGS, parsed, DbnFileSource(str(path)), hook_connector())
    assert again["rows_written"] == 0
    with market_db.connect() as conn:
        n, lo = conn.execute("SELECT count(*), min(ts) FROM market_bars_ohlcv_1m_clean").fetchone()
    assert n == 1297
    assert lo == datetime(2025, 12, 1, tzinfo=UTC)


def test_a_run_with_a_data_interval_loads_exactly_it_even_with_newer_bars_stored(market_db):
    from tests.conftest import store_bars

    store_bars(bar_frame(10, start="2026-01-10T00:00Z"))  # newer bars: catch-up would skip
    day = (datetime(2025, 11, 3, tzinfo=UTC), datetime(2025, 11, 4, tzinfo=UTC))
    chunks = plan_run(hook_connector(), BASE, interval=day, run_end=day[1])
    assert [(c["month"], c["start"], c["end"]) for c in chunks] == [
        ("2025-11", "2025-11-03T00:00:00+00:00", "2025-11-04T00:00:00+00:00")
    ]
    # the form's dates still win over an interval
    dated = plan_run(
        hook_connector(), {**BASE, "start": "2025-12-01", "end": "2025-12-01"}, interval=day
    )
    assert [c["start"] for c in dated] == ["2025-12-01T00:00:00+00:00"]


def test_a_reingest_task_body_reading_files_runs_without_pandas(market_db, tmp_path):
    """A chunk task process pays for what it imports: DBN files are decoded with numpy and
    ``databento_dbn`` alone, the bars validated and written as numpy columns, so neither
    pandas nor the ``databento`` client (about half a second to import) is loaded. Run in a fresh
    interpreter, through the task body, on a real file."""
    from tests.support.imports import group_task_code, loaded_after

    bars = bar_frame(1500, start="2025-12-01T00:00Z")
    bars["symbol"] = "NQ.v.0"
    path = write_bars(tmp_path / "nq.dbn.zst", bars, dataset="GLBX.MDP3", instruments={"NQ.v.0": 9})
    chunk = Chunk(
        "GLBX.MDP3:NQ", "2025-12", "2025-12-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"
    )
    setup = group_task_code(
        "ohlcv_reingest",
        {**BASE, "dbn_path": str(path)},
        chunk.to_dict(),
        "from market_backfill.reingest.tasks import run_group\n"
        "out = run_group(group, run)\n"
        "assert out['rows_written'] == 1500, out",
    )
    assert loaded_after(setup, ["pandas", "databento", "pandas_market_calendars"]) == []
    with market_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM market_bars_ohlcv_1m_clean").fetchone()[0] == 1500
