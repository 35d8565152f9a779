"""Tables whose heap holds their rows out of order, for reads that sort on the client."""

from __future__ import annotations

from datetime import datetime

from psycopg import sql


def reverse_heap(market_db, table: str, lo: datetime, hi: datetime) -> None:
    """Rewrite ``table`` so its heap holds the rows newest first, keep the planner of this
    (test) database off ordered index scans (a small table's range may be read by one,
    whatever the heap holds), and check that a range read without ``ORDER BY`` (as the
    stages send it) now returns ``[lo, hi)`` out of order: the reader's own sort is what
    puts them in order."""
    name = sql.Identifier(table)
    with market_db.connect() as conn:
        conn.execute(
            sql.SQL("CREATE TEMP TABLE heap_copy AS SELECT * FROM {} ORDER BY ts DESC").format(name)
        )
        conn.execute(sql.SQL("TRUNCATE {}").format(name))
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT * FROM heap_copy ORDER BY ts DESC").format(name)
        )
        conn.commit()
        conn.autocommit = True
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(name))
        database = sql.Identifier(conn.info.dbname)
        for setting in ("enable_indexscan", "enable_indexonlyscan"):
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = off").format(database, sql.Identifier(setting))
            )
    with market_db.connect() as conn:  # a new session: the database's settings apply
        got = [
            row[0]
            for row in conn.execute(
                sql.SQL("SELECT ts FROM {} WHERE ts >= %s AND ts < %s").format(name), (lo, hi)
            )
        ]
    assert len(got) > 1
    assert got != sorted(got)
