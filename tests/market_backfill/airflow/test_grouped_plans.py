"""Every monthly stage plans hundreds of symbols over 15 years within Airflow's map limit."""

from __future__ import annotations

import pytest

from market_backfill.airflow.context import RunContext

STAGES = {
    "ohlcv_reingest": ("market_backfill.reingest.tasks", {"source": "dbn_file", "dbn_path": "/d"}),
    "triangle_backfill": ("market_backfill.triangles.tasks", {}),
    "feature_backfill": ("market_backfill.features.tasks", {}),
}


@pytest.fixture
def sixty_symbols(market_db) -> list[str]:
    """The registry's roots plus SYNTHETIC ones: 60 symbols of GLBX.MDP3."""
    with market_db.connect() as conn:
        known = conn.execute("SELECT count(*) FROM market_symbols").fetchone()[0]
        for i in range(60 - known):
            conn.execute(
                "INSERT INTO market_symbols (symbol, dataset, root, calendar) "
                "VALUES (%s, 'GLBX.MDP3', %s, 'CME Globex Equity')",
                (f"GLBX.MDP3:X{i:02d}", f"X{i:02d}"),
            )
        return [r[0] for r in conn.execute("SELECT symbol FROM market_symbols ORDER BY 1")]


@pytest.mark.parametrize("dag_id", list(STAGES))
def test_sixty_symbols_over_fifteen_years_plan_into_groups(dag_id, sixty_symbols, monkeypatch):
    """10,800 chunks (symbol x month), ten times Airflow's limit, in 540 mapped tasks; with
    groups too small for the limit the plan fails, naming the param to raise."""
    import importlib

    from airflow.sdk.exceptions import AirflowFailException

    module, extra = STAGES[dag_id]
    plan_chunks = importlib.import_module(module).plan_chunks
    params = {"symbols": sixty_symbols, "start": "2011-01-01", "end": "2025-12-31", **extra}
    groups = plan_chunks(RunContext(dag_id, "manual__plan", params))
    assert len(groups) == 3 * 180
    members = [m for g in groups for m in g["members"]]
    assert len({(m["symbol"], m["month"]) for m in members}) == len(members) == 60 * 180
    assert groups[0]["label"].endswith(",+23 2011-01")
    with pytest.raises(AirflowFailException, match="raise 'symbols_per_task'"):
        plan_chunks(RunContext(dag_id, "manual__plan", {**params, "symbols_per_task": 10}))
