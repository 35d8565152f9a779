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


def test_sixty_symbols_over_fifteen_years_plan_into_groups(market_db):
    """10,800 chunks (symbol x month), ten times Airflow's limit, in 540 mapped tasks."""
    from market_backfill.airflow.context import RunContext
    from market_backfill.reingest.tasks import plan_chunks

    roots = [f"X{i:02d}" for i in range(36)]
    with market_db.connect() as conn:
        for root in roots:
            conn.execute(
                "INSERT INTO market_symbols (symbol, dataset, root, calendar) "
                "VALUES (%s, 'GLBX.MDP3', %s, 'CME Globex Equity')",
                (f"GLBX.MDP3:{root}", root),
            )
        known = [r[0] for r in conn.execute("SELECT symbol FROM market_symbols").fetchall()]
    assert len(known) == 60
    params = {
        "symbols": known,
        "source": "dbn_file",
        "dbn_path": "/data/*.dbn.zst",
        "start": "2011-01-01",
        "end": "2025-12-31",
    }
    groups = plan_chunks(RunContext("ohlcv_reingest", "manual__plan", params))
    assert len(groups) == 3 * 180
    assert sum(len(g["members"]) for g in groups) == 60 * 180
    assert groups[0]["label"].endswith(",+23 2011-01")
