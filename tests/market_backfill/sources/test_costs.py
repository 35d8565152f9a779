from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

from market_backfill.planning import Chunk
from market_backfill.sources.costs import clamp, over_budget
from market_backfill.symbols import SymbolSettings, parse_symbol

NQ, ES = parse_symbol("GLBX.MDP3:NQ"), parse_symbol("GLBX.MDP3:ES")
REGISTRY = {
    NQ: SymbolSettings(NQ, "v", 0, Decimal(1000), "CME Globex Equity"),
    ES: SymbolSettings(ES, "v", 0, Decimal(1000), "CME Globex Equity"),
}


def chunk(symbol, month, start, end):
    return Chunk(symbol.key, month, f"{start}T00:00:00+00:00", f"{end}T00:00:00+00:00").to_dict()


CHUNKS = [
    chunk(NQ, "2025-02", "2025-02-01", "2025-03-01"),
    chunk(NQ, "2025-03", "2025-03-01", "2025-04-01"),
    chunk(ES, "2025-02", "2025-02-01", "2025-03-01"),
    chunk(ES, "2025-03", "2025-03-01", "2025-04-01"),
]


def test_chunks_are_cut_at_the_published_end_and_later_ones_dropped(caplog):
    published = {"GLBX.MDP3": datetime(2025, 3, 10, tzinfo=UTC)}
    with caplog.at_level(logging.INFO, logger="market_backfill.sources.costs"):
        kept, notes = clamp(CHUNKS, published)
    assert [(c["symbol"], c["end"]) for c in kept] == [
        ("GLBX.MDP3:NQ", "2025-03-01T00:00:00+00:00"),
        ("GLBX.MDP3:NQ", "2025-03-10T00:00:00+00:00"),
        ("GLBX.MDP3:ES", "2025-03-01T00:00:00+00:00"),
        ("GLBX.MDP3:ES", "2025-03-10T00:00:00+00:00"),
    ]
    assert len(notes) == 2
    assert caplog.messages == [
        "2 of 4 item(s) cut or dropped at the published end of the data:\n"
        "NQ 2025-03: end 2025-04-01T00:00:00+00:00 cut to the published 2025-03-10T00:00:00+00:00\n"
        "ES 2025-03: end 2025-04-01T00:00:00+00:00 cut to the published 2025-03-10T00:00:00+00:00"
    ]
    gone, notes = clamp(CHUNKS, {"GLBX.MDP3": datetime(2025, 2, 1, tzinfo=UTC)})
    assert gone == []
    assert (
        notes[0] == "NQ 2025-02: starts after the published end 2025-02-01T00:00:00+00:00: dropped"
    )


def test_over_budget_names_the_estimate_the_cap_and_the_way_out():
    estimate = {
        "requests": [{}] * 3,
        "total_usd": 12.5,
        "total_bytes": 1,
        "max_cost_usd": 10.0,
        "clamped": [],
        "dry_run": False,
    }
    error = over_budget(estimate)
    assert error is not None
    assert error.param == "max_cost_usd"
    assert "$12.50 of 3 Databento request(s) is over the cap $10.00" in str(error)
    assert over_budget({**estimate, "max_cost_usd": 12.5}) is None
