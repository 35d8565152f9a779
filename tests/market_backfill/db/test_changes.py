"""The log of writes to the clean bars: what the derived stages recompute."""

from __future__ import annotations

from datetime import UTC, datetime

from market_backfill.db.changes import changed_since, confirm_write, log_write
from market_backfill.symbols import Series, parse_symbol

NQ = Series(parse_symbol("GLBX.MDP3:NQ"), "v", 0)
NQ_C1 = Series(parse_symbol("GLBX.MDP3:NQ"), "c", 1)


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=UTC)


def test_changes_count_once_confirmed_with_rows_or_while_unconfirmed(market_db):
    with market_db.connect() as conn:
        assert changed_since(conn, NQ, 0) is None
        a = log_write(conn, NQ, t(3), t(4))
        confirm_write(conn, a, 0)  # a re-run that changed nothing
        assert changed_since(conn, NQ, 0) is None
        b = log_write(conn, NQ, t(10), t(11))  # a write that died: unconfirmed
        c = log_write(conn, NQ, t(6), t(7))
        confirm_write(conn, c, 42)
        log_write(conn, NQ_C1, t(1), t(20))  # another series
        assert changed_since(conn, NQ, 0) == (t(6), t(11), c)
        assert changed_since(conn, NQ, b) == (t(6), t(7), c)
        assert changed_since(conn, NQ, c) is None
