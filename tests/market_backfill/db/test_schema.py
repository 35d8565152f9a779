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
            "VALUES ('GLBX.MDP3:QM', 'GLBX.MDP3', 'QM', 'CMEGlobex_Energy')"
        )
        cl = conn.execute(
            "SELECT price_floor FROM market_symbols WHERE symbol = 'GLBX.MDP3:QM'"
        ).fetchone()[0]
    assert floors["GLBX.MDP3:NQ"] == 1000
    assert len(floors) == 24  # the registry's defaults were added beside the old row
    assert cl is None


def test_sql_files_are_named_by_the_code_only():
    import pytest

    with pytest.raises(ValueError, match="invalid SQL file name"):
        load_sql("../etc/passwd")


def test_a_version_0_1_database_keeps_its_rows_under_the_series_keys(pg_db):
    """Bars, events and gaps of a 0.1 database become the registry's default series; a
    second series of the same root can then be stored beside them."""
    from pathlib import Path

    v01 = (Path(__file__).parent / "schema_v0_1.sql").read_text()
    with pg_db.connect() as conn:
        conn.execute(v01)
        conn.execute(
            "UPDATE market_symbols SET roll_rule = 'c', rank = 1 WHERE symbol = 'GLBX.MDP3:ES'"
        )
        conn.execute(
            "INSERT INTO market_bars_ohlcv_1m_clean (symbol, ts, open, high, low, close, volume) "
            "VALUES ('GLBX.MDP3:NQ', '2025-01-02T00:00Z', 1, 2, 0.5, 1.5, 7), "
            "('GLBX.MDP3:ES', '2025-01-02T00:00Z', 1, 2, 0.5, 1.5, 8)"
        )
        conn.execute(
            "INSERT INTO ohlcv_gaps (symbol, gap_start, gap_end, minutes) "
            "VALUES ('GLBX.MDP3:NQ', '2025-01-02T01:00Z', '2025-01-02T01:10Z', 10)"
        )
        conn.commit()
        apply_schema(conn)
        apply_schema(conn)  # the migration runs once
        bars = conn.execute(
            "SELECT symbol, roll_rule, rank, volume, instrument_id FROM market_bars_ohlcv_1m_clean "
            "ORDER BY symbol"
        ).fetchall()
        gaps = conn.execute("SELECT symbol, roll_rule, rank, minutes FROM ohlcv_gaps").fetchall()
        keys = dict(
            conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conname IN "
                "('market_bars_ohlcv_1m_clean_pkey', 'ohlcv_gaps_pkey', 'triangle_events_v1_uniq')"
            ).fetchall()
        )
        conn.execute(  # another series of NQ at the same minute: no conflict now
            "INSERT INTO market_bars_ohlcv_1m_clean (symbol, roll_rule, rank, ts, open, high, "
            "low, close, volume) VALUES ('GLBX.MDP3:NQ', 'c', 1, '2025-01-02T00:00Z', 3, 3, 3, "
            "3, 1)"
        )
    assert bars == [("GLBX.MDP3:ES", "c", 1, 8, None), ("GLBX.MDP3:NQ", "v", 0, 7, None)]
    assert gaps == [("GLBX.MDP3:NQ", "v", 0, 10)]
    assert keys["market_bars_ohlcv_1m_clean_pkey"] == "PRIMARY KEY (symbol, roll_rule, rank, ts)"
    assert keys["ohlcv_gaps_pkey"] == "PRIMARY KEY (symbol, roll_rule, rank, gap_start)"
    assert keys["triangle_events_v1_uniq"].startswith("UNIQUE (symbol, roll_rule, rank, ts, ")


def test_several_runs_creating_the_schema_at_once_all_succeed(pg_db):
    """Every DAG's first task applies the schema; runs starting together must not race on
    CREATE (the advisory lock serialises them)."""
    import threading

    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def apply() -> None:
        try:
            with pg_db.connect() as conn:
                start.wait()
                apply_schema(conn)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=apply) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with pg_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM market_symbols").fetchone()[0] == 24


def test_an_up_to_date_schema_applies_beside_vacuums_and_writers_without_waiting(pg_db):
    """Every DAG run applies the schema first. On an up-to-date database that takes no
    lock a vacuum (SHARE UPDATE EXCLUSIVE) or an open write (ROW EXCLUSIVE) holds off:
    such a wait would stall the run behind a long scan or an autovacuum of years of bars,
    and every later reader of that table behind the run."""
    with pg_db.connect() as conn:
        apply_schema(conn)
    with pg_db.connect() as holder, pg_db.connect() as conn:
        tables = [
            r[0]
            for r in holder.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        assert {"market_bars_ohlcv_1m_clean", "bar_changes", "market_symbols"} <= set(tables)
        for table in tables:
            holder.execute(f'LOCK TABLE "{table}" IN SHARE UPDATE EXCLUSIVE MODE')
            holder.execute(f'LOCK TABLE "{table}" IN ROW EXCLUSIVE MODE')
        conn.execute("SET lock_timeout = '2s'")
        apply_schema(conn)  # LockNotAvailable when a statement waits
        holder.rollback()
