from __future__ import annotations

from decimal import Decimal

import pytest

from market_backfill.errors import ParamError
from market_backfill.symbols import SymbolError, load_settings, parse_symbol, parse_symbols


def test_parse_and_continuous():
    sym = parse_symbol("GLBX.MDP3:NQ")
    assert (sym.dataset, sym.root, sym.key) == ("GLBX.MDP3", "NQ", "GLBX.MDP3:NQ")
    assert sym.continuous("v", 0) == "NQ.v.0"
    assert sym.continuous("n", 1) == "NQ.n.1"


@pytest.mark.parametrize(
    "text",
    [
        "NQ",
        "GLBX.MDP3:nq",
        "GLBX.MDP3:NQ'; DROP TABLE market_symbols; --",
        "",
        "GLBX:NQ",
        "GLBX.MDP3:NQ:ES",
    ],
)
def test_malformed_symbols_are_refused(text):
    with pytest.raises(SymbolError, match="malformed symbol"):
        parse_symbol(text)


def test_bad_roll_and_rank():
    sym = parse_symbol("GLBX.MDP3:NQ")
    with pytest.raises(ParamError, match="param 'roll_rule' must be one of") as err:
        sym.continuous("x", 0)
    assert err.value.param == "roll_rule"
    with pytest.raises(ParamError, match="param 'rank' must be an integer >= 0") as err:
        sym.continuous("v", -1)
    assert err.value.param == "rank"


def test_parse_symbols_dedupes_and_needs_one():
    assert [s.key for s in parse_symbols(["GLBX.MDP3:NQ", "GLBX.MDP3:NQ"])] == ["GLBX.MDP3:NQ"]
    with pytest.raises(SymbolError, match="at least one"):
        parse_symbols([])


def test_registry_is_preloaded_and_unknown_symbols_are_named(market_db):
    with market_db.connect() as conn:
        found = load_settings(conn, parse_symbols(["GLBX.MDP3:NQ", "GLBX.MDP3:RTY"]))
        nq = found[parse_symbol("GLBX.MDP3:NQ")]
        assert (nq.price_floor, nq.calendar, nq.roll_rule) == (
            Decimal(1000),
            "CME Globex Equity",
            "v",
        )
        assert nq.price_floor_fixed == 1000 * 10**9
        with pytest.raises(SymbolError, match=r"unknown symbol\(s\) \['GLBX.MDP3:ZZ'\]"):
            load_settings(conn, parse_symbols(["GLBX.MDP3:NQ", "GLBX.MDP3:ZZ"]))
