"""The contract's tables: DDL and the longer SQL, shipped as package data.

The SQL's home is the project's ``include/sql`` folder, installed as the package
``market_backfill.sql`` and read through :mod:`importlib.resources`, so an installed
package finds it from any working directory.
"""

from __future__ import annotations

import logging
import time
from functools import cache
from importlib import resources

from market_backfill.db.connection import Connection

log = logging.getLogger(__name__)


@cache
def load_sql(name: str) -> str:
    """The text of ``<name>.sql``; names are fixed literals of the code, never user input."""
    if not name.isidentifier():
        raise ValueError(f"invalid SQL file name {name!r}")
    return (resources.files("market_backfill.sql") / f"{name}.sql").read_text(encoding="utf-8")


def apply_schema(conn: Connection) -> None:
    """Create every table of the contract and preload the symbol registry; commits.

    One transaction, serialised by an advisory lock: safe under concurrent DAG runs and
    idempotent (``CREATE ... IF NOT EXISTS``, ``ON CONFLICT DO NOTHING``). On an up-to-date
    database no statement takes a table lock that waits for a reader, a writer or a
    vacuum (migrations look in the catalog before they ALTER).
    """
    started = time.monotonic()
    with conn.cursor() as cur:
        cur.execute(load_sql("schema"))
    conn.commit()
    log.info("schema applied in %.2fs", time.monotonic() - started)
