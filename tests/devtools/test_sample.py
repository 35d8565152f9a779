from __future__ import annotations

from datetime import UTC, datetime

from market_backfill.reingest.hygiene import validate_bars
from market_backfill.sources.dbn import bar_count, open_store, read_bars
from market_backfill.timeutil import to_ns
from market_backfill.trading_calendar import trading_minutes
from market_backfill_devtools.sample import synthetic_bars, write_sample

START, END = datetime(2025, 11, 2, tzinfo=UTC), datetime(2025, 11, 16, tzinfo=UTC)


def test_synthetic_bars_are_valid_on_the_calendar_and_deterministic():
    bars = synthetic_bars("NQ.v.0", START, END, seed=3)
    assert bars.equals(synthetic_bars("NQ.v.0", START, END, seed=3))
    minutes = set(trading_minutes("CME Globex Equity", START, END).tolist())
    assert set(bars.ts.tolist()) <= minutes
    assert 0.97 * len(minutes) < len(bars) < len(minutes)  # a few quiet minutes left out
    assert validate_bars(bars, 1000 * 10**9).rows_valid == len(bars)
    assert (bars[["open", "high", "low", "close"]] % 250_000_000 == 0).all().all()


def test_sample_file_reads_back(tmp_path):
    path, count = write_sample(tmp_path / "s.dbn.zst", START, END)
    got = read_bars(open_store(path, "s"), {"NQ.v.0": "GLBX.MDP3:NQ"}, to_ns(START), to_ns(END))
    assert bar_count(got) == count > 10_000
