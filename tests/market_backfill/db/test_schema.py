"""The schema applies to an empty database and migrates one made by earlier versions."""

from __future__ import annotations

from market_backfill.db.schema import apply_schema, load_sql

# market_symbols as version 0.1 created it (price_floor NOT NULL DEFAULT 0)
V01_SYMBOLS = """
CREATE TABLE market_symbols (
    symbol text PRIMARY KEY, dataset text NOT NULL, root text NOT NULL,
    roll_rule text NOT NULL DEFAULT 'v', rank integer NOT NULL DEFAULT 0,
    price_floor numeric(20, 9) NOT NULL DEFAULT 0, calendar text NOT NULL,
    discontinuity numeric NOT NULL DEFAULT 500, small_range numeric NOT NULL DEFAULT 10,
    small_range_gap numeric NOT NULL DEFAULT 150, flat_discontinuity numeric NOT NULL DEFAULT 50,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO market_symbols (symbol, dataset, root, roll_rule, rank, price_floor, calendar)
VALUES ('GLBX.MDP3:NQ', 'GLBX.MDP3', 'NQ', 'v', 0, 1000, 'CME Globex Equity');
"""


def _floor_column(conn) -> tuple:
    return conn.execute(
        "SELECT is_nullable, column_default FROM information_schema.columns "
        "WHERE table_name = 'market_symbols' AND column_name = 'price_floor'"
    ).fetchone()


def test_an_empty_database_gets_every_table_twice_over(pg_db):
    with pg_db.connect() as conn:
        apply_schema(conn)
        apply_schema(conn)  # idempotent
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
        assert _floor_column(conn) == ("YES", None)
    assert tables >= {
        "market_symbols",
        "market_bars_ohlcv_1m_clean",
        "market_bars_ohlcv_1m",
        "triangle_events_v1",
        "ohlcv_gaps",
        "backfill_runs",
    }


def test_a_version_0_1_registry_is_migrated_in_place_keeping_its_rows(pg_db):
    with pg_db.connect() as conn:
        conn.execute(V01_SYMBOLS)
        conn.commit()
        assert _floor_column(conn) == ("NO", "0")
        apply_schema(conn)
        assert _floor_column(conn) == ("YES", None)
        floors = dict(conn.execute("SELECT symbol, price_floor FROM market_symbols").fetchall())
        conn.execute(
            "INSERT INTO market_symbols (symbol, dataset, root, calendar) "
            "VALUES ('GLBX.MDP3:CL', 'GLBX.MDP3', 'CL', 'CME Globex Equity')"
        )
        cl = conn.execute(
            "SELECT price_floor FROM market_symbols WHERE symbol = 'GLBX.MDP3:CL'"
        ).fetchone()[0]
    assert floors["GLBX.MDP3:NQ"] == 1000
    assert len(floors) == 4  # the registry's defaults were added beside the old row
    assert cl is None


def test_sql_files_are_named_by_the_code_only():
    import pytest

    with pytest.raises(ValueError, match="invalid SQL file name"):
        load_sql("../etc/passwd")
