from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from market_backfill.planning import Chunk
from market_backfill.reingest.batch import batch_requests
from market_backfill.reingest.params import parse_params
from market_backfill.symbols import SymbolSettings, parse_symbol

NQ, ES = parse_symbol("GLBX.MDP3:NQ"), parse_symbol("GLBX.MDP3:ES")
CL = parse_symbol("XNYM.MDP3:CL")  # a second dataset, for the grouping only
REGISTRY = {s: SymbolSettings(s, "v", 0, Decimal(1000), "CME Globex Equity") for s in (NQ, ES, CL)}


def chunk(symbol, month, start, end):
    return Chunk(symbol.key, month, f"{start}T00:00:00+00:00", f"{end}T00:00:00+00:00").to_dict()


def test_one_job_per_dataset_over_the_whole_span_of_its_chunks():
    params = parse_params(
        {"symbols": [NQ.key, ES.key, CL.key], "source": "databento_batch", "roll_rule": "c"}
    )
    chunks = [  # catch-up: NQ starts later than ES
        chunk(NQ, "2025-03", "2025-03-12", "2025-04-01"),
        chunk(ES, "2025-02", "2025-02-03", "2025-03-01"),
        chunk(ES, "2025-03", "2025-03-01", "2025-04-01"),
        chunk(CL, "2025-01", "2025-01-20", "2025-02-01"),
    ]
    got = batch_requests(chunks, params, REGISTRY)
    assert [(r.dataset, r.symbols, r.start, r.end) for r in got] == [
        (
            "GLBX.MDP3",
            ("ES.c.0", "NQ.c.0"),
            datetime(2025, 2, 3, tzinfo=UTC),
            datetime(2025, 4, 1, tzinfo=UTC),
        ),
        (
            "XNYM.MDP3",
            ("CL.c.0",),
            datetime(2025, 1, 20, tzinfo=UTC),
            datetime(2025, 2, 1, tzinfo=UTC),
        ),
    ]


def test_no_chunks_no_job():
    params = parse_params({"symbols": [NQ.key], "source": "databento_batch"})
    assert batch_requests([], params, REGISTRY) == []
