"""Access to the SQL files under ``include/sql`` (DDL and the longer queries)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


@cache
def load(name: str) -> str:
    """Return the text of ``include/sql/<name>.sql``; names are fixed literals, never user input."""
    path = SQL_DIR / f"{name}.sql"
    if path.parent != SQL_DIR:
        raise ValueError(f"invalid SQL file name {name!r}")
    return path.read_text(encoding="utf-8")
