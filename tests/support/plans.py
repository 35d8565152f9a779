"""What the server did for a library function's queries: each statement it executed,
replayed under ``EXPLAIN ANALYZE`` on the same real connection."""

from __future__ import annotations

from typing import Any

from psycopg import sql


class RecordingConnection:
    """A real psycopg connection whose cursors record every ``(query, params)`` they
    execute (nothing else changes: the statements run on the server as usual)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.executed: list[tuple[Any, Any]] = []

    def cursor(self, *args: Any, **kwargs: Any) -> _RecordingCursor:
        return _RecordingCursor(self._conn.cursor(*args, **kwargs), self.executed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _RecordingCursor:
    def __init__(self, cur: Any, log: list[tuple[Any, Any]]) -> None:
        self._cur, self._log = cur, log

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        self._log.append((query, params))
        return self._cur.execute(query, params, **kwargs)

    def __enter__(self) -> _RecordingCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cur.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def most_rows_scanned(conn: Any, query: Any, params: Any) -> int:
    """The most rows any scan of ``query``'s plan produced or filtered out, run for real
    (``EXPLAIN (ANALYZE, FORMAT JSON)``; every loop counted)."""
    body = sql.SQL(query) if isinstance(query, str) else query
    with conn.cursor() as cur:
        cur.execute(sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + body, params)
        plan = cur.fetchone()[0][0]["Plan"]
    return _scanned(plan)


def _scanned(node: dict) -> int:
    own = 0
    if "Scan" in node["Node Type"]:
        loops = node.get("Actual Loops", 1)
        own = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
    return max([own, *(_scanned(child) for child in node.get("Plans", []))])
