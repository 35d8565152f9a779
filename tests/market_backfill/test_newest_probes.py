"""The probes for a series' first and newest rows read one index entry each, whatever
the table's statistics say: right after a bulk load (no ANALYZE yet, autovacuum off, as
on servers that run it by hand) a ``min``/``max`` plan reads every entry of the series."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.db.tables import CLEAN_TABLE, FEATURES_TABLE
from market_backfill.features.store import bar_span, newest_feature
from market_backfill.gaps.store import newest_bar
from market_backfill.reingest.load import last_bar_times
from market_backfill.symbols import settings_of
from tests.conftest import store_bars
from tests.support.plans import RecordingConnection, most_rows_scanned


@pytest.fixture
def unanalyzed(market_db, quarter_bars):
    with market_db.connect(autocommit=True) as conn:
        for table in (CLEAN_TABLE, FEATURES_TABLE):
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    store_bars(quarter_bars)
    with market_db.connect(autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO {FEATURES_TABLE} (symbol, roll_rule, rank, timeframe, ts, "
            "logic_version) SELECT symbol, roll_rule, rank, '1m', ts, 'v1' FROM "
            f"{CLEAN_TABLE}"
        )
    return settings_of(hook_connector(), "GLBX.MDP3:NQ").series("v", 0)


PROBES = {
    "bar_span": lambda conn, s: bar_span(conn, s),
    "newest_feature": lambda conn, s: newest_feature(conn, s, "1m"),
    "last_bar_times": lambda conn, s: last_bar_times(conn, [s])[s],
    "newest_bar": lambda conn, s: newest_bar(conn, s, datetime(2030, 1, 1, tzinfo=UTC)),
}


@pytest.mark.parametrize("probe", PROBES)
def test_a_probe_reads_one_entry_per_end_of_the_series(market_db, unanalyzed, probe):
    with market_db.connect() as raw:
        conn = RecordingConnection(raw)
        found = PROBES[probe](conn, unanalyzed)
        assert found is not None
        assert conn.executed
        for query, params in conn.executed:
            assert most_rows_scanned(raw, query, params) <= 2, probe


def test_the_triangle_catch_up_plan_probes_the_newest_bar_and_event(market_db, unanalyzed):
    from market_backfill.planning import Chunk, PlanRequest
    from market_backfill.triangles.load import plan_run, triangle_chunk
    from market_backfill.triangles.params import parse_params

    params = {"symbols": ["GLBX.MDP3:NQ"]}
    nq = settings_of(hook_connector(), "GLBX.MDP3:NQ")
    now = datetime(2025, 6, 1, tzinfo=UTC)
    first = plan_run(PlanRequest(hook_connector(), params, now=now))
    triangle_chunk(Chunk.from_dict(first[-1]), nq, parse_params(params), hook_connector())
    opened: list[RecordingConnection] = []

    def connect() -> RecordingConnection:
        opened.append(RecordingConnection(hook_connector()()))
        return opened[-1]

    plan_run(PlanRequest(connect, params, now=now))
    probes = [(q, p) for c in opened for q, p in c.executed if "ORDER BY ts DESC LIMIT 1" in str(q)]
    assert len(probes) == 2  # the newest bar, the newest event of these settings
    with market_db.connect() as raw:
        for query, params_ in probes:
            assert most_rows_scanned(raw, query, params_) <= 2
