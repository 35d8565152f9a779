"""``bar_month_counts`` equals ``count(*)`` of the clean bars per series and UTC month after
every kind of write: COPY (direct and through staging), upserts, deletes, a key update, a
truncate, and on a database whose bars predate the triggers."""

from __future__ import annotations

import pandas as pd
import psycopg
import pytest

from market_backfill.db.schema import apply_schema
from tests.conftest import store_bars

COUNTED = """
SELECT symbol, roll_rule, rank, to_char(date_trunc('month', ts AT TIME ZONE 'UTC'), 'YYYY-MM'),
       count(*)
FROM market_bars_ohlcv_1m_clean GROUP BY 1, 2, 3, 4
"""
KEPT = """
SELECT symbol, roll_rule, rank, to_char(month, 'YYYY-MM'), bars
FROM bar_month_counts WHERE bars <> 0
"""


def _counts(conn) -> tuple[dict, dict]:
    as_key = lambda rows: {tuple(r[:4]): r[4] for r in rows}  # noqa: E731
    return as_key(conn.execute(COUNTED).fetchall()), as_key(conn.execute(KEPT).fetchall())


def test_counts_follow_copies_upserts_deletes_updates_and_truncates(market_db, quarter_bars):
    store_bars(quarter_bars)  # COPY straight into the table
    store_bars(quarter_bars.iloc[::7], symbol="GLBX.MDP3:ES", roll_rule="c", rank=1)
    with market_db.connect() as conn:
        counted, kept = _counts(conn)
        assert kept == counted
        assert kept[("GLBX.MDP3:NQ", "v", 0, "2025-02")] == int(
            (
                (quarter_bars["ts"] >= pd.Timestamp("2025-02-01", tz="UTC").value)
                & (quarter_bars["ts"] < pd.Timestamp("2025-03-01", tz="UTC").value)
            ).sum()
        )
    # a re-run: every row exists (COPY conflicts, staging upsert); nothing moves
    changed = quarter_bars.assign(close=quarter_bars["close"] + 250_000_000)
    store_bars(changed)
    with market_db.connect() as conn:
        assert _counts(conn)[1] == kept
        conn.execute(
            "DELETE FROM market_bars_ohlcv_1m_clean WHERE symbol = 'GLBX.MDP3:NQ' "
            "AND ts >= '2025-03-10' AND ts < '2025-03-12'"
        )
        conn.execute(  # a key change moves bars from March 2025 to December 2024
            "UPDATE market_bars_ohlcv_1m_clean SET ts = ts - interval '90 days' "
            "WHERE symbol = 'GLBX.MDP3:ES' AND ts >= '2025-03-20' AND ts < '2025-03-21'"
        )
        conn.commit()
        counted, now_kept = _counts(conn)
        assert now_kept == counted
        assert ("GLBX.MDP3:ES", "c", 1, "2024-12") in now_kept
        assert (
            now_kept[("GLBX.MDP3:NQ", "v", 0, "2025-03")]
            < kept[("GLBX.MDP3:NQ", "v", 0, "2025-03")]
        )
        conn.execute("TRUNCATE market_bars_ohlcv_1m_clean")
        conn.commit()
        assert _counts(conn) == ({}, {})
    store_bars(quarter_bars.iloc[:1000])
    with market_db.connect() as conn:
        counted, kept = _counts(conn)
        assert kept == counted
        assert sum(kept.values()) == 1000


def test_a_rolled_back_write_leaves_the_counts_as_they_were(market_db, quarter_bars):
    store_bars(quarter_bars.iloc[:5000])
    with market_db.connect() as conn:
        before = _counts(conn)[1]
        conn.execute("DELETE FROM market_bars_ohlcv_1m_clean WHERE ts < '2025-01-03'")
        assert _counts(conn)[1] != before  # the same transaction sees its own change
        conn.rollback()
        assert _counts(conn)[1] == before


@pytest.mark.parametrize(
    "lost",
    [
        ("DROP TABLE bar_month_counts",)
        + tuple(
            f"DROP TRIGGER bar_month_counts_{e} ON market_bars_ohlcv_1m_clean"
            for e in ("insert", "update", "delete", "truncate")
        ),
        ("DROP TABLE bar_month_counts",),
        ("DROP TRIGGER bar_month_counts_delete ON market_bars_ohlcv_1m_clean",),
    ],
    ids=["an older database", "the table dropped", "a trigger dropped"],
)
def test_counts_missing_or_stale_are_rebuilt_once(market_db, quarter_bars, lost):
    store_bars(quarter_bars)
    write = "DELETE FROM market_bars_ohlcv_1m_clean WHERE ts >= '2025-02-01' AND ts < '2025-02-05'"
    with market_db.connect() as conn:
        for statement in lost:
            conn.execute(statement)
        conn.commit()
        if lost == ("DROP TABLE bar_month_counts",):  # the triggers refuse writes, loudly
            with pytest.raises(psycopg.errors.UndefinedTable):
                conn.execute(write)
            conn.rollback()
        else:  # bars written while the counts were not kept
            conn.execute(write)
            conn.commit()
        apply_schema(conn)
        apply_schema(conn)  # the second run neither recounts nor doubles
        counted, kept = _counts(conn)
        assert kept == counted
        assert len(kept) == 3
        conn.execute("DELETE FROM market_bars_ohlcv_1m_clean WHERE ts < '2025-01-02'")
        conn.commit()
        counted, kept = _counts(conn)  # and kept from then on
        assert kept == counted
