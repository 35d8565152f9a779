from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_backfill.errors import ParamError
from market_backfill.params import (
    date_range,
    param_batch_size,
    param_choice,
    param_int,
    param_symbols,
    parse_date,
)
from market_backfill.symbols import SymbolError


def dt(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_dates_are_inclusive_utc_days():
    assert date_range({"start": "2025-11-15", "end": "2025-12-02"}) == (
        dt(2025, 11, 15),
        dt(2025, 12, 3),
    )
    assert date_range({"start": None, "end": ""}) is None
    assert date_range({}) is None


@pytest.mark.parametrize(
    ("start", "end", "param", "message"),
    [
        ("2025-12-02", "2025-11-15", "end", "'end' (2025-11-15) is before 'start' (2025-12-02)"),
        (
            "2025-13-01",
            "2025-12-01",
            "start",
            "param 'start' must be a date 'YYYY-MM-DD', got '2025-13-01'",
        ),
        ("2025-12-01", "12/05/2025", "end", "param 'end' must be a date"),
        ("2025-12-01", None, "end", "param 'end' is required"),
        (None, "2025-12-01", "start", "param 'start' is required"),
        ("2025-12-01T00:00", "2025-12-02", "start", "param 'start' must be a date"),
    ],
)
def test_bad_dates_name_the_param(start, end, param, message):
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        date_range({"start": start, "end": end})
    assert err.value.param == param


def test_parse_date_rejects_non_strings():
    with pytest.raises(ParamError, match="'start'") as err:
        parse_date(20251201, "start")
    assert err.value.param == "start"


def test_integer_params_have_a_floor_and_are_never_booleans():
    assert param_int({"n": 3}, "n", 1, 0) == 3
    assert param_int({}, "n", 7, 0) == 7
    for bad in (-1, True, "3", 2.5):
        with pytest.raises(ParamError, match="param 'n' must be an integer >= 0") as err:
            param_int({"n": bad}, "n", 1, 0)
        assert err.value.param == "n"
    assert param_batch_size({}) == 500
    with pytest.raises(ParamError, match="'batch_size' must be an integer >= 1"):
        param_batch_size({"batch_size": 0})


def test_choices_name_the_param_and_the_choices():
    assert param_choice({}, "source", ("databento", "dbn_file"), "databento") == "databento"
    with pytest.raises(ParamError, match=r"param 'source' must be one of \['a', 'b'\]") as err:
        param_choice({"source": "ftp"}, "source", ("a", "b"), "a")
    assert err.value.param == "source"


def test_symbol_errors_are_param_errors_of_symbols():
    assert [s.key for s in param_symbols({"symbols": ["GLBX.MDP3:NQ"]})] == ["GLBX.MDP3:NQ"]
    with pytest.raises(SymbolError, match="param 'symbols': malformed symbol") as err:
        param_symbols({"symbols": ["nq"]})
    assert isinstance(err.value, ParamError)
    assert err.value.param == "symbols"
