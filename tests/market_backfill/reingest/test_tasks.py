from __future__ import annotations

from market_backfill.reingest.params import parse_params
from market_backfill.reingest.tasks import companion_symbols

BASE = {"symbols": ["GLBX.MDP3:NQ", "GLBX.MDP3:ES"], "source": "databento"}


def test_companions_only_in_date_mode():
    dated = parse_params({**BASE, "start": "2025-01-01", "end": "2025-01-31", "rank": 1})
    assert companion_symbols(dated) == {"GLBX.MDP3": ["NQ.v.1", "ES.v.1"]}
    assert companion_symbols(parse_params(BASE)) == {}
