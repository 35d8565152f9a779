from __future__ import annotations

import pytest

from market_backfill.errors import ParamError
from market_backfill.gaps.params import parse_params
from tests.market_backfill.gaps.holes import NQ, utc


def test_params():
    gp = parse_params({"symbols": [NQ], "repair": False}, now=utc("2025-12-31T12:00"))
    assert (gp.start, gp.end, gp.min_gap_minutes) == (
        utc("2025-12-01T12:00"),
        utc("2025-12-31T12:00"),
        5,
    )
    with pytest.raises(ParamError, match="min_gap_minutes"):
        parse_params({"symbols": [NQ], "min_gap_minutes": 0})
    with pytest.raises(ParamError, match="'dbn_path' is required"):
        parse_params({"symbols": [NQ], "source": "dbn_file"})
    with pytest.raises(ParamError, match="before 'start'"):
        parse_params({"symbols": [NQ], "start": "2025-02-01", "end": "2025-01-01"})


def test_a_scheduled_run_checks_its_interval_and_the_look_back_before_it():
    day = (utc("2025-11-03"), utc("2025-11-04"))
    gp = parse_params({"symbols": [NQ]}, interval=day, now=utc("2025-12-31"))
    assert (gp.start, gp.end) == (utc("2025-10-04"), utc("2025-11-04"))
    dated = parse_params(
        {"symbols": [NQ], "start": "2025-11-10", "end": "2025-11-10"}, interval=day
    )
    assert (dated.start, dated.end) == (utc("2025-11-10"), utc("2025-11-11"))
