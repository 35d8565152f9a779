from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_backfill.errors import ParamError
from market_backfill.planning import Chunk, monthly_chunks, plan
from market_backfill.symbols import parse_symbol

NQ = parse_symbol("GLBX.MDP3:NQ")


def dt(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_monthly_chunks_cut_to_the_range_with_labels():
    chunks = monthly_chunks(NQ, dt(2025, 11, 15), dt(2026, 1, 3))
    assert [(c.month, c.start, c.end) for c in chunks] == [
        ("2025-11", "2025-11-15T00:00:00+00:00", "2025-12-01T00:00:00+00:00"),
        ("2025-12", "2025-12-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"),
        ("2026-01", "2026-01-01T00:00:00+00:00", "2026-01-03T00:00:00+00:00"),
    ]
    assert chunks[1].label == "NQ 2025-12"
    assert Chunk.from_dict(chunks[1].to_dict()) == chunks[1]


def test_no_chunks_for_an_empty_range():
    assert monthly_chunks(NQ, dt(2025, 1, 1), dt(2025, 1, 1)) == []


def test_twenty_years_of_four_symbols_is_refused_before_any_work():
    symbols = [parse_symbol(f"GLBX.MDP3:{r}") for r in ("NQ", "ES", "YM", "RTY")]
    ranges = dict.fromkeys(symbols, (dt(2006, 1, 1), dt(2026, 1, 1)))
    with pytest.raises(ParamError, match="960 chunks.*max_map_length of 500"):
        plan(ranges, max_chunks=500)
    assert len(plan(ranges, max_chunks=1024)) == 960
