from __future__ import annotations

from decimal import Decimal

from market_backfill.reingest.params import parse_params
from market_backfill.reingest.tasks import companion_symbols
from market_backfill.symbols import SymbolSettings, parse_symbol

BASE = {"symbols": ["GLBX.MDP3:NQ", "GLBX.MDP3:ES"], "source": "databento"}
NQ, ES = parse_symbol("GLBX.MDP3:NQ"), parse_symbol("GLBX.MDP3:ES")
REGISTRY = {  # ES's default series is the calendar roll
    NQ: SymbolSettings(NQ, "v", 0, Decimal(1000), "CME Globex Equity"),
    ES: SymbolSettings(ES, "c", 0, Decimal(1000), "CME Globex Equity"),
}


def test_companions_are_the_runs_series_of_every_symbol():
    assert companion_symbols(parse_params({**BASE, "rank": 1}), REGISTRY) == {
        "GLBX.MDP3": ["NQ.v.1", "ES.c.1"]
    }
    assert companion_symbols(parse_params(BASE), REGISTRY) == {"GLBX.MDP3": ["NQ.v.0", "ES.c.0"]}
