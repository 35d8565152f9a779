"""``feature_backfill`` params: modes, timeframes, and the messages for bad ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_backfill.errors import ParamError
from market_backfill.features.params import parse_params

NQ = {"symbols": ["GLBX.MDP3:NQ"]}


def test_defaults_catch_up_over_every_timeframe():
    p = parse_params(NQ)
    assert p.window is None
    assert not p.force_recalc
    assert p.timeframes == ("1m", "5m", "15m", "1h", "4h", "1d")
    assert p.agg_timeframes == ("5m", "15m", "1h", "4h", "1d")


def test_timeframes_are_put_in_order_and_checked():
    assert parse_params({**NQ, "timeframes": ["1d", "1m"]}).timeframes == ("1m", "1d")
    with pytest.raises(ParamError, match="unknown \\['2h'\\]"):
        parse_params({**NQ, "timeframes": ["2h"]})
    with pytest.raises(ParamError, match="must be a list"):
        parse_params({**NQ, "timeframes": "1m"})


def test_force_recalc_runs_from_since_to_end():
    p = parse_params({**NQ, "force_recalc": True, "since": "2025-03-01", "end": "2025-03-31"})
    assert p.since == datetime(2025, 3, 1, tzinfo=UTC)
    assert p.window == (p.since, datetime(2025, 4, 1, tzinfo=UTC))
    open_ended = parse_params({**NQ, "force_recalc": True, "since": "2025-03-01"})
    assert open_ended.window is None
    assert open_ended.since == p.since


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"force_recalc": True}, "needs 'since'"),
        ({"force_recalc": True, "since": "2025-03-01", "start": "2025-01-01"}, "set 'since'"),
        ({"force_recalc": True, "since": "2025-03-01", "end": "2025-02-01"}, "before 'since'"),
        ({"since": "2025-03-01"}, "only with 'force_recalc'"),
        ({"start": "2025-03-01"}, "'end' is required"),
    ],
)
def test_bad_combinations_name_the_param(params, message):
    with pytest.raises(ParamError, match=message):
        parse_params({**NQ, **params})


def test_writers_default_to_two_and_are_checked():
    assert parse_params(NQ).writers == 2
    assert parse_params({**NQ, "writers": 8}).writers == 8
    for bad in (0, 9, True, "2"):
        with pytest.raises(ParamError, match="param 'writers' must be") as err:
            parse_params({**NQ, "writers": bad})
        assert err.value.param == "writers"
