from __future__ import annotations

from decimal import Decimal

from market_backfill.planning import Chunk
from market_backfill.reingest.params import parse_params
from market_backfill.reingest.preflight import data_requests
from market_backfill.symbols import SymbolSettings, parse_symbol

NQ, ES = parse_symbol("GLBX.MDP3:NQ"), parse_symbol("GLBX.MDP3:ES")
REGISTRY = {
    NQ: SymbolSettings(NQ, "v", 0, Decimal(1000), "CME Globex Equity"),
    ES: SymbolSettings(ES, "v", 0, Decimal(1000), "CME Globex Equity"),
}
PARAMS = parse_params({"symbols": [NQ.key, ES.key], "source": "databento"})


def chunk(symbol, month, start, end):
    return Chunk(symbol.key, month, f"{start}T00:00:00+00:00", f"{end}T00:00:00+00:00").to_dict()


CHUNKS = [
    chunk(NQ, "2025-02", "2025-02-01", "2025-03-01"),
    chunk(NQ, "2025-03", "2025-03-01", "2025-04-01"),
    chunk(ES, "2025-02", "2025-02-01", "2025-03-01"),
    chunk(ES, "2025-03", "2025-03-01", "2025-04-01"),
]


def test_the_requests_are_those_the_chunks_make():
    shared = data_requests(CHUNKS, PARAMS, REGISTRY, shared=True)
    assert [(r.symbols, r.start.month) for r in shared] == [
        (("ES.v.0", "NQ.v.0"), 2),
        (("ES.v.0", "NQ.v.0"), 3),
    ]
    alone = data_requests(CHUNKS, PARAMS, REGISTRY, shared=False)
    assert sorted((r.symbols, r.start.month) for r in alone) == [
        (("ES.v.0",), 2),
        (("ES.v.0",), 3),
        (("NQ.v.0",), 2),
        (("NQ.v.0",), 3),
    ]
